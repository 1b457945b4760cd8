"""The monitor's mitmproxy script: mitmdump -s addons/student_monitor.py --set monitor_config=DIR

One addon per concern, sharing one runtime: ``LogPrivacy`` (no client addresses in the proxy's
log), ``Runtime`` (district snapshot and reloads, metrics endpoint, incident recorder),
``Selective`` (what to decrypt), ``Limits`` (connections per address, header timeout),
``Pac`` (the proxy auto-config file at /proxy.pac and /wpad.dat),
``Enforce`` (decide each request: block page, restriction headers, no HTTP/3 advertisements).
"""

from __future__ import annotations

import os
import sys

# mitmproxy puts this file's folder first on sys.path while loading it; the package lives
# one level up (and is installed into the environment by the README's commands anyway).
_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _root not in sys.path:
    sys.path.append(_root)

from addons.enforce import Enforce  # noqa: E402
from addons.limits import Limits  # noqa: E402
from addons.logprivacy import LogPrivacy  # noqa: E402
from addons.pac import Pac  # noqa: E402
from addons.runtime import Runtime  # noqa: E402
from addons.selective import Selective  # noqa: E402

_runtime = Runtime()
_selective = Selective(_runtime)

# LogPrivacy first, so that nothing is logged with a client address before it is in place;
# Limits after Selective, which may pass a connection through in next_layer.
addons = [
    LogPrivacy(),
    _runtime,
    _selective,
    Limits(_runtime),
    Pac(_runtime),
    Enforce(_runtime, _selective),
]

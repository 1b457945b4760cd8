"""Which addresses the gateway's catalogue sets hold (``table inet student_monitor``, filled by
the district resolver): what the transparent ruleset redirects to the proxy, read with ``nft``
for a sensor beside the proxy.

Read whole every ``max_age`` seconds; an address not found is read again at once (at most
every ``min_reread`` seconds), since the resolver may have added it a moment ago, just before
the device connected. A failed read keeps the copy in hand (``failures`` and ``last_error``
say so) and is tried again at the next.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

from monitor.gateway.nftables import SETS, TABLE

Reader = Callable[[], frozenset[str]]


def read_sets(nft: str = "", table: str = TABLE, sets: tuple[str, ...] = SETS) -> frozenset[str]:
    """The addresses in the sets (``nft -j list set``); OSError when nft cannot list them."""
    exe = nft or shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin") or "nft"
    out: set[str] = set()
    for name in sets:
        try:
            r = subprocess.run(
                [exe, "-j", "list", "set", "inet", table, name],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise OSError(f"nft list set inet {table} {name}: timed out") from e
        if r.returncode != 0:
            raise OSError(f"nft list set inet {table} {name}: {r.stderr.strip()}")
        for item in json.loads(r.stdout).get("nftables", []):
            for element in item.get("set", {}).get("elem", []):
                value = element["elem"]["val"] if isinstance(element, dict) else element
                if isinstance(value, str):
                    out.add(str(ipaddress.ip_address(value)))
    return frozenset(out)


class CatalogueSets:
    """``address in sets``, from a cached copy of the sets (thread-safe)."""

    def __init__(
        self,
        reader: Reader = read_sets,
        *,
        max_age: float = 2.0,
        min_reread: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader, self._max_age, self._min_reread, self._clock = (
            reader,
            max_age,
            min_reread,
            clock,
        )
        self._lock = threading.Lock()
        self._addresses: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self.failures = 0
        self.last_error = ""

    def _reread(self) -> None:
        try:
            self._addresses = self._reader()
        except (OSError, ValueError) as e:  # the copy in hand stays; tried again later
            self.failures += 1
            self.last_error = str(e)
        self._read_at = self._clock()

    def contains(self, address: str) -> bool:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            return False
        with self._lock:
            age = self._clock() - self._read_at
            if age > self._max_age or (address not in self._addresses and age > self._min_reread):
                self._reread()
            return address in self._addresses

    __contains__ = contains

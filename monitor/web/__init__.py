"""The counselors' review app (Starlette, server-rendered Jinja2, no JavaScript needed).

``create_app(Review.open(config_dir))`` gives the ASGI app; ``monitor review`` runs it.
Imports the district snapshot, ``incidents`` and the shared types; never the proxy path.
"""

from __future__ import annotations

from monitor.web.app import create_app
from monitor.web.context import Review, ReviewSettings

__all__ = ["Review", "ReviewSettings", "create_app"]

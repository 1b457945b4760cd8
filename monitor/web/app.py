"""The review app: routes, middleware and background work (roster reload, daily purge)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.web import (
    audit_views,
    auth,
    incident_views,
    report_views,
    student_views,
    teacher_views,
)
from monitor.web.context import Review
from monitor.web.forwarded import ForwardedHeaders, parse_proxies
from monitor.web.pages import http_error, server_error
from monitor.web.security import SecurityHeaders

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 256 * 1024  # forms are small; nothing uploads


async def _every(seconds: float, name: str, fn: Callable[[], object]) -> None:
    """Run ``fn`` (blocking) now and then every ``seconds``, off the event loop; an error is
    logged and the loop goes on."""
    while True:
        try:
            await asyncio.to_thread(fn)
        except Exception:
            log.exception("review: %s failed", name)
        await asyncio.sleep(seconds)


def create_app(review: Review) -> Starlette:
    """The ASGI app over ``review``."""
    settings = review.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = []
        if settings.purge_every is not None:
            tasks.append(
                asyncio.create_task(
                    _every(settings.purge_every.total_seconds(), "retention purge", review.purge)
                )
            )
        if settings.reload_every is not None:

            async def reload_later() -> None:
                await asyncio.sleep(settings.reload_every or 0)
                await _every(settings.reload_every or 0, "district reload", review.reload)

            tasks.append(asyncio.create_task(reload_later()))
        if settings.overrides_every is not None:
            tasks.append(
                asyncio.create_task(
                    _every(
                        settings.overrides_every,
                        "override expiries",
                        lambda: teacher_views.record_expiries(review),
                    )
                )
            )
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    routes = [
        Route("/", auth.home, methods=["GET"]),
        Route("/signin", auth.signin_form, methods=["GET"]),
        Route("/signin", auth.signin, methods=["POST"]),
        Route("/signout", auth.signout, methods=["POST"]),
        Route("/incidents", incident_views.incident_list, methods=["GET"]),
        Route("/incidents/export", incident_views.incident_export, methods=["POST"]),
        Route("/incidents/{id:int}", incident_views.incident_detail, methods=["GET"]),
        Route("/incidents/{id:int}/review", incident_views.incident_review, methods=["POST"]),
        Route("/incidents/{id:int}/assign", incident_views.incident_assign, methods=["POST"]),
        Route("/students/{person}", student_views.student, methods=["GET"]),
        Route("/students/{person}/reveal", student_views.reveal, methods=["POST"]),
        Route("/students/{person}/record", student_views.student_record, methods=["POST"]),
        Route("/access", audit_views.access_log, methods=["GET"]),
        Route("/access/student", audit_views.access_report, methods=["GET"]),
        Route("/reports", report_views.reports, methods=["GET"]),
        Route("/reports/download", report_views.report_download, methods=["GET"]),
        Route("/reports/report.css", report_views.report_css, methods=["GET"]),
        Route("/signin/oidc", auth.oidc_start, methods=["GET"]),
        Route("/signin/oidc/callback", auth.oidc_callback, methods=["GET"]),
        Route("/teacher", teacher_views.classes, methods=["GET"]),
        Route("/teacher/classes/{class_id}", teacher_views.class_page, methods=["GET"]),
        Route("/teacher/classes/{class_id}/grant", teacher_views.grant, methods=["POST"]),
        Route("/teacher/overrides/{override_id}/revoke", teacher_views.revoke, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    # Outermost: everything inside sees the client as forwarded by a configured proxy, or
    # the peer itself.
    middleware = [
        Middleware(ForwardedHeaders, proxies=parse_proxies(settings.forwarded_allow_ips)),
        Middleware(SecurityHeaders),
    ]
    if settings.allowed_hosts:
        middleware.append(
            Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
        max_body_size=MAX_BODY,
    )
    app.state.review = review
    return app

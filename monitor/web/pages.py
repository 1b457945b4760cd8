"""Page plumbing: the sign-in gate on every route, CSRF on every form, templates, errors.

A route is a plain blocking function ``handler(call) -> Response`` wrapped by :func:`page`,
which runs it off the event loop only after the session, the role and (for POST) the CSRF
token have been checked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from monitor.incidents.access import ACTIONS
from monitor.web.context import Review
from monitor.web.security import SESSION_COOKIE, tokens_match
from monitor.web.sessions import Principal

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FIELDS = 40
MAX_FIELD_BYTES = 16 * 1024

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # every value from the network (host, reason, notes) is text, not markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["ACTIONS"] = ACTIONS


@dataclass(frozen=True, slots=True)
class Call:
    """One request to a page handler."""

    request: Request
    review: Review
    user: Principal
    form: Mapping[str, str]

    def arg(self, name: str, default: str = "") -> str:
        """A query parameter (stripped)."""
        return self.request.query_params.get(name, default).strip()

    def field(self, name: str, default: str = "") -> str:
        """A form field (stripped)."""
        return self.form.get(name, default).strip()


Handler = Callable[[Call], Response]


def review_of(request: Request) -> Review:
    review: Review = request.app.state.review
    return review


def local_time(review: Review, t: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if t is None else t.astimezone(review.tz).strftime(fmt)


def render(
    request: Request,
    template: str,
    status: int = 200,
    user: Principal | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a template with the layout's context (user, CSRF token, district)."""
    review = review_of(request)
    html = env.get_template(template).render(
        user=user.account if user else None,
        csrf=user.csrf if user else "",
        district=review.district_name,
        tzname=review.district.policy.timezone,
        t=lambda value, fmt="%Y-%m-%d %H:%M": local_time(review, value, fmt),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def safe_next(target: str) -> str:
    """A local path to go to after sign-in; anything else (another site) becomes '/'."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def signin_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/signin" if here == "/" else "/signin?" + urlencode({"next": here})
    return RedirectResponse(target, status_code=303)


async def read_form(request: Request) -> dict[str, str]:
    """The URL-encoded form of a POST, bounded; uploads are refused."""
    form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    out: dict[str, str] = {}
    for k, v in form.multi_items():
        if not isinstance(v, str):
            raise HTTPException(400, "file uploads are not accepted")
        out.setdefault(k, v)
    return out


def page(*roles: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Guard a handler: signed in (else to the sign-in page), one of ``roles`` (else 403;
    none given: any role), and on POST a form whose ``csrf`` matches the session's (else 403)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            review = review_of(request)
            token = request.cookies.get(SESSION_COOKIE)
            user = await run_in_threadpool(review.sessions.lookup, token) if token else None
            if user is None:
                return signin_redirect(request)
            if roles and user.account.role not in roles:
                raise HTTPException(403, "Your role does not give access to this page.")
            form: dict[str, str] = {}
            if request.method == "POST":
                form = await read_form(request)
                if not tokens_match(form.get("csrf"), user.csrf):
                    raise HTTPException(
                        403,
                        "The form's security token is missing or wrong: "
                        "reload the page and try again.",
                    )
            return await run_in_threadpool(handler, Call(request, review, user, form))

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


async def http_error(request: Request, exc: Exception) -> Response:
    """Errors as pages in the app's layout; the message is escaped like everything else."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Something went wrong."
    if status == 404 and detail == "Not Found":
        detail = "There is nothing here, or nothing you may see."
    headers = exc.headers if isinstance(exc, HTTPException) else None
    response = render(request, "error.html", status=status, message=detail)
    if headers:
        response.headers.update(headers)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("review app: unhandled error on %s", request.url.path, exc_info=exc)
    return render(request, "error.html", status=500, message="Something went wrong.")


def query(**params: str | int | None) -> str:
    """A query string of the non-empty ``params``."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def path_quote(value: str) -> str:
    return quote(value, safe="")

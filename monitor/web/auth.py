"""Sign-in, sign-out and the home redirect."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.incidents.access import Actor
from monitor.web.accounts import Account
from monitor.web.pages import Call, page, read_form, render, review_of, safe_next
from monitor.web.security import SESSION_COOKIE, SIGNIN_COOKIE, set_cookie, tokens_match


def actor(account: Account) -> Actor:
    return Actor(account.username, account.role, account.position)


def home_of(account: Account) -> str:
    return "/access" if account.role == "auditor" else "/incidents"


def _secure(request: Request) -> bool:
    return review_of(request).settings.secure_cookies or request.url.scheme == "https"


def _signin_page(
    request: Request,
    status: int = 200,
    error: str = "",
    username: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    token = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
    next_ = safe_next(request.query_params.get("next", "") or "/")
    response = render(
        request,
        "signin.html",
        status=status,
        signin_csrf=token,
        error=error,
        username=username,
        next=next_,
    )
    if headers:
        response.headers.update(headers)
    set_cookie(response, SIGNIN_COOKIE, token, secure=_secure(request), max_age=3600)
    return response


async def signin_form(request: Request) -> Response:
    review = review_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    user = await run_in_threadpool(review.sessions.lookup, token) if token else None
    if user is not None:
        return RedirectResponse(home_of(user.account), status_code=303)
    return _signin_page(request)


async def signin(request: Request) -> Response:
    review = review_of(request)
    form = await read_form(request)
    if not tokens_match(form.get("csrf"), request.cookies.get(SIGNIN_COOKIE)):
        raise HTTPException(
            403,
            "The sign-in form expired or its security token is wrong: "
            "reload the page and try again.",
        )
    username = form.get("username", "").strip().lower()[:64]
    password = form.get("password", "")
    # The peer, or the client a configured proxy forwarded for (monitor.web.forwarded).
    client = request.client.host if request.client else "unknown"
    # The attempt takes its slot before the password is hashed: parallel attempts cannot
    # all pass the limit while the first hashes are still being computed.
    attempt = review.limiter.reserve(username, client)
    if attempt.refused:
        minutes = int(attempt.retry_after // 60) + 1
        return _signin_page(
            request,
            429,
            f"Too many failed sign-ins. Try again in {minutes} minutes.",
            username,
            headers={"Retry-After": str(int(attempt.retry_after) + 1)},
        )
    account: Account | None = None
    try:
        account = await run_in_threadpool(review.accounts.authenticate, username, password)
    finally:
        review.limiter.settle(attempt, succeeded=account is not None)
    if account is None:
        known = await run_in_threadpool(review.accounts.get, username)
        # Only an existing account's name is recorded: a mistyped password is no username.
        who = known.username if known else "(unknown)"
        role = known.role if known else "-"
        await run_in_threadpool(
            review.access.record,
            Actor(who, role, known.position if known else ""),
            "sign_in_failed",
            detail=f"from {client}",
        )
        return _signin_page(
            request, 401, "Wrong username or password, or the account is disabled.", username
        )
    token = await run_in_threadpool(review.sessions.create, account)
    await run_in_threadpool(
        review.access.record, actor(account), "sign_in", detail=f"from {client}"
    )
    target = safe_next(form.get("next", "/"))
    response = RedirectResponse(home_of(account) if target == "/" else target, status_code=303)
    set_cookie(response, SESSION_COOKIE, token, secure=_secure(request))
    set_cookie(response, SIGNIN_COOKIE, "", secure=_secure(request), max_age=0)
    return response


@page()
def signout(call: Call) -> Response:
    review = call.review
    token = call.request.cookies.get(SESSION_COOKIE, "")
    review.sessions.end(token)
    review.access.record(actor(call.user.account), "sign_out")
    response = RedirectResponse("/signin", status_code=303)
    set_cookie(response, SESSION_COOKIE, "", secure=_secure(call.request), max_age=0)
    return response


@page()
def home(call: Call) -> Response:
    return RedirectResponse(home_of(call.user.account), status_code=303)

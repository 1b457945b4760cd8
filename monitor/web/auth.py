"""Sign-in (local accounts, and the district's identity provider through
:mod:`monitor.web.oidc`), sign-out and the home redirect."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.incidents.access import Actor
from monitor.web.accounts import Account, upsert_idp_account
from monitor.web.oidc import map_user
from monitor.web.pages import Call, page, read_form, render, review_of, safe_next
from monitor.web.security import SESSION_COOKIE, SIGNIN_COOKIE, set_cookie, tokens_match

OIDC_COOKIE = "monitor_oidc"  # binds a sign-in at the identity provider to this browser


def actor(account: Account) -> Actor:
    return Actor(account.username, account.role, account.position)


def home_of(account: Account) -> str:
    if account.role == "teacher":
        return "/teacher"
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
    signin = review_of(request).signin
    response = render(
        request,
        "signin.html",
        status=status,
        signin_csrf=token,
        error=error,
        username=username,
        next=next_,
        oidc_name=signin.oidc.name if signin.oidc else "",
        local_accounts=signin.local_accounts,
        continue_to="",
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
    if not review.signin.local_accounts:
        raise HTTPException(
            403, "Local accounts are turned off: sign in with the district's identity provider."
        )
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


# -- the district's identity provider (OpenID Connect) ------------------------------------------


def _client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _callback_uri(request: Request) -> str:
    oidc = review_of(request).signin.oidc
    if oidc is not None and oidc.redirect_uri:
        return oidc.redirect_uri
    return str(request.base_url).rstrip("/") + "/signin/oidc/callback"


async def oidc_start(request: Request) -> Response:
    """Send the browser to the identity provider (state, nonce and PKCE kept for the
    callback, bound to this browser by a cookie)."""
    review = review_of(request)
    if review.oidc is None:
        raise HTTPException(404)
    binding = secrets.token_urlsafe(32)
    next_ = safe_next(request.query_params.get("next", "") or "/")
    try:
        url = await run_in_threadpool(review.oidc.begin, _callback_uri(request), binding, next_)
    except Exception as e:  # noqa: BLE001 - the provider is down or misconfigured
        raise HTTPException(
            502, f"The district's sign-in service cannot be reached: {type(e).__name__}."
        ) from e
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: the provider's redirect back is a navigation from another site.
    response.set_cookie(OIDC_COOKIE, binding, max_age=600, path="/signin/oidc", httponly=True,
                        secure=_secure(request), samesite="lax")  # fmt: skip
    return response


def _refused(request: Request, status: int, message: str) -> Response:
    response = _signin_page(request, status, message)
    response.delete_cookie(OIDC_COOKIE, path="/signin/oidc")
    return response


async def oidc_callback(request: Request) -> Response:
    """Finish a sign-in at the identity provider: the state must be one issued to this
    browser, the ID token signed by the provider's keys, for this client, with this nonce;
    the person must be in the roster, with a role."""
    review = review_of(request)
    oidc = review.oidc
    if oidc is None:
        raise HTTPException(404)
    client = _client_of(request)
    q = request.query_params
    pending = oidc.take(q.get("state", ""), request.cookies.get(OIDC_COOKIE, ""))

    async def failed(detail: str) -> None:
        text = f"{detail[:300]} (identity provider) from {client}"
        await run_in_threadpool(
            review.access.record, Actor("(unknown)", "-"), "sign_in_failed", detail=text
        )

    if pending is None:
        await failed("state refused (unknown, expired, replayed or from another browser)")
        return _refused(request, 400, "This sign-in could not be checked (it expired or did not "
                        "start in this browser). Sign in again.")  # fmt: skip
    if q.get("error") or not q.get("code"):
        await failed(f"provider answered {q.get('error', 'no code')}")
        return _refused(request, 401, "The identity provider did not sign you in.")
    try:
        claims = await run_in_threadpool(oidc.finish, pending, q["code"])
    except Exception as e:  # noqa: BLE001 - a refused token, or the provider failing
        await failed(str(e))
        return _refused(request, 401, "The identity provider's answer was refused. Sign in "
                        "again, or contact the district if it happens again.")  # fmt: skip
    assert review.signin.oidc is not None
    district = review.district
    mapped = map_user(review.signin.oidc, claims, district.roster, review.people_index)
    contact = district.policy.contact
    if mapped.person is None or mapped.refused:
        await failed(f"{mapped.subject or 'no email'}: "
                     + {"unknown": "not in the roster", "norole": "no role"}.get(
                         mapped.refused, mapped.refused))  # fmt: skip
        if mapped.refused == "norole":
            msg = "You have no role in this app (teachers need a class in the roster)."
        elif mapped.refused == "unknown":
            msg = f"Your account ({mapped.subject}) is not in the district's roster."
        else:
            msg = mapped.refused
        return _refused(request, 403, f"{msg} Contact the district: {contact}.")
    try:
        account = await run_in_threadpool(
            upsert_idp_account, review.accounts, mapped.person.sourced_id, mapped.role,
            position=mapped.position, schools=mapped.schools,
        )  # fmt: skip
    except ValueError as e:
        await failed(str(e))
        return _refused(request, 403, f"This account cannot sign in here. Contact the district: "
                        f"{contact}.")  # fmt: skip
    if account.disabled:
        await failed(f"{account.username}: account disabled")
        return _refused(request, 403, f"Your account is disabled. Contact the district: {contact}.")
    token = await run_in_threadpool(review.sessions.create, account)
    await run_in_threadpool(review.access.record, actor(account), "sign_in",
                            detail=f"through the identity provider from {client}")  # fmt: skip
    target = home_of(account) if pending.next == "/" else pending.next
    # A page of ours that moves on, rather than a redirect: the session cookie (SameSite
    # strict) is sent on this same-site navigation, not on a redirect chain from the provider.
    response = render(request, "signin.html", signin_csrf="", error="", username="",
                      next="/", oidc_name="", local_accounts=False, continue_to=target)  # fmt: skip
    set_cookie(response, SESSION_COOKIE, token, secure=_secure(request))
    response.delete_cookie(OIDC_COOKIE, path="/signin/oidc")
    return response

"""Sign-in through the district's OpenID Connect provider (Google Workspace, Microsoft Entra ID):
the ``signin.yaml`` settings, the authorization code flow with PKCE (S256), state and nonce,
the ID token checked against the provider's keys, and who the signed-in person is.

``CONFIG_DIR/signin.yaml`` (optional; without it, local accounts only)::

    version: 1
    local_accounts: true              # false: only the identity provider (no break-glass)
    oidc:
      name: Google Workspace          # the sign-in button's words
      issuer: https://accounts.google.com
      client_id: 1234-abc.apps.googleusercontent.com
      client_secret_env: MONITOR_OIDC_CLIENT_SECRET   # the secret is never in the file
      redirect_uri: https://monitor.example.org/signin/oidc/callback   # optional
      scopes: [openid, email, profile]
      match: email                    # email | sourced_id: how a user is found in the roster
      email_claim: email
      sourced_id_claim: employee_id   # with match: sourced_id
      require_email_verified: true    # Google: true; Entra ID sends no email_verified: false
      allowed_domains: [district.example]   # emails of other domains are refused
      groups_claim: groups
      roles:                          # groups (or claim values) that make a role
        - {group: monitor-administrators, role: administrator}
        - {group: monitor-auditors, role: auditor, position: Records officer}
        - {group: monitor-counselors-hs, role: counselor, schools: [hs]}

A person with no configured group who teaches a class in the roster (an enrollment with role
teacher) signs in as a teacher. Roles rank administrator, auditor, counselor (schools of every
matching counselor group), teacher.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field

from monitor.model import Person
from monitor.people.roster.model import Roster
from monitor.yamlfile import ConfigError, line_of, load_yaml, read_regular_file, validate

SIGNIN_FILE = "signin.yaml"
PENDING_FOR = 600.0  # seconds a sign-in may take at the provider
MAX_PENDING = 10_000
_RANK = {"administrator": 0, "auditor": 1, "counselor": 2}
_POSITIONS = {
    "administrator": "Administrator",
    "auditor": "Auditor",
    "counselor": "Counselor",
    "teacher": "Teacher",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleModel(_Strict):
    role: Literal["administrator", "auditor", "counselor"]
    group: str | None = None
    claim: str | None = None
    value: str | None = None
    schools: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    position: str = ""


class OidcModel(_Strict):
    name: Annotated[str, Field(min_length=1)] = "the district's sign-in"
    issuer: Annotated[str, Field(pattern=r"^https?://")]
    client_id: Annotated[str, Field(min_length=1)]
    client_secret_env: str = "MONITOR_OIDC_CLIENT_SECRET"
    redirect_uri: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    match: Literal["email", "sourced_id"] = "email"
    email_claim: str = "email"
    sourced_id_claim: str = "sourced_id"
    require_email_verified: bool = True
    allowed_domains: list[str] = Field(default_factory=list)
    groups_claim: str = "groups"
    roles: list[RoleModel] = Field(default_factory=list)


class SignInModel(_Strict):
    version: Literal[1] = 1
    local_accounts: bool = True
    teacher_names: Literal["first_name", "pseudonym"] = "first_name"  # on teachers' pages
    oidc: OidcModel | None = None


@dataclass(frozen=True)
class OidcSettings:
    """The identity provider's settings, with the client secret read from its variable."""

    name: str
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str | None = None
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    match: str = "email"
    email_claim: str = "email"
    sourced_id_claim: str = "sourced_id"
    require_email_verified: bool = True
    allowed_domains: tuple[str, ...] = ()
    groups_claim: str = "groups"
    roles: tuple[RoleModel, ...] = ()


@dataclass(frozen=True)
class SignInSettings:
    """How people sign in: local accounts (break-glass) and/or the identity provider."""

    local_accounts: bool = True
    oidc: OidcSettings | None = None
    teacher_names: str = "first_name"  # or "pseudonym": how teachers' pages name students


def load_signin(config_dir: str | Path, env: Mapping[str, str] | None = None) -> SignInSettings:
    """``CONFIG_DIR/signin.yaml`` (missing: local accounts only); ConfigError naming file,
    line and field on a bad value, or a client secret variable that is not set. The variable
    ``MONITOR_SIGNIN`` names another file instead."""
    env = env if env is not None else os.environ
    path = Path(env.get("MONITOR_SIGNIN") or Path(config_dir) / SIGNIN_FILE)
    try:
        text = read_regular_file(path).decode("utf-8")
    except FileNotFoundError:
        return SignInSettings()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, None, "", f"cannot read file: {e}") from e
    data = load_yaml(str(path), text)
    m = validate(SignInModel, data, str(path))
    if m.oidc is None:
        if not m.local_accounts:
            line = line_of(data, ("local_accounts",))
            raise ConfigError(path, line, "local_accounts", "false needs an 'oidc' section")
        return SignInSettings(local_accounts=True, teacher_names=m.teacher_names)
    o = m.oidc
    for i, r in enumerate(o.roles):
        line, where = line_of(data, ("oidc", "roles", i)), f"oidc.roles[{i}]"
        if (r.group is None) == (r.claim is None):
            raise ConfigError(path, line, where, "name either a group or a claim")
        if r.role == "counselor" and not r.schools:
            raise ConfigError(path, line, where, "a counselor role needs schools")
        if r.role != "counselor" and r.schools:
            raise ConfigError(path, line, where, f"an {r.role} sees every school or none")
    secret = env.get(o.client_secret_env, "")
    if not secret:
        line = line_of(data, ("oidc", "client_secret_env")) or line_of(data, ("oidc",))
        raise ConfigError(
            path, line, "oidc.client_secret_env", f"the variable {o.client_secret_env} is not set"
        )
    return SignInSettings(
        local_accounts=m.local_accounts,
        teacher_names=m.teacher_names,
        oidc=OidcSettings(
            name=o.name, issuer=o.issuer.rstrip("/"), client_id=o.client_id,
            client_secret=secret, redirect_uri=o.redirect_uri, scopes=tuple(o.scopes),
            match=o.match, email_claim=o.email_claim, sourced_id_claim=o.sourced_id_claim,
            require_email_verified=o.require_email_verified,
            allowed_domains=tuple(d.lower() for d in o.allowed_domains),
            groups_claim=o.groups_claim, roles=tuple(o.roles),
        ),
    )  # fmt: skip


# ---------------------------------------------------------------- who signed in


@dataclass(frozen=True)
class Mapped:
    """A signed-in roster person and the role they get; or why they are refused."""

    person: Person | None = None
    role: str = ""
    schools: tuple[str, ...] = ()
    position: str = ""
    refused: str = ""
    subject: str = ""  # what the provider named them by (email or sourcedId), for the record


def _values(claims: Mapping[str, Any], name: str) -> list[str]:
    v = claims.get(name)
    if isinstance(v, list | tuple):
        return [str(x) for x in v]
    return [] if v is None else [str(v)]


def teaches(roster: Roster, sourced_id: str) -> list[str]:
    """The classes a person teaches (enrollments with role teacher), sorted."""
    return sorted(c.sourced_id for c in roster.classes.values() if sourced_id in c.teachers)


class PeopleIndex:
    """The roster's people by email (lowercased), rebuilt when the roster changes."""

    def __init__(self) -> None:
        self._version = ""
        self._by_email: dict[str, Person | None] = {}
        self._lock = threading.Lock()

    def by_email(self, roster: Roster, email: str) -> Person | None:
        with self._lock:
            if roster.version != self._version or not self._by_email:
                index: dict[str, Person | None] = {}
                for p in roster.people.values():
                    if p.email:
                        # two people with one email: neither signs in by it
                        index[p.email] = None if p.email in index else p
                self._by_email, self._version = index, roster.version
            return self._by_email.get(email.strip().lower())


def map_user(
    cfg: OidcSettings, claims: Mapping[str, Any], roster: Roster, index: PeopleIndex
) -> Mapped:
    """The roster person behind verified ID token claims, and their role."""
    email = str(claims.get(cfg.email_claim) or "").strip().lower()
    person: Person | None
    if cfg.match == "email":
        if not email:
            return Mapped(refused="The identity provider did not send an email address.")
        if cfg.require_email_verified and claims.get("email_verified") is not True:
            return Mapped(refused="The identity provider has not verified this email address.")
        domain = email.rpartition("@")[2]
        if cfg.allowed_domains and domain not in cfg.allowed_domains:
            return Mapped(refused=f"Accounts of {domain} cannot sign in here.", subject=email)
        person, subject = index.by_email(roster, email), email
    else:
        sid = str(claims.get(cfg.sourced_id_claim) or "").strip()
        person, subject = (roster.people.get(sid) if sid else None), sid
    if person is None:
        return Mapped(refused="unknown", subject=subject)
    groups = set(_values(claims, cfg.groups_claim))
    found: list[RoleModel] = []
    for r in cfg.roles:
        if r.group is not None and r.group in groups:
            found.append(r)
        elif r.claim is not None and (r.value is None or r.value in _values(claims, r.claim)):
            if r.value is not None or claims.get(r.claim):
                found.append(r)
    if found:
        best = min(_RANK[r.role] for r in found)
        chosen = [r for r in found if _RANK[r.role] == best]
        role = chosen[0].role
        schools = tuple(dict.fromkeys(s for r in chosen for s in r.schools))
        position = next((r.position for r in chosen if r.position), _POSITIONS[role])
        return Mapped(person, role, schools if role == "counselor" else (), position,
                      subject=subject)  # fmt: skip
    if person.is_staff and teaches(roster, person.sourced_id):
        return Mapped(person, "teacher", (), _POSITIONS["teacher"], subject=subject)
    return Mapped(person, refused="norole", subject=subject)


# ---------------------------------------------------------------- the protocol


@dataclass(frozen=True)
class Pending:
    """A sign-in under way at the provider: what the callback must match."""

    nonce: str
    verifier: str
    binding: str  # SHA-256 of the browser's cookie: the callback must come from this browser
    next: str
    redirect_uri: str
    started: float


@dataclass
class _Cache:
    value: Any = None
    fetched: float = 0.0


def binding_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("ascii", "replace")).hexdigest()


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class OidcClient:
    """The relying party: discovery, keys, the authorization URL and the code exchange."""

    settings: OidcSettings
    timeout: float = 10.0
    clock: Callable[[], float] = time.time
    _pending: OrderedDict[str, Pending] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _meta: _Cache = field(default_factory=_Cache)
    _keys: _Cache = field(default_factory=_Cache)

    # -- the provider's documents

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept an hour); its issuer must be ours."""
        if self._meta.value is not None and self.clock() - self._meta.fetched < 3600:
            return dict(self._meta.value)
        url = self.settings.issuer + "/.well-known/openid-configuration"
        r = httpx.get(url, timeout=self.timeout)
        r.raise_for_status()
        meta = r.json()
        if str(meta.get("issuer", "")).rstrip("/") != self.settings.issuer:
            raise ValueError(f"{url}: the document names another issuer ({meta.get('issuer')})")
        self._meta = _Cache(meta, self.clock())
        return dict(meta)

    def keys(self, refresh: bool = False) -> KeySet:
        """The provider's signing keys (fetched again for a key id not seen before)."""
        if self._keys.value is None or refresh or self.clock() - self._keys.fetched > 3600:
            r = httpx.get(self.metadata()["jwks_uri"], timeout=self.timeout)
            r.raise_for_status()
            self._keys = _Cache(KeySet.import_key_set(r.json()), self.clock())
        keys: KeySet = self._keys.value
        return keys

    def _client(self, redirect_uri: str) -> OAuth2Client:
        s = self.settings
        return OAuth2Client(
            client_id=s.client_id,
            client_secret=s.client_secret,
            scope=" ".join(s.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )

    # -- the flow

    def begin(self, redirect_uri: str, browser_cookie: str, next_: str) -> str:
        """A new sign-in: the provider's authorization URL (state, nonce, PKCE S256)."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        meta = self.metadata()
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
            )
        now = self.clock()
        with self._lock:
            while self._pending and (
                len(self._pending) >= MAX_PENDING
                or now - next(iter(self._pending.values())).started > PENDING_FOR
            ):
                self._pending.popitem(last=False)
            self._pending[state] = Pending(
                nonce, verifier, binding_hash(browser_cookie), next_, redirect_uri, now
            )
        return str(url)

    def take(self, state: str, browser_cookie: str) -> Pending | None:
        """The sign-in this callback finishes (once), if the state is one we issued to this
        browser and not expired; None otherwise (a tampered or replayed state)."""
        with self._lock:
            p = self._pending.pop(state, None) if state else None
        if p is None or self.clock() - p.started > PENDING_FOR:
            return None
        if not secrets.compare_digest(p.binding, binding_hash(browser_cookie or "")):
            return None
        return p

    def finish(self, pending: Pending, code: str) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier) and return the ID token's verified
        claims; ValueError when the token is missing, badly signed, for another client or
        issuer, expired, or its nonce is not this sign-in's."""
        meta = self.metadata()
        with self._client(pending.redirect_uri) as client:
            token = client.fetch_token(
                meta["token_endpoint"], code=code, code_verifier=pending.verifier
            )
        raw = token.get("id_token")
        if not raw:
            raise ValueError("the provider sent no ID token")
        return self.verify(str(raw), pending.nonce)

    def verify(self, raw: str, nonce: str) -> dict[str, Any]:
        algs = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        algs = [a for a in algs if a != "none"]
        try:
            try:
                tok = jwt.decode(raw, self.keys(), algorithms=algs)
            except JoseError:
                tok = jwt.decode(raw, self.keys(refresh=True), algorithms=algs)
            s = self.settings
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": s.issuer},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(tok.claims)
        except (JoseError, ValueError) as e:
            raise ValueError(f"the ID token was refused: {e}") from e
        claims = dict(tok.claims)
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if s.client_id not in auds:
            raise ValueError("the ID token was refused: it is for another client")
        if len(auds) > 1 and claims.get("azp") != s.client_id:
            raise ValueError("the ID token was refused: its authorized party is another client")
        return claims

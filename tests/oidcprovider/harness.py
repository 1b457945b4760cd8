"""A real OpenID provider (node's ``oidc-provider``, pinned by package-lock.json here) on
127.0.0.1 for the review app's sign-in tests and the example district's demo.

``npm ci`` installs it once into ``var/oidc-provider`` (ignored by git) from the committed
lock file. Users are synthetic roster people of the example district, found by email.

Demo (README): ``python tests/oidcprovider/harness.py --config examples/district`` starts the
provider, writes ``var/oidc-demo/signin.yaml`` and prints the variables ``monitor review``
needs and the logins.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INSTALL = ROOT / "var" / "oidc-provider"
CLIENT_ID = "monitor-review"
NODE = shutil.which("node") or "/usr/bin/node"
NPM = shutil.which("npm") or "/usr/bin/npm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def install(dest: Path = INSTALL) -> Path:
    """``npm ci`` of the pinned provider into ``dest`` (again only when the lock changed)."""
    lock = (HERE / "package-lock.json").read_bytes()
    if (dest / "package-lock.json").is_file() and (dest / "package-lock.json").read_bytes() == lock \
            and (dest / "node_modules" / "oidc-provider").is_dir():  # fmt: skip
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(HERE / name, dest / name)
    subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=dest,
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    return dest


@dataclass
class User:
    login: str  # what is typed at the provider (the email)
    password: str
    email: str
    name: str = ""
    groups: list[str] = field(default_factory=list)
    sub: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"login": self.login, "password": self.password, "email": self.email,
                "name": self.name, "groups": self.groups,
                "sub": self.sub or "sub-" + secrets.token_hex(6)}  # fmt: skip


@dataclass
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    proc: subprocess.Popen[bytes]
    log: Path

    def signin_yaml(self, roles: str = "", **extra: str) -> str:
        """A signin.yaml for this provider (the secret in MONITOR_OIDC_CLIENT_SECRET)."""
        lines = ["version: 1", f"local_accounts: {extra.get('local_accounts', 'true')}",
                 "oidc:", "  name: the test provider", f"  issuer: {self.issuer}",
                 f"  client_id: {self.client_id}",
                 "  client_secret_env: MONITOR_OIDC_CLIENT_SECRET",
                 "  scopes: [openid, email, profile, groups]"]  # fmt: skip
        if roles:
            lines.append("  roles:")
            lines += [f"    - {r}" for r in roles.strip().splitlines()]
        return "\n".join(lines) + "\n"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text(errors="replace")


def start(redirect_uris: list[str], users: list[User], workdir: Path, port: int = 0) -> Provider:
    """Start the provider; returns when it answers its discovery document."""
    modules = install()
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True)
    jwk = key.as_dict(private=True)
    jwk["kid"] = secrets.token_hex(8)
    secret = secrets.token_urlsafe(24)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = {
        "port": port, "issuer": issuer, "cookie_key": secrets.token_hex(16),
        "client": {"client_id": CLIENT_ID, "client_secret": secret, "redirect_uris": redirect_uris},
        "users": [u.as_json() for u in users], "jwks": {"keys": [jwk]},
    }  # fmt: skip
    conf = workdir / "provider.json"
    conf.write_text(json.dumps(cfg))
    conf.chmod(0o600)
    script = modules / "provider.mjs"
    shutil.copy(HERE / "provider.mjs", script)  # resolves oidc-provider from node_modules
    log = workdir / "provider.log"
    env = {**os.environ, "NODE_ENV": "test", "DEBUG": ""}
    with log.open("wb") as out:
        proc = subprocess.Popen([NODE, str(script), str(conf)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=modules)  # fmt: skip
    deadline = time.monotonic() + 30
    import httpx

    while True:
        try:
            r = httpx.get(issuer + "/.well-known/openid-configuration", timeout=1)
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("oidc-provider did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.1)
    return Provider(issuer, CLIENT_ID, secret, proc, log)


@contextmanager
def running(redirect_uris: list[str], users: list[User]) -> Iterator[Provider]:
    with tempfile.TemporaryDirectory(prefix="oidc-") as d:
        p = start(redirect_uris, users, Path(d))
        try:
            yield p
        finally:
            p.stop()


def district_users(config: Path, password: str) -> list[User]:
    """Logins for the example district: every teacher and staff member by roster email, a
    counselor of hs and an administrator by group, and a stranger the roster does not know."""
    sys.path.insert(0, str(ROOT))
    from monitor.district import DistrictLoader

    roster = DistrictLoader(config).load().roster
    out = []
    for p in sorted(roster.people.values(), key=lambda p: p.sourced_id):
        if p.is_staff and p.email:
            groups = {"counselor": ["monitor-counselors-hs"],
                      "administrator": ["monitor-administrators"]}.get(p.role, [])  # fmt: skip
            out.append(User(p.email, password, p.email, f"{p.given_name} {p.family_name}", groups))
    out.append(User("stranger@elsewhere.example", password, "stranger@elsewhere.example"))
    return out


DEMO_ROLES = """\
{group: monitor-administrators, role: administrator}
{group: monitor-counselors-hs, role: counselor, schools: [hs]}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "district")
    ap.add_argument("--port", type=int, default=9400)
    ap.add_argument("--app", default="http://127.0.0.1:8000", help="the review app's base URL")
    ap.add_argument("--password", default="demo-password")
    args = ap.parse_args()
    out = ROOT / "var" / "oidc-demo"
    users = district_users(args.config, args.password)
    p = start([args.app.rstrip("/") + "/signin/oidc/callback"], users, out, args.port)
    (out / "signin.yaml").write_text(p.signin_yaml(DEMO_ROLES))
    print(f"provider: {p.issuer} (log {p.log})")
    print(f"export MONITOR_SIGNIN={out / 'signin.yaml'}")
    print(f"export MONITOR_OIDC_CLIENT_SECRET={p.client_secret}")
    print(f"logins: any roster staff email, password {args.password!r}; e.g. {users[0].login}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        p.proc.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        p.stop()


if __name__ == "__main__":
    main()

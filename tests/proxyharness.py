"""Real parts for end-to-end tests: a test CA, a local origin server (HTTPS and HTTP) that
echoes what it received, a real mitmdump process with the monitor's addons, and curl.

Everything listens on 127.0.0.1; clients bind to loopback demo addresses (127.0.0.11, …).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
ORIGIN_CA_NAME = "Monitor Test Origin CA"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class OriginCA:
    cert_pem: Path
    leaf_cert: Path
    leaf_key: Path


def make_origin_ca(directory: Path, hosts: list[str]) -> OriginCA:
    """A CA of the test's own and one leaf certificate for every host the origin serves."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ORIGIN_CA_NAME)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    out = OriginCA(
        directory / "origin-ca.pem", directory / "origin-leaf.pem", directory / "origin-leaf.key"
    )
    out.cert_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.leaf_cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    out.leaf_key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out


@dataclass
class Seen:
    method: str
    host: str
    path: str
    headers: dict[str, str]


@dataclass
class Origin:
    """An origin server that answers every host with a small page and records requests."""

    https_port: int = 0
    http_port: int = 0
    seen: list[Seen] = field(default_factory=list)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def start(self, ca: OriginCA) -> Origin:
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items()}
                origin.seen.append(Seen(self.command, headers.get("Host", ""), self.path, headers))
                body = json.dumps({"origin": "ok", "path": self.path, "headers": headers}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Alt-Svc", 'h3=":443"; ma=86400')
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        https = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        sslctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        sslctx.load_cert_chain(ca.leaf_cert, ca.leaf_key)
        https.socket = sslctx.wrap_socket(https.socket, server_side=True)
        http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        for srv in (https, http):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self._servers.append(srv)
        self.https_port = https.server_address[1]
        self.http_port = http.server_address[1]
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()

    def requests_to(self, host: str) -> list[Seen]:
        return [s for s in self.seen if s.host.split(":")[0] == host]


@dataclass
class Proxy:
    """A real mitmdump process running the monitor's addons."""

    port: int
    confdir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def ca_cert(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text(errors="replace")


def mitmdump_bin() -> str:
    return str(Path(sys.executable).with_name("mitmdump"))


def start_proxy(
    workdir: Path,
    origin: Origin,
    ca: OriginCA,
    options: dict[str, str],
    *,
    scripts: tuple[str, ...] = ("addons/student_monitor.py",),
) -> Proxy:
    port = free_port()
    confdir = workdir / "mitmconf"
    confdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"mitmdump-{port}.log"
    cmd = [
        mitmdump_bin(),
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        f"confdir={confdir}",
        "--set",
        f"ssl_verify_upstream_trusted_ca={ca.cert_pem}",
        "-s",
        str(ROOT / "tests" / "upstream_map.py"),
        "--set",
        f"test_upstream=127.0.0.1:{origin.https_port}",
        "--set",
        f"test_upstream_plain=127.0.0.1:{origin.http_port}",
    ]
    for s in scripts:
        cmd += ["-s", str(ROOT / s)]
    for k, v in options.items():
        cmd += ["--set", f"{k}={v}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    wait_port(port, proc=proc)
    metrics = options.get("monitor_metrics_listen", "")
    if metrics:
        # the metrics endpoint starts when the addons have loaded the district
        wait_port(int(metrics.rpartition(":")[2]), proc=proc)
    # mitmproxy writes its CA on first start
    deadline = time.monotonic() + 10
    while not (confdir / "mitmproxy-ca-cert.pem").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return Proxy(port, confdir, proc, log)


@dataclass
class CurlResult:
    status: int
    headers: dict[str, str]
    body: str
    issuer: str
    stderr: str


def curl(
    proxy: Proxy,
    url: str,
    *,
    client: str = "127.0.0.1",
    cacert: list[Path] | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: str | None = None,
    proxy_user: str | None = None,
    timeout: float = 20,
) -> CurlResult:
    """Run the real curl through the proxy from a loopback client address."""
    bundle = proxy.confdir / "bundle.pem"
    if cacert is not None:
        bundle.write_bytes(b"".join(p.read_bytes() for p in cacert))
    cmd = [
        "curl",
        "-sS",
        "-v",
        "--http1.1",
        "--max-time",
        str(timeout),
        "--interface",
        client,
        "-x",
        f"http://127.0.0.1:{proxy.port}",
        "-X",
        method,
        "-D",
        "-",
        "-o",
        "-",
    ]
    if cacert is not None:
        cmd += ["--cacert", str(bundle)]
    if proxy_user:
        cmd += ["--proxy-user", proxy_user]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if data is not None:
        cmd += ["--data-binary", data]
    cmd.append(url)
    r = subprocess.run(cmd, capture_output=True, timeout=timeout + 10, check=False)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    issuer = ""
    for line in err.splitlines():
        if "issuer:" in line:
            issuer = line.split("issuer:", 1)[1].strip()
    status = 0
    hdrs: dict[str, str] = {}
    body = out
    # -D - writes every response head (the CONNECT's too) before the body
    while body.startswith("HTTP/"):
        head, _, body = body.partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
    if r.returncode != 0 and status == 0:
        return CurlResult(0, {}, "", issuer, err)
    return CurlResult(status, hdrs, body, issuer, err)

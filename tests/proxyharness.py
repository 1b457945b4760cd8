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


# -- a whole world: the example district generated for today, an origin, a mitmdump -------------

EXAMPLE_HOSTS = [
    "www.tiktok.com",
    "api16-normal-c-useast1a.tiktokv.com",
    "www.youtube.com",
    "www.youtubekids.com",
    "www.school-site.example",
    "www.instagram.com",
]
ALWAYS_OPEN = '{days: [mon-sun], start: "00:00", end: "23:59"}'


@dataclass
class World:
    district: Path
    ca: OriginCA
    origin: Origin
    proxy: Proxy
    metrics_port: int

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples that carry ``labels``, from the live endpoint."""
        import urllib.request

        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith((name + "{", name + " ")):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> str:
        log = self.proxy.stop()
        self.origin.stop()
        return log


def example_district(base: Path, *, always_in_hours: bool = True) -> Path:
    """The example district generated for today into ``base/district``; with
    ``always_in_hours``, every day is a school day, all day long."""
    import re
    from datetime import datetime
    from zoneinfo import ZoneInfo

    district = base / "district"
    today = datetime.now(ZoneInfo("America/New_York")).date()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "generate_district.py"),
            "--out",
            str(district),
            "--today",
            today.isoformat(),
        ],
        check=True,
        capture_output=True,
    )
    if always_in_hours:
        text = (district / "policy.yaml").read_text()
        text = re.sub(r'\{days: \[mon-fri\], start: "08:00", end: "15:00"\}', ALWAYS_OPEN, text)
        text = re.sub(r"(?ms)^closed:.*?(?=^schools:)", "closed: []\n\n", text)
        (district / "policy.yaml").write_text(text)
    return district


def start_world(base: Path, options: dict[str, str] | None = None) -> World:
    """The example district, an origin serving EXAMPLE_HOSTS and a mitmdump with the addons."""
    district = example_district(base)
    ca = make_origin_ca(base / "ca", EXAMPLE_HOSTS)
    origin = Origin().start(ca)
    metrics_port = free_port()
    opts = {
        "monitor_config": str(district),
        "monitor_metrics_listen": f"127.0.0.1:{metrics_port}",
        "monitor_reload_interval": "0.3",
        "connection_strategy": "lazy",
        **(options or {}),
    }
    try:
        proxy = start_proxy(base, origin, ca, opts)
    except BaseException:
        origin.stop()
        raise
    return World(district, ca, origin, proxy, metrics_port)


@dataclass
class RawResult:
    connect_status: int  # the proxy's answer to the CONNECT (0: none, e.g. closed)
    status: int  # the HTTP status inside the tunnel (0: no HTTP answer)
    body: str
    issuer: str  # the certificate issuer the client saw ("" without TLS)


def raw_request(
    proxy: Proxy,
    *,
    client: str,
    connect_host: str | None,
    sni: str | None,
    host_header: str,
    cacerts: list[Path],
    path: str = "/",
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> RawResult:
    """One request whose names disagree as a client can make them: a CONNECT to one host, a
    TLS server name of another and a Host header of a third (``connect_host=None``: plain
    HTTP in absolute form to ``sni``'s place, i.e. ``GET http://{host}/`` with the Host
    header given)."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout, (client, 0))
    try:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if connect_host is None:
            target = f"http://{sni}{path}"
            sock.sendall(
                f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
            )
            status, body = _read_http(sock)
            return RawResult(0, status, body, "")
        sock.sendall(
            f"CONNECT {connect_host}:443 HTTP/1.1\r\nHost: {connect_host}:443\r\n\r\n".encode()
        )
        connect_status, _ = _read_http(sock, head_only=True)
        if connect_status != 200:
            return RawResult(connect_status, 0, "", "")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        for ca in cacerts:
            ctx.load_verify_locations(ca)
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            issuer = ""
            cert = tls.getpeercert()
            if cert:
                issuer = ", ".join("=".join(x) for rdn in cert.get("issuer", ()) for x in rdn)
            tls.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
            )
            status, body = _read_http(tls)
        return RawResult(connect_status, status, body, issuer)
    except (ssl.SSLError, ConnectionError) as e:
        return RawResult(0, 0, f"{type(e).__name__}: {e}", "")
    finally:
        sock.close()


def _read_http(sock: socket.socket, *, head_only: bool = False) -> tuple[int, str]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        return 0, ""
    status = int(head.split(b" ", 2)[1])
    if head_only:
        return status, ""
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while length is None or len(rest) < length:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ssl.SSLError, ConnectionError):
            break
        if not chunk:
            break
        rest += chunk
    return status, rest.decode("utf-8", "replace")

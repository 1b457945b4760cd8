"""A district's gateway in Linux network namespaces, run as deploy/ says: a *clients* namespace
with the example district's demo devices, a *gateway* namespace routing them to an *internet*
namespace, and there the transparent ruleset of `monitor gateway nftables` with its worker
map, `monitor proxy --mode transparent --workers 2` (metrics, SQLite store), the district
resolver (dnsmasq with `monitor gateway resolver`'s nftset= file) and `monitor sensor --iface
lan0 --transparent-gateway` on the client-side interface.

    with gateway_network(tmp_path) as net:
        r = net.get("192.0.2.11", "https://www.tiktok.com/", headers=HTML)   # curl in clients
        net.incidents()                                                      # the store

Addresses (documentation ranges only; no namespace has a route out of the three):

    clients  eth0 192.0.2.11 … 192.0.2.99 ──── lan0 192.0.2.1     gateway
    gateway  wan0 198.51.100.1            ──── eth0 198.51.100.2  internet
    internet eth0 also 198.51.100.53 (its DNS server) and 203.0.113.0/24 (the sites, SITES)

The internet namespace serves HTTPS (443) and HTTP (80) for every site with a certificate of
a test CA of its own and echoes what it received (:class:`EchoOrigin`); it also listens on UDP
443 (QUIC), TCP and UDP 853 (DNS over TLS and QUIC) and records every datagram or connection,
so a test can tell whether the gateway let something through. Names resolve per namespace
through ``/etc/netns/NAME/{hosts,resolv.conf}`` (created here, removed with the namespaces):
clients ask the district resolver on the gateway, which asks the internet's dnsmasq.

Everything is removed however the run ends (tests/netns.py); a fixture that finds what a dead
run left behind (namespaces, /etc/netns directories) removes it first.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from netns import _NAME, Lab, Namespace, Response, lab, wait_for
from proxyharness import OriginCA, example_district, make_origin_ca

ROOT = Path(__file__).resolve().parent.parent
ETC_NETNS = Path("/etc/netns")

GW_LAN, GW_WAN, INET_WAN, INET_DNS = "192.0.2.1", "198.51.100.1", "198.51.100.2", "198.51.100.53"
WORKER_BASE = 13128
METRICS_BASE = 9464
SENSOR_METRICS = 9470
WORKERS = 2

#: the sites of the internet namespace: name → address (every name its own address, so the
#: catalogue sets hold exactly the catalogue names' addresses)
SITES = {
    "www.tiktok.com": "203.0.113.10",
    "api16-normal-c-useast1a.tiktokv.com": "203.0.113.11",
    "www.youtube.com": "203.0.113.12",
    "www.instagram.com": "203.0.113.13",
    "dns.google": "203.0.113.14",  # a DNS-over-HTTPS service (a bypass)
    "dns.cloudflare.com": "203.0.113.15",  # another, reached by a hard-coded address only
    "www.youtubekids.com": "203.0.113.16",
    "www.school-site.example": "203.0.113.20",  # outside the catalogue
}
DOT_SERVER = "203.0.113.53"  # DNS over TLS (TCP 853) and over QUIC (UDP 853)

#: the clients namespace's addresses: the example district's demo addresses 127.0.0.X moved
#: to 192.0.2.X (static maps to a device or person, see examples/district/DEMO.md), and
#: LEASED, which only a DHCP lease names (lease → MAC → device inventory → person)
UNDER13, TEEN, TEACHER, SPARE = "192.0.2.11", "192.0.2.15", "192.0.2.50", "192.0.2.99"
LEASED = "192.0.2.30"
LEASED_DEVICE = "cb-00237"  # a middle school Chromebook of the example district
CLIENTS = [f"192.0.2.{i}" for i in (11, 12, 13, 15, 16, 17, 50, 51, 99)] + [LEASED]

HTML = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


# -- the internet namespace's servers --------------------------------------------------------


@dataclass
class Seen:
    method: str
    host: str
    path: str
    headers: dict[str, str]
    peer: str


@dataclass
class EchoOrigin:
    """HTTPS on 443 and HTTP on 80 of every address, for every site: a small JSON page that
    echoes the request's headers; each request recorded (with the address it came from)."""

    seen: list[Seen] = field(default_factory=list)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def start(self, ca: OriginCA) -> EchoOrigin:
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = dict(self.headers.items())
                host = headers.get("Host", "")
                origin.seen.append(
                    Seen(self.command, host, self.path, headers, self.client_address[0])
                )
                body = json.dumps({"origin": "ok", "path": self.path, "headers": headers}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        https = ThreadingHTTPServer(("0.0.0.0", 443), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(ca.leaf_cert, ca.leaf_key)
        https.socket = ctx.wrap_socket(https.socket, server_side=True)
        http = ThreadingHTTPServer(("0.0.0.0", 80), Handler)
        for srv in (https, http):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self._servers.append(srv)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()

    def requests_to(self, host: str) -> list[Seen]:
        return [s for s in self.seen if s.host.split(":")[0] == host]


@dataclass
class Listeners:
    """UDP 443 (QUIC), UDP 853 (DoQ) and TCP 853 (DoT) on every address of the internet
    namespace: who reached them, as (protocol/port, source address). UDP is echoed back."""

    reached: list[tuple[str, str]] = field(default_factory=list)
    _socks: list[socket.socket] = field(default_factory=list)

    def start(self) -> Listeners:
        # one UDP socket per address, so that an answer comes from the address asked
        for address in [*dict.fromkeys(SITES.values()), DOT_SERVER]:
            for port in (443, 853):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.bind((address, port))
                self._socks.append(u)
                threading.Thread(target=self._udp, args=(u, port), daemon=True).start()
        t = socket.socket()
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", 853))
        t.listen(16)
        self._socks.append(t)
        threading.Thread(target=self._tcp, args=(t,), daemon=True).start()
        return self

    def _udp(self, sock: socket.socket, port: int) -> None:
        while True:
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                return
            self.reached.append((f"udp/{port}", peer[0]))
            sock.sendto(data[:64], peer)

    def _tcp(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            self.reached.append(("tcp/853", peer[0]))
            conn.close()

    def stop(self) -> None:
        for s in self._socks:
            s.close()

    def from_(self, client: str) -> list[str]:
        return [what for what, peer in self.reached if peer == client]


# -- probes from a namespace (threads inside it: no process start per probe) ---------------


def udp_exchange(
    ns: Namespace, source: str, dest: str, port: int, payload: bytes, timeout: float = 1.5
) -> str:
    """Send one datagram from ``source`` and wait for an answer: 'answered', 'refused' (an
    ICMP unreachable came back) or 'timeout'."""

    def go() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.connect((dest, port))
            s.settimeout(timeout)
            s.send(payload)
            try:
                s.recv(65535)
                return "answered"
            except ConnectionRefusedError:
                return "refused"
            except TimeoutError:
                return "timeout"

    return ns.call(go)


def tcp_connect(ns: Namespace, source: str, dest: str, port: int, timeout: float = 2) -> str:
    """'connected', 'refused' or 'timeout' for one TCP connection from ``source``."""

    def go() -> str:
        with socket.socket() as s:
            s.bind((source, 0))
            s.settimeout(timeout)
            try:
                s.connect((dest, port))
                return "connected"
            except ConnectionRefusedError:
                return "refused"
            except TimeoutError:
                return "timeout"

    return ns.call(go)


def dns_query(name: str, qtype: int = 1, qid: int = 0x5EED) -> bytes:
    """A DNS query on the wire (recursion desired)."""
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    return (
        qid.to_bytes(2, "big")
        + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        + labels
        + (qtype.to_bytes(2, "big") + b"\x00\x01")
    )


def udp_request(
    ns: Namespace, source: str, dest: str, port: int, payload: bytes, timeout: float = 2
) -> bytes:
    """One datagram from ``source`` and the answer (b'' when none came)."""

    def go() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.settimeout(timeout)
            s.sendto(payload, (dest, port))
            try:
                return s.recv(65535)
            except OSError:
                return b""

    return ns.call(go)


def _skip_name(msg: bytes, off: int) -> int:
    while msg[off]:
        if msg[off] & 0xC0 == 0xC0:
            return off + 2
        off += msg[off] + 1
    return off + 1


def a_records(msg: bytes) -> list[str]:
    """The IPv4 addresses in a DNS answer."""
    qd, an = int.from_bytes(msg[4:6], "big"), int.from_bytes(msg[6:8], "big")
    off = 12
    for _ in range(qd):
        off = _skip_name(msg, off) + 4
    out = []
    for _ in range(an):
        off = _skip_name(msg, off)
        rtype = int.from_bytes(msg[off : off + 2], "big")
        length = int.from_bytes(msg[off + 8 : off + 10], "big")
        off += 10
        if rtype == 1 and length == 4:
            out.append(socket.inet_ntoa(msg[off : off + 4]))
        off += length
    return out


# -- leftovers, name resolution ---------------------------------------------------------------


def remove_leftover_etc() -> list[str]:
    """/etc/netns directories of our namespaces whose test run is gone."""
    removed = []
    if ETC_NETNS.is_dir():
        for d in ETC_NETNS.iterdir():
            m = _NAME.fullmatch(d.name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
    return removed


def set_resolution(ns: Namespace, nameserver: str, hosts: dict[str, str] | None = None) -> Path:
    """``/etc/netns/NAME/{resolv.conf,hosts}``: what ``ip netns exec NAME`` mounts over /etc."""
    d = ETC_NETNS / ns.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(f"nameserver {nameserver}\noptions timeout:2 attempts:1\n")
    lines = ["127.0.0.1 localhost", *(f"{a} {n}" for n, a in (hosts or {}).items())]
    (d / "hosts").write_text("\n".join(lines) + "\n")
    return d


# -- the district ------------------------------------------------------------------------------


def district_for_gateway(base: Path) -> Path:
    """The example district (every day a school day, all day) with its demo addresses
    127.0.0.X moved to 192.0.2.X, and a DHCP lease naming LEASED for LEASED_DEVICE's MAC."""
    district = example_district(base)
    path = district / "district.yaml"
    text = path.read_text().replace("cidr: 127.0.0.", "cidr: 192.0.2.")
    assert "cidr: 127." not in text
    path.write_text(text)
    leases = district / "leases" / "dnsmasq.leases"
    mac = device_row(district, LEASED_DEVICE)["macAddress"]
    lines = [x for x in leases.read_text().splitlines() if mac not in x]
    lines.append(f"0 {mac} {LEASED} {LEASED_DEVICE} 01:{mac}")
    leases.write_text("\n".join(lines) + "\n")
    return district


def device_row(district: Path, device: str) -> dict[str, str]:
    with (district / "devices.csv").open(newline="") as f:
        return next(r for r in csv.DictReader(f) if r["deviceId"] == device)


def monitor(*args: str) -> str:
    """``python -m monitor ARGS`` here (not in a namespace); its stdout."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    ).stdout


# -- the network -------------------------------------------------------------------------------


@dataclass
class GatewayNet:
    lab: Lab
    cl: Namespace
    gw: Namespace
    inet: Namespace
    base: Path
    district: Path
    ca: OriginCA
    bundle: Path  # the proxy's CA and the origin's: what a managed device trusts
    origin: EchoOrigin
    listeners: Listeners
    supervisor: subprocess.Popen[bytes]
    log: Path
    sensor: subprocess.Popen[bytes] | None = None
    sensor_out: Path | None = None
    sensor_log: Path | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # clients

    def resolve(self, client: str, name: str) -> str:
        """``name``'s IPv4 address, asked from ``client``'s own address of the district
        resolver, as the device itself would (curl's resolver would ask from the namespace's
        first address, whoever the request is for)."""
        for attempt in range(3):
            answer = udp_request(self.cl, client, GW_LAN, 53, dns_query(name, qid=attempt + 1))
            if answer:
                addresses = a_records(answer)
                assert addresses, f"no address for {name}"
                return addresses[0]
        raise AssertionError(f"the district resolver did not answer {name} for {client}")

    def get(
        self,
        client: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        data: str | None = None,
        address: str = "",
        timeout: float = 10,
    ) -> Response:
        """curl in the clients namespace from ``client``, no proxy: the gateway decides. The
        host is resolved from ``client`` (or is ``address``, hard-coded)."""
        host = url.split("/")[2]
        port = 443 if url.startswith("https:") else 80
        address = address or self.resolve(client, host)
        cmd = ["curl", "-sS", "-v", "--http1.1", "--max-time", str(timeout), "--interface", client]
        cmd += ["--resolve", f"{host}:{port}:{address}", "--cacert", str(self.bundle)]
        cmd += ["-D", "-", "-o", "-"]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        if data is not None:
            cmd += ["-H", "Content-Type: application/x-www-form-urlencoded", "--data", data]
        r = subprocess.run(self.cl.argv([*cmd, url]), capture_output=True, timeout=timeout + 10)
        stderr = r.stderr.decode("utf-8", "replace")
        issuer = ""
        for line in stderr.splitlines():
            if "issuer:" in line:
                issuer = line.split("issuer:", 1)[1].strip()
        status, hdrs, body = 0, {}, r.stdout.decode("utf-8", "replace")
        while body.startswith("HTTP/"):  # every response head, then the body
            head, _, body = body.partition("\r\n\r\n")
            lines = head.split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {
                k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
            }
        return Response(status, hdrs, body, issuer, stderr)

    # the gateway

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        """Each worker's current pid, from the supervisor's log."""
        import re

        found = re.findall(
            r"worker (w\d+) (?:again )?listening on \S+ \(pid (\d+)", self.log_text()
        )
        return {name: int(pid) for name, pid in found}

    def scrape(self, port: int) -> str:
        def read() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return str(r.read().decode())

        return self.gw.call(read)

    def metric(self, name: str, port: int | None = None, **labels: str) -> float:
        """The sum of a metric's samples with these labels, over every worker (or one port)."""
        ports = [port] if port is not None else [METRICS_BASE + i for i in range(WORKERS)]
        total = 0.0
        for p in ports:
            for line in self.scrape(p).splitlines():
                if not line.startswith((name + "{", name + " ")):
                    continue
                if all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def set_elements(self) -> set[str]:
        out = self.gw.run(["nft", "-j", "list", "set", "inet", "student_monitor", "catalogue4"])
        elements: set[str] = set()
        for item in json.loads(out.stdout)["nftables"]:
            for e in item.get("set", {}).get("elem", []):
                elements.add(e["elem"]["val"] if isinstance(e, dict) else e)
        return elements

    def counter(self, chain: str, needle: str) -> int:
        """Packets counted by the rule of ``chain`` whose text contains ``needle``."""
        text = self.gw.run(["nft", "list", "chain", "inet", "student_monitor", chain]).stdout
        total = 0
        for line in text.splitlines():
            if needle in line and "counter packets" in line:
                total += int(line.split("counter packets", 1)[1].split()[0])
        return total

    # the store and the sensor

    def store_url(self) -> str:
        return f"sqlite:///{self.district / 'state' / 'incidents.sqlite'}"

    def incidents(self, **filters: str) -> list[Any]:
        from monitor.incidents.store.base import IncidentFilter
        from monitor.incidents.store.sql import open_store

        store = open_store(self.store_url())
        try:
            return store.list(IncidentFilter(**filters), limit=10_000)  # type: ignore[arg-type]
        finally:
            store.close()

    def pseudonym_of(self, sourced_id: str) -> str:
        from monitor.district import DistrictLoader, pseudonym_key
        from monitor.incidents.events import pseudonym

        loader = DistrictLoader(str(self.district))
        try:
            return pseudonym(pseudonym_key(loader.load()), sourced_id)
        finally:
            loader.close()

    def sensor_lines(self) -> list[dict[str, Any]]:
        if self.sensor_out is None or not self.sensor_out.exists():
            return []
        out = []
        for line in self.sensor_out.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 45) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _dnsmasq(ns: Namespace, log: Path, *args: str) -> subprocess.Popen[bytes]:
    exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    cmd = [exe, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces"]
    cmd += ["--pid-file=", "--user=root", "--log-queries", f"--log-facility={log}", *args]
    return ns.popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _build(the_lab: Lab) -> tuple[Namespace, Namespace, Namespace]:
    cl, gw, inet = (the_lab.namespace(r) for r in ("cl", "gw", "inet"))
    the_lab.link(cl, "eth0", [f"{a}/24" for a in CLIENTS], gw, "lan0", [f"{GW_LAN}/24"])
    the_lab.link(gw, "wan0", [f"{GW_WAN}/24"], inet, "eth0", [f"{INET_WAN}/24", f"{INET_DNS}/24"])
    for addr in [*dict.fromkeys(SITES.values()), DOT_SERVER]:
        inet.ip("addr", "add", f"{addr}/32", "dev", "eth0")
    cl.ip("route", "add", "default", "via", GW_LAN)
    gw.ip("route", "add", "203.0.113.0/24", "via", INET_WAN)
    inet.ip("route", "add", "192.0.2.0/24", "via", GW_WAN)
    gw.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    set_resolution(cl, GW_LAN)
    set_resolution(gw, INET_DNS)
    set_resolution(inet, INET_DNS)
    return cl, gw, inet


def missing_tools() -> str:
    missing = [t for t in ("dnsmasq",) if not (shutil.which(t) or Path(f"/usr/sbin/{t}").exists())]
    return ", ".join(missing)


@contextmanager
def gateway_network(base: Path, *, sensor: bool = True) -> Iterator[GatewayNet]:
    """The three namespaces with everything running; removed whole on the way out."""
    if missing_tools():
        pytest.fail(
            f"not found: {missing_tools()}: apt-get install -y dnsmasq-base (scripts/test does so)",
            pytrace=False,
        )
    remove_leftover_etc()
    with lab() as the_lab:
        try:
            yield from _running(the_lab, base, sensor)
        finally:
            for ns in the_lab.spaces:
                shutil.rmtree(ETC_NETNS / ns.name, ignore_errors=True)


def _running(the_lab: Lab, base: Path, with_sensor: bool) -> Iterator[GatewayNet]:
    cl, gw, inet = _build(the_lab)
    district = district_for_gateway(base)
    ca = make_origin_ca(base / "ca", list(SITES))
    origin = inet.call(EchoOrigin().start, ca)
    listeners = inet.call(Listeners().start)
    procs: list[subprocess.Popen[bytes]] = []
    net: GatewayNet | None = None
    try:
        # the internet's DNS: every site by name
        records = [f"--host-record={n},{a}" for n, a in SITES.items()]
        procs.append(
            _dnsmasq(inet, base / "dns-internet.log", f"--listen-address={INET_DNS}", *records)
        )
        # the gateway: the ruleset first (the resolver fills its sets), then the resolver
        ruleset = monitor(
            "gateway", "nftables", "--mode", "transparent", "--workers", str(WORKERS),
            "--worker-port-base", str(WORKER_BASE), "--lan-if", "lan0",
            "--device-nets", "192.0.2.0/24",
        )  # fmt: skip
        (base / "transparent.nft").write_text(ruleset)
        gw.nft(ruleset)
        conf = base / "resolver.conf"
        conf.write_text(
            monitor("gateway", "resolver", "--kind", "dnsmasq", "--config", str(district))
        )
        procs.append(
            _dnsmasq(
                gw,
                base / "dns-district.log",
                f"--conf-file={conf}",
                f"--listen-address={GW_LAN}",
                f"--server={INET_DNS}",
            )
        )
        # the workers, as deploy/ runs them
        log = base / "supervisor.log"
        cmd = [sys.executable, "-m", "monitor", "proxy", "--config", str(district)]
        cmd += ["--mode", "transparent", "--workers", str(WORKERS), "--listen", "0.0.0.0:8080"]
        cmd += ["--worker-port-base", str(WORKER_BASE), "--metrics", f"127.0.0.1:{METRICS_BASE}"]
        cmd += ["--nft-failover"]  # a dead worker's devices go to the other one meanwhile
        # the origin's CA stands in for the public ones a real gateway trusts upstream
        cmd += ["--set", f"ssl_verify_upstream_trusted_ca={ca.cert_pem}"]
        cmd += ["--set", "monitor_reload_interval=0.5"]
        with log.open("wb") as out:
            sup = gw.popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_for(
            lambda: f"all {WORKERS} workers ready" in log.read_text() or sup.poll() is not None,
            90,
            "the workers",
        )
        assert sup.poll() is None, log.read_text()
        bundle = base / "bundle.pem"
        mitm_ca = district / "state" / "mitmproxy" / "mitmproxy-ca-cert.pem"
        bundle.write_bytes(mitm_ca.read_bytes() + ca.cert_pem.read_bytes())
        net = GatewayNet(
            the_lab, cl, gw, inet, base, district, ca, bundle, origin, listeners, sup, log,
            procs=procs,
        )  # fmt: skip
        if with_sensor:
            _start_sensor(net)
        yield net
    finally:
        if net is not None and net.sensor is not None:
            _stop(net.sensor, signal.SIGINT)
        if net is not None:
            _stop(net.supervisor)
            print(net.log_text()[-3000:])
        for p in procs:
            _stop(p, timeout=10)
        origin.stop()
        listeners.stop()


def _start_sensor(net: GatewayNet) -> None:
    """`monitor sensor --iface lan0` on the gateway, with the district; ready once it reports
    a probe query."""
    net.sensor_out = net.base / "sensor.jsonl"
    net.sensor_log = net.base / "sensor.log"
    cmd = [sys.executable, "-m", "monitor", "sensor", "--iface", "lan0", "--format", "json"]
    cmd += ["--config", str(net.district), "--metrics", f"127.0.0.1:{SENSOR_METRICS}", "--stats"]
    cmd += ["--transparent-gateway"]  # beside the proxy: record only what skipped it
    with net.sensor_out.open("wb") as out, net.sensor_log.open("wb") as err:
        net.sensor = net.gw.popen(cmd, stdout=out, stderr=err, cwd=ROOT)
    sensor = net.sensor

    def probed() -> bool:
        assert sensor.poll() is None, net.sensor_log.read_text()  # type: ignore[union-attr]
        udp_exchange(net.cl, CLIENTS[0], GW_LAN, 53, dns_query("probe.example"), timeout=0.3)
        return any(o["hostname"] == "probe.example" for o in net.sensor_lines())

    wait_for(probed, 60, "the sensor to report a probe query", step=0.5)

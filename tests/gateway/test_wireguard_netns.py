"""WireGuard mode end to end in Linux network namespaces: district devices off the district
network reach the gateway's proxy through a WireGuard tunnel, and get the same decisions as
on the network.

    device-a  eth0 203.0.113.2/28  ──── wan0 203.0.113.1/28   gateway (UDP 51821)
              and 2001:db8:203::2/64 (its home network's IPv6, mapped to nobody)
    device-b  eth0 203.0.113.18/28 ──── wan1 203.0.113.17/28  gateway (UDP 51822)
    tunnels   198.51.100.11 (an 11-year-old's Chromebook), 198.51.100.15 and
              2001:db8:100::15 (a 15-year-old's); both route IPv4 and IPv6 into the tunnel

The gateway runs `monitor proxy --mode wireguard:FILE@PORT` once per device (mitmproxy's
WireGuard server has one client key) on the example district, whose addresses map each tunnel
address to its device. Device a's key file is the one mitmproxy writes on its first start;
device b's is made beforehand by `monitor gateway wireguard-client --create`. Each device
runs Debian's userspace wireguard-go (this kernel has no WireGuard module), configured by wg
from the file `monitor gateway wireguard-client` prints, with its default route into the
tunnel and DNS through it (mitmproxy answers 10.0.0.53 by asking the gateway's resolver). The
origin, with a test CA of its own, runs in the gateway namespace; every upstream connection
goes to it (tests/upstream_map.py). Clients: real curl, and for HTTP/3 (which this curl lacks)
aioquic (tests/wgquic.py).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns import Lab, Namespace, Response, curl, lab, namespaces, wait_for
from netns import remove_leftovers as remove_namespace_leftovers
from proxyharness import EXAMPLE_HOSTS, ORIGIN_CA_NAME, Origin, example_district, make_origin_ca
from wgdevice import (
    UAPI_DIR,
    WgDevice,
    ifname,
    missing_requirements,
    remove_leftovers,
    set_resolution,
    wg_device,
)

from monitor.gateway.wireguard import new_key, public_key

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
METRICS = "127.0.0.1:9464"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
HTML = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
API_HOST = "api16-normal-c-useast1a.tiktokv.com"
PASS_URL = "https://www.school-site.example/lesson"  # outside the catalogue
# what the gateway's resolver (dnsmasq) answers, which mitmproxy's DNS in the tunnel asks;
# documentation addresses that exist nowhere: upstream_map sends every connection to the origin
NAMES = {host: f"192.0.2.{10 + i}" for i, host in enumerate(EXAMPLE_HOSTS)}


@dataclass(frozen=True)
class Spec:
    tag: str  # a, b: namespace role and interface suffix
    device_id: str  # in the example district's devices.csv
    tunnel: str
    gw_addr: str
    dev_addr: str
    port: int
    who: str
    tunnel6: str = ""  # an IPv6 tunnel address too (given to wireguard-client --address6)
    home6: str = ""  # an IPv6 address of the device's own (home) network


UNDER13 = Spec("a", "cb-00240", "198.51.100.11", "203.0.113.1/28", "203.0.113.2/28", 51821,
               "an 11-year-old's Chromebook (grade 6)", home6="2001:db8:203::2")  # fmt: skip
TEEN = Spec("b", "cb-00555", "198.51.100.15", "203.0.113.17/28", "203.0.113.18/28", 51822,
            "a 15-year-old's Chromebook (grade 10)", tunnel6="2001:db8:100::15")  # fmt: skip
SPECS = (UNDER13, TEEN)
UNMAPPED = "198.51.100.99"


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def district_with_tunnels(base: Path) -> Path:
    """The example district (every day a school day) with each device's tunnel address in
    district.yaml's addresses, next to its demo address."""
    district = example_district(base)
    path = district / "district.yaml"
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("addresses:"))
    extra = [
        f'  - {{cidr: "{cidr}", device: {s.device_id}, note: WireGuard tunnel}}'
        for s in SPECS
        for cidr in (f"{s.tunnel}/32", f"{s.tunnel6}/128" if s.tunnel6 else "")
        if cidr
    ]
    path.write_text("\n".join([*lines[: at + 1], *extra, *lines[at + 1 :]]) + "\n")
    return district


@dataclass
class Tunnelled:
    gw: Namespace
    devices: dict[str, tuple[Namespace, WgDevice]]
    district: Path
    keyfiles: dict[str, Path]
    client_confs: dict[str, str]
    bundle: Path
    origin: Origin
    proxy: subprocess.Popen[bytes]
    log: Path

    def get(self, spec: Spec, url: str, **kw: object) -> Response:
        ns = self.devices[spec.tag][0]
        return curl(ns, url, source=spec.tunnel, cacert=self.bundle, **kw)  # type: ignore[arg-type]

    def pseudonym_of(self, spec: Spec) -> str:
        """The pseudonym of the student the device inventory assigns ``spec``'s device to."""
        from monitor.district import DistrictLoader, pseudonym_key
        from monitor.incidents.events import pseudonym

        with (self.district / "devices.csv").open(newline="") as f:
            row = next(r for r in csv.DictReader(f) if r["deviceId"] == spec.device_id)
        loader = DistrictLoader(str(self.district))
        try:
            return pseudonym(pseudonym_key(loader.load()), row["assignedUser"])
        finally:
            loader.close()

    def incidents(self, **filters: str) -> list[Any]:
        from monitor.incidents.store.base import IncidentFilter
        from monitor.incidents.store.sql import open_store

        store = open_store(f"sqlite:///{self.district / 'state' / 'incidents.sqlite'}")
        try:
            return store.list(IncidentFilter(**filters), limit=1000)  # type: ignore[arg-type]
        finally:
            store.close()

    def metric(self, name: str, **labels: str) -> float:
        def read() -> str:
            with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=5) as r:
                return str(r.read().decode())

        total = 0.0
        for line in self.gw.call(read).splitlines():
            if line.startswith((name + "{", name + " ")) and all(
                f'{k}="{v}"' in line for k, v in labels.items()
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total


def _client_conf(district: Path, spec: Spec, keyfile: Path, *, create: bool = False) -> str:
    args = ["gateway", "wireguard-client", "--config", str(district), "--server-conf"]
    args += [str(keyfile), "--endpoint", f"{spec.gw_addr.split('/')[0]}:{spec.port}"]
    args += ["--address", spec.tunnel, *(["--create"] if create else [])]
    args += ["--address6", spec.tunnel6] if spec.tunnel6 else []
    out = monitor(*args)
    assert out.returncode == 0, out.stderr
    for address in filter(None, (spec.tunnel, spec.tunnel6)):
        assert f"tunnel address {address} is device {spec.device_id} (static)" in out.stderr
    return out.stdout


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def tunnelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tunnelled]:
    missing_requirements()
    if not Path(DNSMASQ).exists():
        pytest.fail("dnsmasq not found: apt-get install -y dnsmasq-base", pytrace=False)
    base = tmp_path_factory.mktemp("wg")
    remove_leftovers()
    with lab() as the_lab:
        try:
            yield from _running(the_lab, base)
        finally:
            for ns in the_lab.spaces:
                shutil.rmtree(Path("/etc/netns") / ns.name, ignore_errors=True)


def _running(the_lab: Lab, base: Path) -> Iterator[Tunnelled]:
    gw = the_lab.namespace("gw")
    devs = {s.tag: the_lab.namespace(f"dev{s.tag}") for s in SPECS}
    for i, s in enumerate(SPECS):
        home = [s.dev_addr, *([f"{s.home6}/64"] if s.home6 else [])]
        the_lab.link(gw, f"wan{i}", [s.gw_addr], devs[s.tag], "eth0", home)
    district = district_with_tunnels(base)
    ca = make_origin_ca(base / "ca", EXAMPLE_HOSTS)
    origin = gw.call(Origin().start, ca)
    resolver: subprocess.Popen[bytes] | None = None
    proxy: subprocess.Popen[bytes] | None = None
    wg_devices: list[WgDevice] = []
    log = base / "proxy.log"
    try:
        # the district's resolver on the gateway, which mitmproxy's DNS in the tunnel asks
        set_resolution(gw, ("127.0.0.1",), {})
        records = [f"--host-record={name},{addr}" for name, addr in NAMES.items()]
        resolver = gw.popen(
            [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces"]
            + ["--pid-file=", "--user=root", "--log-queries", f"--log-facility={base}/dns.log"]
            + ["--listen-address=127.0.0.1", *records],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        keyfiles = {s.tag: base / "wireguard" / f"{s.device_id}.conf" for s in SPECS}
        # device b's keys made before the proxy starts; device a's written by mitmproxy
        confs = {TEEN.tag: _client_conf(district, TEEN, keyfiles[TEEN.tag], create=True)}
        cmd = [sys.executable, "-m", "monitor", "proxy", "--config", str(district)]
        cmd += ["--listen", "*:51820", "--metrics", METRICS, "--verbose"]
        for s in SPECS:
            cmd += ["--mode", f"wireguard:{keyfiles[s.tag]}@{s.port}"]
        cmd += ["--script", str(ROOT / "tests" / "upstream_map.py")]
        for opt in (
            f"test_upstream=127.0.0.1:{origin.https_port}",
            f"test_upstream_plain=127.0.0.1:{origin.http_port}",
            f"ssl_verify_upstream_trusted_ca={ca.cert_pem}",
        ):
            cmd += ["--set", opt]
        with log.open("wb") as out:
            proxy = gw.popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        running = proxy
        wait_for(
            lambda: (
                log.read_text().count("WireGuard server listening at") == len(SPECS)
                or running.poll() is not None
            ),
            60,
            "the proxy's WireGuard servers",
        )
        assert proxy.poll() is None, log.read_text()
        world = Tunnelled(
            gw, {}, district, keyfiles, confs, base / "bundle.pem", origin, proxy, log
        )
        wait_for(lambda: _metrics_up(world), 30, "the proxy's metrics (district loaded)")
        confs[UNDER13.tag] = _client_conf(district, UNDER13, keyfiles[UNDER13.tag])
        for s in SPECS:
            ns = devs[s.tag]
            dev = WgDevice.start(ns, confs[s.tag], ifname(s.tag), base / f"wg-{s.tag}.log")
            wg_devices.append(dev)
            set_resolution(ns, dev.conf.dns, {})
            world.devices[s.tag] = (ns, dev)
        mitm_ca = district / "state" / "mitmproxy" / "mitmproxy-ca-cert.pem"
        world.bundle.write_bytes(mitm_ca.read_bytes() + ca.cert_pem.read_bytes())
        yield world
    finally:
        for dev in wg_devices:
            dev.stop()
        for proc in (proxy, resolver):
            if proc is not None:
                _stop(proc)
        origin.stop()
        if log.exists():
            print(log.read_text(errors="replace")[-3000:])


def _metrics_up(world: Tunnelled) -> bool:
    try:
        world.metric("monitor_connections_total")
    except OSError:
        return False
    return True


def _logged_conf(log: str, port: int) -> dict[str, str]:
    """The client configuration mitmproxy logged for its server on ``port``."""
    for block in re.findall(r"\[Interface\].*?Endpoint = \S+", log, re.S):
        if block.rstrip().endswith(f":{port}"):
            return dict(re.findall(r"^(\w+) = (.+)$", block, re.M))
    raise AssertionError(f"mitmproxy logged no client configuration for port {port}")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.tag)
def test_the_client_configuration_has_mitmproxys_keys(tunnelled: Tunnelled, spec: Spec) -> None:
    ours = dict(re.findall(r"^(\w+) = (.+)$", tunnelled.client_confs[spec.tag], re.M))
    log = tunnelled.log.read_text()
    theirs = _logged_conf(log, spec.port)
    keys = json.loads(tunnelled.keyfiles[spec.tag].read_text())
    assert ours["PrivateKey"] == keys["client_key"]
    assert ours["PublicKey"] == theirs["PublicKey"] == public_key(keys["server_key"])
    # mitmproxy logs the client configuration at start (info: --verbose); the key stays out
    # of the journal (addons/logprivacy.py), where it would let anyone pose as the device
    assert theirs["PrivateKey"] == "(hidden: in the WireGuard key file)"
    assert keys["client_key"] not in log
    # mitmproxy's own says 10.0.0.1/32 for every device, and routes IPv4 only
    six = f", {spec.tunnel6}/128" if spec.tunnel6 else ""
    assert ours["Address"] == f"{spec.tunnel}/32{six}"
    assert ours["AllowedIPs"] == "0.0.0.0/0, ::/0"
    assert ours["Endpoint"] == f"{spec.gw_addr.split('/')[0]}:{spec.port}"
    # mitmproxy's log shows addresses masked (addons/logprivacy.py), and its Endpoint as
    # "None:PORT" on a gateway without a default route: the keys are what must agree
    assert ours["DNS"] == "10.0.0.53"


def test_names_resolve_through_the_tunnel(tunnelled: Tunnelled) -> None:
    ns = tunnelled.devices[UNDER13.tag][0]
    out = ns.run(["getent", "ahostsv4", "www.tiktok.com"], check=False)
    assert out.stdout.split()[:1] == [NAMES["www.tiktok.com"]], out


def test_an_under_13_device_gets_the_block_page(tunnelled: Tunnelled) -> None:
    before = tunnelled.metric("monitor_requests_total", decision="block", age_band="under13")
    r = tunnelled.get(UNDER13, "https://www.tiktok.com/", headers=HTML)
    assert r.status == 403, r.stderr[-800:]
    assert "Students 12 and under may only use platforms made for their age group" in r.body
    assert "mitmproxy" in r.issuer
    after = tunnelled.metric("monitor_requests_total", decision="block", age_band="under13")
    assert after == before + 1
    assert tunnelled.origin.requests_to("www.tiktok.com") == []


def test_an_under_13_devices_post_is_an_incident_naming_its_student(tunnelled: Tunnelled) -> None:
    """The incident names the student the device inventory assigns the device to (by
    pseudonym), as on the district network."""
    ns = tunnelled.devices[UNDER13.tag][0]
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", str(tunnelled.bundle)]
    cmd += ["-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data", "caption=synthetic"]
    out = ns.run([*cmd, "https://www.tiktok.com/api/commit/item/post/"], check=False)
    assert out.stdout == "403", out.stderr
    person = tunnelled.pseudonym_of(UNDER13)
    found = wait_for(
        lambda: tunnelled.incidents(person=person, platform="tiktok"), 15, "the incident"
    )
    assert [(i.rule_id, i.age_band, i.activity, i.host) for i in found] == [
        ("under13-activity", "under13", "post", "www.tiktok.com")
    ]


def test_an_under_13_device_is_refused_an_api_host_without_decryption(
    tunnelled: Tunnelled,
) -> None:
    before = tunnelled.metric("monitor_connections_total", outcome="refused")
    r = tunnelled.get(UNDER13, f"https://{API_HOST}/aweme/v1/feed/", timeout=5)
    assert r.status == 0
    assert r.issuer == "", r.stderr[-800:]  # no certificate: nothing was decrypted
    assert tunnelled.metric("monitor_connections_total", outcome="refused") == before + 1
    assert tunnelled.origin.requests_to(API_HOST) == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.tag)
def test_a_host_outside_the_catalogue_passes_through(tunnelled: Tunnelled, spec: Spec) -> None:
    r = tunnelled.get(spec, PASS_URL)
    assert r.status == 200, r.stderr[-800:]
    assert ORIGIN_CA_NAME in r.issuer  # the origin's own certificate: not decrypted
    dev = tunnelled.devices[spec.tag][1]
    assert dev.latest_handshake() > 0, dev.show()  # through the tunnel, its only route


def test_a_teen_gets_youtube_restrict(tunnelled: Tunnelled) -> None:
    r = tunnelled.get(TEEN, "https://www.youtube.com/", headers=HTML)
    assert r.status == 200, r.stderr[-800:]
    assert "mitmproxy" in r.issuer  # decrypted only to add the header
    seen = tunnelled.origin.requests_to("www.youtube.com")[-1]
    assert seen.headers.get("YouTube-Restrict") == "Strict"
    # the same host for the under-13 device: blocked, so identity follows the tunnel address
    r = tunnelled.get(UNDER13, "https://www.youtube.com/", headers=HTML)
    assert r.status == 403 and "under13" in r.body


def h3_get(tunnelled: Tunnelled, spec: Spec, host: str, timeout: float = 8) -> dict[str, Any]:
    """An HTTP/3 GET from ``spec``'s device (tests/wgquic.py) to ``host``'s address."""
    ns = tunnelled.devices[spec.tag][0]
    script = str(ROOT / "tests" / "wgquic.py")
    args = [NAMES[host], host, "/", str(tunnelled.bundle), str(timeout)]
    out = ns.run([sys.executable, script, *args], timeout=timeout + 20)
    return dict(json.loads(out.stdout))


def test_http3_in_the_tunnel_is_decided_too(tunnelled: Tunnelled) -> None:
    """UDP/443 enters the tunnel like the rest, and the proxy decides QUIC connections as it
    decides TLS over TCP (transparent mode on the network drops QUIC instead)."""
    r = h3_get(tunnelled, UNDER13, "www.tiktok.com")
    assert r["status"] == 403, r
    assert "Students 12 and under may only use platforms made for their age group" in r["body"]
    refused = tunnelled.metric("monitor_connections_total", outcome="refused")
    r = h3_get(tunnelled, UNDER13, API_HOST, timeout=4)
    assert r["status"] == 0, r  # no handshake: refused without decrypting
    assert tunnelled.metric("monitor_connections_total", outcome="refused") == refused + 1
    # the teen's YouTube request is decrypted to add the header; the origin here speaks no
    # HTTP/3, so what shows is the decision, not the origin's answer
    restricted = tunnelled.metric("monitor_requests_total", decision="restrict", age_band="teen")
    r = h3_get(tunnelled, TEEN, "www.youtube.com")
    assert r["status"] == 502, r
    after = tunnelled.metric("monitor_requests_total", decision="restrict", age_band="teen")
    assert after == restricted + 1
    passed = tunnelled.metric("monitor_connections_total", outcome="passthrough")
    r = h3_get(tunnelled, TEEN, "www.school-site.example", timeout=3)
    assert r["status"] == 0  # passed through to an origin with no QUIC listener
    assert tunnelled.metric("monitor_connections_total", outcome="passthrough") == passed + 1


def curl6(tunnelled: Tunnelled, spec: Spec, host: str, source: str) -> Response:
    """curl over IPv6 from ``source`` to ``host`` at a documentation address (the resolver
    here answers IPv4 only, so the name is pinned with --resolve)."""
    ns = tunnelled.devices[spec.tag][0]
    index = EXAMPLE_HOSTS.index(host)
    cmd = ["curl", "-sS", "-v", "--max-time", "10", "--interface", source, "--cacert"]
    cmd += [str(tunnelled.bundle), "--resolve", f"{host}:443:[2001:db8::{10 + index}]"]
    cmd += [*(x for k, v in HTML.items() for x in ("-H", f"{k}: {v}"))]
    cmd += ["-o", "-", "-w", "\n%{http_code}", f"https://{host}/"]
    out = ns.run(cmd, check=False, timeout=30)
    body, _, status = out.stdout.rpartition("\n")
    issuer = next((x.split("issuer:", 1)[1] for x in out.stderr.splitlines() if "issuer:" in x), "")
    return Response(int(status or 0), {}, body, issuer.strip(), out.stderr)


def test_ipv6_enters_the_tunnel_too(tunnelled: Tunnelled) -> None:
    """mitmproxy's own client configuration routes IPv4 only: a device's IPv6 connections
    would go past the proxy. With ``::/0`` in the tunnel: the teen's IPv6 tunnel address is
    mapped like the IPv4 one, and a connection from the under-13 device's home IPv6 address
    (mapped to nobody) gets the unknown device's under-13 rules, not a way around them."""
    r = curl6(tunnelled, TEEN, "www.youtube.com", TEEN.tunnel6)
    assert r.status == 200, r.stderr[-800:]
    assert "mitmproxy" in r.issuer
    seen = tunnelled.origin.requests_to("www.youtube.com")[-1]
    assert seen.headers.get("YouTube-Restrict") == "Strict"
    r = curl6(tunnelled, UNDER13, "www.tiktok.com", UNDER13.home6)
    assert r.status == 403, r.stderr[-800:]
    assert "under13" in r.body and "mitmproxy" in r.issuer


def test_a_tunnel_address_outside_the_map_is_an_unknown_device(tunnelled: Tunnelled) -> None:
    """The teen's device sending from an address district.yaml does not map: treated as
    unknown (under-13 rules). mitmproxy's WireGuard server accepts any inner source address
    from a peer with the right key, so the address identifies a device only as far as its
    configuration is the district's (pushed by device management), as on the network."""
    ns, dev = tunnelled.devices[TEEN.tag]
    ns.ip("address", "add", f"{UNMAPPED}/32", "dev", dev.ifname)
    try:
        r = curl(ns, "https://www.youtube.com/", source=UNMAPPED, cacert=tunnelled.bundle,
                 headers=HTML)  # fmt: skip
    finally:
        ns.ip("address", "del", f"{UNMAPPED}/32", "dev", dev.ifname)
    assert r.status == 403, r.stderr[-800:]
    assert "under13" in r.body


def test_nothing_is_left_when_a_test_fails(tmp_path: Path) -> None:
    """A lab with a running WireGuard client, ended by an exception: no namespace, TUN
    device, wireguard-go process or UAPI socket remains."""
    missing_requirements()
    quick = (
        f"[Interface]\nPrivateKey = {new_key()}\nAddress = 198.51.100.99/32\nDNS = 10.0.0.53\n\n"
        f"[Peer]\nPublicKey = {public_key(new_key())}\nAllowedIPs = 0.0.0.0/0\n"
        "Endpoint = 203.0.113.33:51820\n"
    )
    seen: dict[str, object] = {}
    with pytest.raises(RuntimeError, match="a failing test"), lab() as the_lab:
        ns = the_lab.namespace("devz")
        the_lab.link(ns, "eth0", ["203.0.113.34/28"], the_lab.namespace("gwz"), "wan0",
                     ["203.0.113.33/28"])  # fmt: skip
        with wg_device(ns, quick, ifname("z"), tmp_path / "wg.log") as dev:
            seen.update(pid=dev.proc.pid, ns=ns.name)
            assert ifname("z") in ns.run(["ip", "-brief", "link"]).stdout
            assert (UAPI_DIR / f"{ifname('z')}.sock").exists()
            raise RuntimeError("a failing test")
    assert seen["ns"] not in namespaces()
    pid = seen["pid"]
    assert (
        not Path(f"/proc/{pid}").exists()
        or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    )
    assert not (UAPI_DIR / f"{ifname('z')}.sock").exists()


CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, "tests")
from monitor.gateway.wireguard import new_key, public_key
from netns import Lab
from wgdevice import ifname, set_resolution, wg_device
quick = (f"[Interface]\\nPrivateKey = {new_key()}\\nAddress = 198.51.100.98/32\\n\\n"
         f"[Peer]\\nPublicKey = {public_key(new_key())}\\nAllowedIPs = 0.0.0.0/0\\n"
         "Endpoint = 203.0.113.49:51820\\n")
lab = Lab.create()
ns, gw = lab.namespace("devk"), lab.namespace("gwk")
lab.link(ns, "eth0", ["203.0.113.50/28"], gw, "wan0", ["203.0.113.49/28"])
set_resolution(ns, ("10.0.0.53",), {})
with wg_device(ns, quick, ifname("k"), Path(sys.argv[1]) / "wg.log") as dev:
    print("up", lab.tag, dev.ifname, dev.proc.pid, flush=True)
    time.sleep(600)
"""


def test_a_killed_run_leaves_what_the_next_one_removes(tmp_path: Path) -> None:
    """A test process with a WireGuard client up is SIGKILLed (nothing of its own clean-up
    runs): the next run's first steps remove its namespaces, wireguard-go, TUN device, UAPI
    socket and /etc/netns directory."""
    missing_requirements()
    with lab():  # skips without root, like the other namespace tests
        pass
    out, err = tmp_path / "child.out", tmp_path / "child.err"
    with out.open("w") as o, err.open("w") as e:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, stdout=o, stderr=e
        )
    try:
        wait_for(
            lambda: out.read_text().startswith("up ") or child.poll() is not None,
            60,
            "the child's WireGuard client",
        )
        assert out.read_text().startswith("up "), err.read_text()
        _, tag, name, pid = out.read_text().split()
    finally:
        child.kill()
        child.wait()
    ours = sorted(n for n in namespaces() if n.startswith(tag + "-"))
    assert ours == [f"{tag}-devk", f"{tag}-gwk"]
    assert Path(f"/proc/{pid}").exists()  # wireguard-go outlived the test process
    assert (UAPI_DIR / f"{name}.sock").exists()
    assert (Path("/etc/netns") / f"{tag}-devk").is_dir()
    assert set(ours) <= set(remove_namespace_leftovers())
    removed = remove_leftovers()
    assert {str(UAPI_DIR / f"{name}.sock"), f"/etc/netns/{tag}-devk"} <= set(removed)
    assert not [n for n in namespaces() if n.startswith(tag + "-")]
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "wireguard-go to end")

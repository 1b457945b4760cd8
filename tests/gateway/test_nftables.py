"""`monitor gateway nftables` (monitor/gateway/nftables.py): the text it writes, its errors,
the shipped examples in deploy/nftables/, and what the kernel does with the ruleset, in network
namespaces with plain sockets standing in for the workers (no mitmdump: the workers' side is
tests/gateway/test_workers_netns.py)."""

from __future__ import annotations

import errno
import ipaddress
import shlex
import socket
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from netns import Lab, Namespace, lab

from monitor.cli import main
from monitor.gateway import nftables as nft

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "deploy" / "nftables").glob("*.nft"))


def generate(*args: str) -> str:
    r = CliRunner().invoke(main, ["gateway", "nftables", *args])
    assert r.exit_code == 0, r.output
    return r.output


def refused(*args: str) -> str:
    r = CliRunner().invoke(main, ["gateway", "nftables", *args])
    assert r.exit_code == 2, r.output
    return " ".join(r.output.split())


# -- the text ---------------------------------------------------------------------------------


def test_regular_mode_hashes_the_source_address_over_the_worker_ports() -> None:
    text = generate("--workers", "3", "--worker-port-base", "13128", "--listen-port", "3128")
    assert "define PROXY_PORT = 3128" in text
    for fam in ("ip", "ip6"):
        assert (
            f"tcp dport $PROXY_PORT meta mark set jhash {fam} saddr mod 3 seed 0x5eed "
            "redirect to : meta mark map @workers"
        ) in text
    # the bucket -> port map, declared, flushed and filled (a reload resets any failover)
    assert "\tmap workers { type mark : inet_service; }" in text
    assert "flush map inet student_monitor workers\n" in text
    assert "elements = { 0 : 13128, 1 : 13129, 2 : 13130 }" in text
    assert "table inet student_monitor {" in text
    assert "catalogue4" not in text  # no sets, no forward rules in regular mode
    assert "chain forward" not in text
    assert "No --lan-if: the rules match packets from every interface." in text


def test_transparent_mode_redirects_catalogue_addresses_and_refuses_quic_dns_and_dot() -> None:
    text = generate(
        "--mode", "transparent", "--workers", "2", "--lan-if", "lan0",
        "--device-nets", "10.10.0.0/16,10.20.0.0/16,2001:db8:10::/48",
        "--resolver", "10.0.0.53,2001:db8::53",
    )  # fmt: skip
    assert "define DEVICE_NETS4 = { 10.10.0.0/16, 10.20.0.0/16 }" in text
    assert "define DEVICE_NETS6 = { 2001:db8:10::/48 }" in text
    assert "set catalogue4 {\n\t\ttype ipv4_addr; flags timeout;" in text
    assert "set catalogue6 {\n\t\ttype ipv6_addr; flags timeout;" in text
    assert (
        "iifname $LAN_IF ip saddr $DEVICE_NETS4 ip daddr @catalogue4 tcp dport { 80, 443 } "
        "meta mark set jhash ip saddr mod 2 seed 0x5eed redirect to : meta mark map @workers"
    ) in text
    assert "elements = { 0 : 13128, 1 : 13129 }" in text
    assert (
        "ip6 daddr @catalogue6 tcp dport { 80, 443 } meta mark set jhash ip6 saddr mod 2"
    ) in text
    assert "ip saddr $DEVICE_NETS4 udp dport 443 counter reject" in text
    assert "ip daddr != $RESOLVER4 meta l4proto { tcp, udp } th dport 53 counter reject" in text
    assert "ip6 daddr != $RESOLVER6 meta l4proto { tcp, udp } th dport 53" in text
    assert text.count("th dport 853 counter reject") == 2
    assert "PROXY_PORT" not in text


def test_a_family_without_device_networks_is_matched_whole_on_the_interface() -> None:
    # IPv4 networks only: IPv6 devices must not go around the proxy
    text = generate("--mode", "transparent", "--lan-if", "lan0", "--device-nets", "10.0.0.0/8")
    assert "iifname $LAN_IF meta nfproto ipv6 ip6 daddr @catalogue6" in text
    assert "iifname $LAN_IF meta nfproto ipv6 udp dport 443 counter reject" in text
    # no resolver given: forwarded DNS is refused whatever its destination
    assert "iifname $LAN_IF ip saddr $DEVICE_NETS4 meta l4proto { tcp, udp } th dport 53" in text


def test_the_output_is_the_same_for_the_same_input_and_names_its_command() -> None:
    args = ("--workers", "4", "--lan-if", "lan0", "--device-nets", "10.10.0.0/16")
    text = generate(*args)
    assert text == generate(*args)
    assert (
        "#   monitor gateway nftables --mode regular --workers 4 --worker-port-base 13128 "
        "--listen-port 3128 --lan-if lan0 --device-nets 10.10.0.0/16\n"
    ) in text


def test_workers_auto_is_one_per_core() -> None:
    n = len(__import__("os").sched_getaffinity(0))
    assert f"mod {n} seed" in generate("--workers", "auto")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workers", "0"), "Invalid value for --workers: 0 workers: at least 1"),
        (("--workers", "x"), "'x' is not a number of workers"),
        (("--device-nets", "10.0.0.1/8"), "'10.0.0.1/8' is not a network (CIDR such as"),
        (("--device-nets", "lan"), "'lan' is not a network"),
        (("--resolver", "10.0.0.53"), "a resolver is for transparent mode only"),
        (("--mode", "transparent", "--resolver", "dns.example"), "is not an IP address"),
        (("--worker-port-base", "65535", "--workers", "2"), "65535-65536"),
        (("--listen-port", "13129", "--workers", "2"), "listen port 13129 is one of the worker"),
        (("--mode", "transparent", "--worker-port-base", "440", "--workers", "4"), "port 443"),
        (("--lan-if", "lan 0"), "interface name 'lan 0'"),
        (("--listen-port", "0"), "listen port 0 is outside 1-65535"),
        (("--mode", "bridge"), "'bridge' is not one of 'regular', 'transparent'"),
    ],
)
def test_bad_input_is_one_clear_error(args: tuple[str, ...], message: str) -> None:
    assert message in refused(*args)


def test_spec_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="outside 1-65535: choose a base between 1 and 65533"):
        nft.ruleset_spec("regular", 3, 65534)


# -- the shipped examples -----------------------------------------------------------------


def _command_of(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    i = lines.index("# Generated by:")
    return shlex.split(lines[i + 1].removeprefix("#"))


def test_the_shipped_rulesets_are_what_the_command_writes() -> None:
    assert {p.name for p in SHIPPED} == {"regular.nft", "transparent.nft"}
    for path in SHIPPED:
        command = _command_of(path)
        assert command[:3] == ["monitor", "gateway", "nftables"], path
        assert generate(*command[3:]) == path.read_text(), (
            f"{path.relative_to(ROOT)} differs from what `{shlex.join(command)}` writes: "
            f"regenerate it with `{shlex.join(command)} --out {path.relative_to(ROOT)}`"
        )


# -- in the kernel ------------------------------------------------------------------------------


@pytest.fixture
def gw() -> Iterator[Namespace]:
    with lab() as the_lab:
        yield the_lab.namespace("gw")


def _loaded(ns: Namespace) -> str:
    return ns.run(["nft", "list", "table", "inet", "student_monitor"]).stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--workers", "1"),
        ("--workers", "8", "--lan-if", "lan0", "--device-nets", "10.0.0.0/8,2001:db8::/32"),
        ("--mode", "transparent", "--workers", "2"),
        ("--mode", "transparent", "--workers", "3", "--lan-if", "eth1",
         "--device-nets", "10.1.0.0/16", "--resolver", "10.0.0.53,2001:db8::53"),
        ("--mode", "transparent", "--device-nets", "2001:db8::/48", "--resolver", "2001:db8::53"),
    ],
)  # fmt: skip
def test_nft_loads_every_variant(gw: Namespace, args: tuple[str, ...]) -> None:
    gw.nft(generate(*args))
    listed = _loaded(gw)
    assert "jhash ip saddr mod" in listed and "jhash ip6 saddr mod" in listed
    if "transparent" in args:
        assert "set catalogue4 {\n\t\ttype ipv4_addr\n\t\tflags timeout" in listed
        assert "set catalogue6 {\n\t\ttype ipv6_addr\n\t\tflags timeout" in listed


def test_loading_again_replaces_the_rules_and_keeps_the_resolvers_addresses(gw: Namespace) -> None:
    gw.nft(generate("--mode", "transparent", "--workers", "2"))
    gw.run(["nft", "add", "element", "inet", "student_monitor", "catalogue4", "{ 198.51.100.7 }"])
    gw.run(["nft", "add", "element", "inet", "student_monitor", "catalogue6", "{ 2001:db8::7 }"])
    gw.nft(generate("--mode", "transparent", "--workers", "3"))
    listed = _loaded(gw)
    assert "198.51.100.7" in listed and "2001:db8::7" in listed
    assert listed.count("redirect to") == 2  # one per family, not appended to the old ones
    assert "mod 3" in listed and "mod 2" not in listed


@dataclass
class Bench:
    """A clients and a gateway namespace; sockets on the worker ports stand in for workers."""

    gw: Namespace
    cl: Namespace
    listeners: dict[int, socket.socket]

    def accept(self) -> tuple[int, str, socket.socket]:
        """(worker port, peer address, socket) of the next connection any stand-in got."""
        import select

        ready, _, _ = select.select(list(self.listeners.values()), [], [], 5)
        assert ready, "no worker got the connection"
        listener = ready[0]
        conn, peer = listener.accept()
        return listener.getsockname()[1], peer[0], conn

    def connect(self, source: str, dest: str, port: int, timeout: float = 3) -> socket.socket:
        def make() -> socket.socket:
            fam = socket.AF_INET6 if ":" in source else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.settimeout(timeout)
                s.bind((source, 0))
                s.connect((dest, port))
            except BaseException:
                s.close()
                raise
            return s

        return self.cl.call(make)


CLIENTS4 = [f"192.0.2.{i}" for i in range(10, 50)]
CLIENTS6 = [f"2001:db8::{i:x}" for i in range(0x10, 0x30)]


def _bench(the_lab: Lab, ruleset_args: tuple[str, ...], ports: range) -> Bench:
    gw, cl = the_lab.namespace("gw"), the_lab.namespace("cl")
    the_lab.link(
        gw, "lan0", ["192.0.2.1/24", "2001:db8::1/64"],
        cl, "eth0", [f"{a}/24" for a in CLIENTS4] + [f"{a}/64" for a in CLIENTS6],
    )  # fmt: skip
    cl.ip("route", "add", "default", "via", "192.0.2.1")
    cl.ip("-6", "route", "add", "default", "via", "2001:db8::1")
    gw.nft(generate(*ruleset_args))

    def listen(port: int) -> socket.socket:
        s = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
        s.setblocking(True)
        return s

    return Bench(gw, cl, {p: gw.call(listen, p) for p in ports})


@pytest.fixture
def regular() -> Iterator[Bench]:
    with lab() as the_lab:
        args = ("--workers", "2", "--worker-port-base", "13128", "--lan-if", "lan0")
        bench = _bench(
            the_lab, (*args, "--device-nets", "192.0.2.0/24,2001:db8::/64"), range(13128, 13130)
        )
        try:
            yield bench
        finally:
            for s in bench.listeners.values():
                s.close()


def _plain(address: str) -> str:
    return str(ipaddress.ip_address(address.removeprefix("::ffff:")))


def test_the_kernel_keeps_each_device_on_one_worker_with_its_own_address(regular: Bench) -> None:
    seen: dict[str, set[int]] = {}
    for client in CLIENTS4 + CLIENTS6:
        dest = "2001:db8::1" if ":" in client else "192.0.2.1"
        for _ in range(3):
            c = regular.connect(client, dest, 3128)
            port, peer, conn = regular.accept()
            # a destination NAT: the worker sees the device's own address
            assert _plain(peer) == client
            seen.setdefault(client, set()).add(port)
            conn.close()
            c.close()
    assert {c: p for c, p in seen.items() if len(p) > 1} == {}
    per_worker = Counter(next(iter(p)) for p in seen.values())
    assert set(per_worker) == {13128, 13129}
    # 72 addresses over 2 workers: a hash, not one worker with a stray few
    assert min(per_worker.values()) >= 72 // 4, per_worker
    print("devices per worker:", dict(per_worker))


def test_a_worker_port_is_reached_through_the_redirect_only(regular: Bench) -> None:
    with pytest.raises((TimeoutError, socket.timeout)):
        regular.connect("192.0.2.10", "192.0.2.1", 13128, timeout=1)
    # from the gateway itself (loopback) a worker port stays open, for local checks
    s = regular.gw.call(lambda: socket.create_connection(("127.0.0.1", 13128), timeout=2))
    s.close()


SO_ORIGINAL_DST = 80


def _original_dst(conn: socket.socket) -> tuple[str, int]:
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, addr = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(addr), port


SINK = """
table inet sink {
    chain prerouting {
        type filter hook prerouting priority raw; policy drop;
        ip daddr 198.51.100.11 tcp dport 443 counter drop
    }
}
"""


@pytest.fixture
def transparent() -> Iterator[Bench]:
    with lab() as the_lab:
        args = ("--mode", "transparent", "--workers", "2", "--lan-if", "lan0")
        args += ("--device-nets", "192.0.2.0/24,2001:db8::/64", "--resolver", "198.51.100.53")
        bench = _bench(the_lab, args, range(13128, 13130))
        gw = bench.gw
        # the way out: a namespace that counts and drops whatever reaches it (no route out)
        sink = the_lab.namespace("sink")
        the_lab.link(gw, "wan0", ["203.0.113.1/24"], sink, "eth0", ["203.0.113.2/24"])
        gw.ip("route", "add", "198.51.100.0/24", "via", "203.0.113.2")
        gw.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        sink.nft(SINK)
        gw.run(
            ["nft", "add", "element", "inet", "student_monitor", "catalogue4", "{ 198.51.100.10 }"]
        )
        try:
            yield bench
        finally:
            for s in bench.listeners.values():
                s.close()


def _udp(bench: Bench, source: str, dest: str, port: int) -> str:
    """Send one datagram; 'refused' when the gateway rejected it, 'sent' when nothing came
    back (forwarded)."""

    def probe() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.7)
            s.bind((source, 0))
            s.connect((dest, port))
            s.send(b"\x00" * 32)
            try:
                s.recv(512)
            except ConnectionRefusedError:
                return "refused"
            except TimeoutError:
                return "sent"
            return "answered"

    return bench.cl.call(probe)


def test_transparent_catalogue_addresses_go_to_a_worker_with_their_destination(
    transparent: Bench,
) -> None:
    c = transparent.connect("192.0.2.20", "198.51.100.10", 443)
    port, peer, conn = transparent.accept()
    assert port in (13128, 13129) and _plain(peer) == "192.0.2.20"
    # what mitmproxy's transparent mode reads to know where the device was going
    assert _original_dst(conn) == ("198.51.100.10", 443)
    conn.close()
    c.close()


def test_transparent_other_addresses_are_routed_untouched(transparent: Bench) -> None:
    with pytest.raises((TimeoutError, socket.timeout)):  # forwarded to wan0, where it vanishes
        transparent.connect("192.0.2.20", "198.51.100.11", 443, timeout=1)
    sink = Namespace(transparent.gw.name.replace("-gw", "-sink"))
    counted = sink.run(["nft", "list", "chain", "inet", "sink", "prerouting"]).stdout
    assert "counter packets 0 " not in counted  # it went out, to where the device sent it
    counters = transparent.gw.run(["nft", "list", "chain", "inet", "student_monitor", "input"])
    assert "packets 0" in counters.stdout  # and it never knocked on a worker port


@pytest.mark.parametrize(
    ("dest", "port", "outcome"),
    [
        ("198.51.100.10", 443, "refused"),  # HTTP/3 to a catalogue address
        ("198.51.100.99", 443, "refused"),  # HTTP/3 anywhere
        ("198.51.100.8", 53, "refused"),  # DNS to another resolver
        ("198.51.100.53", 53, "sent"),  # DNS to the district's
        ("198.51.100.8", 853, "refused"),  # DNS over QUIC
        ("198.51.100.8", 4500, "sent"),  # other UDP: untouched
    ],
)
def test_transparent_udp_rules(transparent: Bench, dest: str, port: int, outcome: str) -> None:
    assert _udp(transparent, "192.0.2.20", dest, port) == outcome


def test_transparent_dns_over_tls_is_refused(transparent: Bench) -> None:
    with pytest.raises(ConnectionRefusedError):
        transparent.connect("192.0.2.20", "198.51.100.8", 853, timeout=2)
    assert errno.ECONNREFUSED

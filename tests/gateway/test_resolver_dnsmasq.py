"""The generated resolver configuration in the real dnsmasq, running in a network namespace of
the test's own (loopback only, no route out) with an nftables table like the gateway's and a
fake upstream server that answers every name with a documentation address: which addresses
land in the catalogue sets, and what the SafeSearch names answer.

The namespace part runs this file as a script under ``unshare --net`` (root only); the test
reads what it saw from a JSON file.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DNS_PORT = 5353
SETS = """table inet student_monitor {
\tset catalogue4 { type ipv4_addr; flags timeout; }
\tset catalogue6 { type ipv6_addr; flags timeout; }
}
"""
A, AAAA, CNAME = 1, 28, 5
TYPES = {A: "A", AAAA: "AAAA", CNAME: "CNAME"}


# -- a little DNS on the wire (queries and the fake upstream's answers) -------------------------


def _name(name: str) -> bytes:
    return b"".join(bytes([len(x)]) + x.encode() for x in name.rstrip(".").split(".") if x) + b"\0"


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:  # a compression pointer
            end = off + 2 if end is None else end
            off = struct.unpack("!H", msg[off : off + 2])[0] & 0x3FFF
            continue
        off += 1
        if n == 0:
            return ".".join(labels), off if end is None else end
        labels.append(msg[off : off + n].decode())
        off += n


def query(name: str, qtype: int, port: int = DNS_PORT) -> tuple[int, list[list[str]]]:
    """(rcode, [[owner, type, value], …]) of one question to 127.0.0.1:port."""
    q = (
        struct.pack("!HHHHHH", 0x5EED, 0x0100, 1, 0, 0, 0)
        + _name(name)
        + struct.pack("!HH", qtype, 1)
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(q, ("127.0.0.1", port))
        msg, _ = s.recvfrom(4096)
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = _read_name(msg, off)[1] + 4
    answers = []
    for _ in range(an):
        owner, off = _read_name(msg, off)
        rtype, _, _, length = struct.unpack("!HHIH", msg[off : off + 10])
        off += 10
        data = msg[off : off + length]
        if rtype == A:
            value = str(ipaddress.IPv4Address(data))
        elif rtype == AAAA:
            value = str(ipaddress.IPv6Address(data))
        elif rtype == CNAME:
            value = _read_name(msg, off)[0]
        else:
            value = data.hex()
        off += length
        answers.append([owner.lower(), TYPES.get(rtype, str(rtype)), value])
    return flags & 0xF, answers


class Upstream:
    """Answers A and AAAA for every name with an address of its own (192.0.2.N, 2001:db8::N,
    one per name, so an address says which name it came from), following ``cnames``; records
    every question it gets."""

    def __init__(self, cnames: dict[str, str]) -> None:
        self.cnames = cnames
        self.seen: list[list[Any]] = []
        self.numbers: dict[str, int] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _address(self, name: str, qtype: int) -> bytes:
        n = self.numbers.setdefault(name, len(self.numbers) + 1)
        if qtype == A:
            return ipaddress.IPv4Address(f"192.0.2.{n}").packed
        return ipaddress.IPv6Address(f"2001:db8::{n:x}").packed

    def _serve(self) -> None:
        while True:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            qid = struct.unpack("!H", msg[:2])[0]
            name, off = _read_name(msg, 12)
            qtype = struct.unpack("!H", msg[off : off + 2])[0]
            name = name.lower()
            self.seen.append([name, qtype])
            records, current = [], name
            while current in self.cnames:
                target = _name(self.cnames[current])
                records.append(
                    _name(current) + struct.pack("!HHIH", CNAME, 1, 300, len(target)) + target
                )
                current = self.cnames[current]
            if qtype in (A, AAAA):
                data = self._address(current, qtype)
                records.append(
                    _name(current) + struct.pack("!HHIH", qtype, 1, 300, len(data)) + data
                )
            head = struct.pack("!HHHHHH", qid, 0x8180, 1, len(records), 0, 0)
            self.sock.sendto(head + msg[12 : off + 4] + b"".join(records), peer)


# -- inside the namespace -----------------------------------------------------------------------


def _set_elements(name: str) -> list[str]:
    out = subprocess.run(
        ["nft", "-j", "list", "set", "inet", "student_monitor", name],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    elements: list[str] = []
    for item in json.loads(out.stdout)["nftables"]:
        for e in item.get("set", {}).get("elem", []):
            elements.append(e["elem"]["val"] if isinstance(e, dict) else e)
    return elements


def child(conf: str, questions: str, result: str) -> None:
    """Run in a fresh network namespace: loopback up, the gateway's sets, the fake upstream,
    dnsmasq with the generated file; ask the questions; write what came back."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["nft", "-f", "-"], input=SETS, text=True, check=True)
    up = Upstream(
        {
            "www.tiktok.com": "www.tiktok.com.edgekey.example",
            "www.tiktok.com.edgekey.example": "e1.akamai.example",
        }
    )
    log = Path(result).with_suffix(".log")
    proc = subprocess.Popen(
        [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--keep-in-foreground",
         f"--conf-file={conf}", "--no-resolv", "--no-hosts", f"--server=127.0.0.1#{up.port}",
         f"--port={DNS_PORT}", "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=",
         "--user=root", "--log-queries", f"--log-facility={log}"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                query("ready.example", A)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        answers = [[n, t, *query(n, t)] for n, t in json.loads(Path(questions).read_text())]
        out = {
            "answers": answers,
            "catalogue4": _set_elements("catalogue4"),
            "catalogue6": _set_elements("catalogue6"),
            "upstream": up.seen,
        }
        Path(result).write_text(json.dumps(out))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- the test -----------------------------------------------------------------------------------

QUESTIONS = [
    ["www.tiktok.com", A], ["www.tiktok.com", AAAA], ["WWW.TikTok.com", A],
    ["v16-webapp-prime.tiktokcdn-us.com", A], ["p16-tiktokcdn-com.akamaized.net", A],
    ["other-site.akamaized.net", A], ["telegram.org", A], ["web.telegram.org", AAAA],
    ["instanttelegram.com", A], ["i.ytimg.com", A], ["dns.google", A],
    ["classroom.google.com", A], ["www.school-site.example", A],
    ["www.google.com", A], ["www.google.com", AAAA], ["google.com", A], ["www.google.de", A],
    ["www.google.co.uk", AAAA], ["www.bing.com", A], ["www.bing.com", AAAA],
    ["duckduckgo.com", A], ["www.youtube.com", A], ["youtubei.googleapis.com", AAAA],
]  # fmt: skip
DDG = "safe.duckduckgo.com=192.0.2.200,2001:db8::200"


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from monitor.gateway.resolver import render_dnsmasq
    from monitor.gateway.safesearch import parse_safesearch
    from monitor.platforms import catalogue as catalogue_mod

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a network namespace of its own")
    for tool in ("dnsmasq", "nft", "ip"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.fail(
                f"{tool} not found: apt-get install -y dnsmasq-base nftables iproute2 "
                "(scripts/test does so)",
                pytrace=False,
            )
    base = tmp_path_factory.mktemp("dnsmasq")
    spec = parse_safesearch("google,bing,duckduckgo,youtube=strict", (DDG,))
    conf = base / "monitor.conf"
    conf.write_text(render_dnsmasq(catalogue_mod.load(), spec))
    questions = base / "questions.json"
    questions.write_text(json.dumps(QUESTIONS))
    result = base / "result.json"
    r = subprocess.run(
        ["unshare", "--net", sys.executable, __file__, str(conf), str(questions), str(result)],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    log = result.with_suffix(".log")
    assert r.returncode == 0 and result.exists(), (
        r.stderr,
        log.read_text() if log.exists() else "",
    )
    return json.loads(result.read_text())  # type: ignore[no-any-return]


def answer(seen: dict[str, Any], name: str, qtype: int) -> tuple[int, list[list[str]]]:
    for n, t, rcode, answers in seen["answers"]:
        if (n, t) == (name, qtype):
            return rcode, answers
    raise KeyError((name, qtype))


def addresses(seen: dict[str, Any], name: str, qtype: int) -> list[str]:
    rcode, answers = answer(seen, name, qtype)
    assert rcode == 0, (name, rcode)
    return [v for _, t, v in answers if t in ("A", "AAAA")]


@pytest.mark.parametrize(
    ("name", "qtype", "in_sets"),
    [
        ("www.tiktok.com", A, True),  # through a CNAME chain to a non-catalogue CDN name
        ("www.tiktok.com", AAAA, True),
        ("WWW.TikTok.com", A, True),
        ("v16-webapp-prime.tiktokcdn-us.com", A, True),
        ("p16-tiktokcdn-com.akamaized.net", A, True),  # an exact host under a shared CDN
        ("other-site.akamaized.net", A, False),  # the CDN itself is not the platform
        ("telegram.org", A, True),
        ("web.telegram.org", AAAA, True),
        ("instanttelegram.com", A, False),  # label boundaries
        ("i.ytimg.com", A, True),
        ("dns.google", A, True),  # a bypass service (DNS over HTTPS)
        ("classroom.google.com", A, False),  # Google's school services are not YouTube
        ("www.school-site.example", A, False),
    ],
)
def test_catalogue_addresses_fill_the_sets(
    seen: dict[str, Any], name: str, qtype: int, in_sets: bool
) -> None:
    got = addresses(seen, name, qtype)
    assert got, name
    members = set(seen["catalogue4"]) | set(seen["catalogue6"])
    assert all((a in members) is in_sets for a in got), (name, got, sorted(members))


def test_safesearch_names_are_answered_by_the_resolver(seen: dict[str, Any]) -> None:
    upstream = {n for n, _ in seen["upstream"]}
    for name in ("www.google.com", "google.com", "www.google.de"):
        _, answers = answer(seen, name, A)
        assert answers == [
            [name, "CNAME", "forcesafesearch.google.com"],
            ["forcesafesearch.google.com", "A", "216.239.38.120"],
        ]
    assert addresses(seen, "www.google.com", AAAA) == ["2001:4860:4802:32::78"]
    assert addresses(seen, "www.google.co.uk", AAAA) == ["2001:4860:4802:32::78"]
    assert addresses(seen, "www.bing.com", A) == ["204.79.197.220"]
    # no IPv6 address is published for strict.bing.com: an empty answer, not the normal Bing
    assert answer(seen, "www.bing.com", AAAA) == (0, [["www.bing.com", "CNAME", "strict.bing.com"]])
    assert addresses(seen, "duckduckgo.com", A) == ["192.0.2.200"]
    assert addresses(seen, "www.youtube.com", A) == ["216.239.38.120"]
    assert addresses(seen, "youtubei.googleapis.com", AAAA) == ["2001:4860:4802:32::78"]
    # none of them reached the upstream server; Google's other services did
    assert not upstream & {"www.google.com", "google.com", "www.google.de", "www.bing.com",
                           "duckduckgo.com", "www.youtube.com", "youtubei.googleapis.com"}  # fmt: skip
    assert "classroom.google.com" in upstream


def test_locally_answered_youtube_names_leave_the_sets_to_the_firewall(
    seen: dict[str, Any],
) -> None:
    """The limit the generated file documents: dnsmasq never adds an address it answers
    itself, so YouTube's restricted-mode address must be held in the sets by the firewall."""
    assert "216.239.38.120" not in seen["catalogue4"]
    assert "2001:4860:4802:32::78" not in seen["catalogue6"]


if __name__ == "__main__":
    child(*sys.argv[1:4])

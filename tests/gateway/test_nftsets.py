"""The sensor beside a transparent proxy: which observations the gateway hands to the proxy
(``redirected_to_proxy``), and the cached copy of the catalogue sets it asks
(``CatalogueSets``); the real sets are read in tests/gateway/test_transparent_e2e.py."""

from __future__ import annotations

import pytest

from monitor.gateway.nftsets import CatalogueSets
from monitor.sensor.judge import redirected_to_proxy
from monitor.sensor.model import Observation


class Reader:
    def __init__(self, *contents: frozenset[str]) -> None:
        self.contents, self.reads = list(contents), 0

    def __call__(self) -> frozenset[str]:
        self.reads += 1
        value = self.contents[0]
        if len(self.contents) > 1:
            self.contents.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_address_just_added_is_found_by_reading_again() -> None:
    reader, clock = (
        Reader(frozenset({"203.0.113.10"}), frozenset({"203.0.113.10", "203.0.113.11"})),
        Clock(),
    )
    sets = CatalogueSets(reader, max_age=2.0, min_reread=0.05, clock=clock)
    assert "203.0.113.10" in sets and reader.reads == 1
    assert sets.contains("203.0.113.10") and reader.reads == 1  # cached
    assert not sets.contains("203.0.113.11")  # read moments ago: not again
    clock.now += 0.1
    assert sets.contains("203.0.113.11") and reader.reads == 2  # a miss reads again
    clock.now += 3
    assert sets.contains("203.0.113.10") and reader.reads == 3  # too old: read again
    assert not sets.contains("not an address") and reader.reads == 3


def test_a_failed_read_keeps_the_copy_in_hand() -> None:
    reader, clock = Reader(frozenset({"203.0.113.10"}), OSError("nft: no such table")), Clock()  # type: ignore[arg-type]
    sets = CatalogueSets(reader, clock=clock)
    assert sets.contains("203.0.113.10")
    clock.now += 5
    assert sets.contains("203.0.113.10")
    assert sets.failures == 1 and "no such table" in sets.last_error
    assert sets.contains("2001:db8:0::1") is False  # IPv6 normalised, not there


@pytest.mark.parametrize(
    ("protocol", "transport", "server", "port", "left"),
    [
        ("dns", "udp", "192.0.2.1", 53, True),  # a lookup: the connection after it is judged
        ("tls", "tcp", "203.0.113.10", 443, True),  # redirected to the proxy
        ("http", "tcp", "203.0.113.10", 80, True),
        ("tls", "tcp", "203.0.113.15", 443, False),  # outside the sets: skipped the proxy
        ("quic", "udp", "203.0.113.10", 443, False),  # UDP is never redirected
        ("tls", "tcp", "203.0.113.10", 853, False),  # DNS over TLS: not redirected
    ],
)
def test_what_the_gateway_hands_to_the_proxy(
    protocol: str, transport: str, server: str, port: int, left: bool
) -> None:
    obs = Observation(
        time=0.0,
        client="192.0.2.11",
        server=server,
        protocol=protocol,  # type: ignore[arg-type]
        hostname="www.tiktok.com",
        transport=transport,  # type: ignore[arg-type]
        server_port=port,
    )
    assert redirected_to_proxy({"203.0.113.10"}.__contains__)(obs) is left

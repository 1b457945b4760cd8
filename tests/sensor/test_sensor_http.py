"""Plain HTTP requests → host, and nothing else of the request."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from monitor.sensor import http
from monitor.sensor.pipeline import Frame, Sensor


@pytest.mark.parametrize(
    ("data", "host"),
    [
        (b"GET /feed?user=secret HTTP/1.1\r\nHost: i.instagram.com\r\n\r\n", "i.instagram.com"),
        (b"POST /api HTTP/1.1\r\nUser-Agent: x\r\nHOST:  WWW.TikTok.com:8080 \r\n\r\n",
         "www.tiktok.com"),
        (b"CONNECT www.tiktok.com:443 HTTP/1.1\r\nHost: www.tiktok.com:443\r\n\r\n",
         "www.tiktok.com"),
        (b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", "[2001:db8::1]"),
        (b"GET http://user:pw@proxy.example:3128/x HTTP/1.1\r\n\r\n", "proxy.example"),
        (b"HEAD / HTTP/1.0\r\nHost: a.example\r\n\r\n", "a.example"),
        (b"GET / HTTP/1.1\r\nHost: bad\x01host\r\n\r\n", "bad\\001host"),
    ],
)  # fmt: skip
def test_host_of_a_request(data: bytes, host: str) -> None:
    assert http.parse_request(data) == host


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"GET / HTTP/1.0\r\n\r\n", None, id="http-1.0-without-host"),
        pytest.param(b"GET / HTTP/1.1\r\nAccept: */*\r\n", None, id="headers-continue"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a.exa", None, id="host-cut"),
        pytest.param(b"GET /very/long/path", None, id="request-line-cut"),
        pytest.param(b"GET / SPDY/3\r\nHost: a\r\n\r\n", http.BAD_REQUEST, id="not-http-1"),
        pytest.param(b"GETX / HTTP/1.1\r\n\r\n", http.BAD_REQUEST, id="not-a-method"),
        pytest.param(b"POSTAL SERVICE\r\n", http.BAD_REQUEST, id="text"),
    ],
)
def test_no_host(data: bytes, expected: object) -> None:
    assert http.parse_request(data) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_never_raises(tail: bytes) -> None:
    got = http.parse_request(b"GET / HTTP/1.1\r\n" + tail)
    assert got is None or isinstance(got, str) or got == http.BAD_REQUEST


def test_http_in_the_pipeline_one_line_per_flow_and_host() -> None:
    def req(sport: int, host: str) -> Frame:
        data = f"GET /p HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        pkt = IP(src="192.0.2.10", dst="198.51.100.80") / TCP(sport=sport, dport=80) / Raw(data)
        return Frame(101, bytes(pkt), 1.0)

    sensor = Sensor()
    got = list(sensor.run([req(1, "a.example"), req(1, "a.example"), req(1, "b.example")]))
    assert [(o.protocol, o.transport, o.hostname, o.server_port) for o in got] == [
        ("http", "tcp", "a.example", 80),
        ("http", "tcp", "b.example", 80),
    ]
    assert sensor.counters.duplicates == 1

"""End to end against a real mitmdump: slowloris connections are bounded (per address, and by
a header timeout) while other clients are served, and the proxy's own log carries no client
address."""

from __future__ import annotations

import select
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from proxyharness import World, curl, start_world

pytestmark = pytest.mark.slow

LIMIT = 40
TIMEOUT = 2.0
ATTACKER, OTHER = "127.0.0.13", "127.0.0.15"
CLIENTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.15", "127.0.0.50")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(
        tmp_path_factory.mktemp("limits"),
        {
            "monitor_max_client_connections": str(LIMIT),
            "monitor_header_timeout": str(TIMEOUT),
        },
    )
    try:
        yield w
    finally:
        w.stop()


def closed(sock: socket.socket, wait: float) -> bool:
    """Whether the proxy closed ``sock`` (EOF or reset) within ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def slow_connections(world: World, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", world.proxy.port), 5, (ATTACKER, 0))
        s.sendall(b"CONNECT www.school-site.example:443 HTTP/1.1\r\nHost: www.sch")  # never ends
        socks.append(s)
    return socks


def served(world: World, client: str) -> bool:
    r = curl(
        world.proxy,
        "https://www.school-site.example/",
        client=client,
        cacert=[world.proxy.ca_cert, world.ca.cert_pem],
        timeout=10,
    )
    return r.status == 200


def test_slowloris_is_bounded_and_others_are_served(world: World) -> None:
    limited = world.metric("monitor_client_connections_closed_total", reason="address_limit")
    timed_out = world.metric("monitor_client_connections_closed_total", reason="header_timeout")
    socks = slow_connections(world, 3 * LIMIT)
    try:
        # over the limit: refused at once; the others wait for their header timeout
        time.sleep(0.5)
        readable, _, _ = select.select(socks, [], [], 0.2)
        refused = [s for s in readable if closed(s, 0.05)]
        assert len(refused) == 2 * LIMIT
        assert world.metric("monitor_client_connections") >= LIMIT
        assert served(world, OTHER)  # another address is served meanwhile
        deadline = time.monotonic() + TIMEOUT + 5
        for s in socks:
            if s not in refused:
                # dribbling a byte keeps a connection busy, not complete: it still times out
                try:
                    s.sendall(b"o")
                except OSError:
                    pass
                assert closed(s, max(0.1, deadline - time.monotonic()))
        assert (
            world.metric("monitor_client_connections_closed_total", reason="address_limit")
            == limited + 2 * LIMIT
        )
        assert (
            world.metric("monitor_client_connections_closed_total", reason="header_timeout")
            == timed_out + LIMIT
        )
    finally:
        for s in socks:
            s.close()
    # the attacker's address is free again, and nothing stays open
    assert served(world, ATTACKER)
    deadline = time.monotonic() + 5
    while world.metric("monitor_client_connections") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert world.metric("monitor_client_connections") == 0


def test_a_connection_that_completes_its_request_is_not_timed_out(world: World) -> None:
    timed_out = world.metric("monitor_client_connections_closed_total", reason="header_timeout")
    s = socket.create_connection(("127.0.0.1", world.proxy.port), 5, ("127.0.0.11", 0))
    try:
        s.sendall(b"CONNECT www.youtubekids.com:443 HTTP/1.1\r\nHost: www.youtubekids.com\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 200")
        assert not closed(s, TIMEOUT + 1)  # a quiet tunnel is mitmproxy's tcp_timeout's business
    finally:
        s.close()
    assert (
        world.metric("monitor_client_connections_closed_total", reason="header_timeout")
        == timed_out
    )


def test_the_proxy_log_names_no_client_address(world: World) -> None:
    for client in CLIENTS:
        curl(
            world.proxy,
            "https://www.tiktok.com/",
            client=client,
            cacert=[world.proxy.ca_cert, world.ca.cert_pem],
        )
        # without the proxy's CA: mitmproxy logs that the client does not trust it, with the
        # site's name: the line the journal must not tie to a device
        subprocess.run(
            [
                "curl", "-sS", "--max-time", "5", "--interface", client, "-x",
                f"http://127.0.0.1:{world.proxy.port}", "https://www.tiktok.com/",
            ],
            capture_output=True,
            check=False,
        )  # fmt: skip
    time.sleep(0.5)
    log = world.proxy.log.read_text(errors="replace")
    assert "does not trust the proxy's certificate for www.tiktok.com" in log
    assert "ip-" in log  # the lines are there, under per-run pseudonyms
    for client in CLIENTS:
        assert client not in log, f"{client} in the proxy log"

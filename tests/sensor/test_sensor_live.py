"""Live capture: the real ``monitor sensor --iface`` on a veth between two network namespaces
this test makes (documentation addresses, no route out), while a client sends a DNS query, a
TLS ClientHello over TCP and a QUIC Initial across it. Needs root, iproute2 and libpcap (scapy
compiles the kernel filter with it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"mlive{os.getpid() % 100000}"
CLIENT_NS, SENSOR_NS = f"{PREFIX}c", f"{PREFIX}s"
CLIENT_IP, SENSOR_IP = "192.0.2.10", "192.0.2.1"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def cleanup() -> None:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("mlive"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def veth() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("live capture tests need root (CI and the test machines run as root)")
    cleanup()  # leftovers of an interrupted run
    try:
        ip("netns", "add", CLIENT_NS)
        ip("netns", "add", SENSOR_NS)
        ip("link", "add", "vlc0", "netns", CLIENT_NS, "type", "veth", "peer", "name", "vls0",
           "netns", SENSOR_NS)  # fmt: skip
        ip("-n", CLIENT_NS, "addr", "add", f"{CLIENT_IP}/24", "dev", "vlc0")
        ip("-n", SENSOR_NS, "addr", "add", f"{SENSOR_IP}/24", "dev", "vls0")
        for ns, dev in ((CLIENT_NS, "vlc0"), (SENSOR_NS, "vls0")):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield "vls0"
    finally:
        cleanup()


CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    from monitor.sensor import synth
    target = sys.argv[1]
    # DNS: a query for TikTok
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(synth.dns_query([("www.tiktok.com", 1)]), (target, 53))
    # TLS: a ClientHello for Instagram, in two TCP segments
    hello = synth.tls_records(synth.client_hello("www.instagram.com", pad_to=1400))
    t = socket.create_connection((target, 443), timeout=5)
    t.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t.sendall(hello[:700]); time.sleep(0.2); t.sendall(hello[700:]); time.sleep(0.3); t.close()
    # QUIC: an Initial for YouTube
    for d in synth.quic_initials(synth.client_hello("www.youtube.com", alpn=["h3"]),
                                 dcid=bytes(range(8))):
        u.sendto(d, (target, 443))
    u.close()
    """
)

LISTENER = textwrap.dedent(
    """
    import socket
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 443)); s.listen(5); s.settimeout(20)
    c, _ = s.accept(); c.settimeout(5)
    while c.recv(65536): pass
    """
)


PROBE = textwrap.dedent(
    """
    import socket, sys
    from monitor.sensor import synth
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(synth.dns_query([("probe.example.org", 1)]), (sys.argv[1], 53))
    """
)


def in_client(script: str, env: dict[str, str]) -> None:
    subprocess.run(
        ["ip", "netns", "exec", CLIENT_NS, sys.executable, "-c", script, SENSOR_IP],
        check=True,
        env=env,
        timeout=30,
    )


def wait_for(
    pred: Callable[[], bool],
    every: Callable[[], None] | None,
    seconds: float,
) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        if every is not None:
            every()
        time.sleep(0.5)
    return pred()


def test_live_capture_on_a_veth_reports_dns_tls_and_quic(veth: str) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    monitor = str(Path(sys.executable).with_name("monitor"))
    sensor = subprocess.Popen(
        ["ip", "netns", "exec", SENSOR_NS, monitor, "sensor", "--iface", veth, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: list[dict[str, object]] = []
    assert sensor.stdout is not None
    out = sensor.stdout
    reader = threading.Thread(
        target=lambda: lines.extend(json.loads(x) for x in out if x.strip()), daemon=True
    )
    reader.start()
    listener = subprocess.Popen(
        ["ip", "netns", "exec", SENSOR_NS, sys.executable, "-c", LISTENER], env=env
    )

    def names() -> set[tuple[object, object, object]]:
        return {(o["protocol"], o["hostname"], o["platform"]) for o in list(lines)}

    try:
        # the sensor is capturing once it reports a probe (importing scapy takes a while)
        ready = wait_for(
            lambda: ("dns", "probe.example.org", None) in names(),
            lambda: in_client(PROBE, env),
            60,
        )
        assert ready, f"the sensor reported nothing: {sensor.poll()}"
        in_client(CLIENT, env)
        want = {
            ("dns", "www.tiktok.com", "tiktok"),
            ("tls", "www.instagram.com", "instagram"),
            ("quic", "www.youtube.com", "youtube"),
        }
        wait_for(lambda: want <= names(), None, 15)
    finally:
        sensor.send_signal(signal.SIGINT)
        _, err = sensor.communicate(timeout=20)
        reader.join(timeout=5)
        listener.kill()
        listener.wait()
    assert want <= names(), (lines, err)
    assert all(o["client"] == CLIENT_IP for o in lines if o["protocol"] != "ip")
    assert "Unable to guess type" not in err

"""Benchmark live capture: a capture replayed with tcpreplay onto a veth between two network
namespaces, at increasing rates, while the sensor captures on the other end as `monitor sensor
--iface` does (``monitor.sensor.pcap.sniff_live``: scapy's listening socket, the kernel filter,
the sensor's own decoding and classification).

    sudo .venv/bin/python bench/bench_sensor_live.py [--rates 5000,20000,50000,100000,0]
                                                     [--seconds 4] [--max-packets 400000]

--rcvbuf BYTES gives the capture socket another buffer than the sensor's own (8 MiB; scapy's
default is 64 KiB), to compare.

For each rate (packets/s; 0: tcpreplay --topspeed) one sensor process starts in the capture
namespace, tcpreplay sends for about --seconds, and the sensor reports what it processed:
packets seen, observations, its CPU time, and the kernel's own count of packets that passed the
filter and of those dropped because the sensor did not read them in time (PACKET_STATISTICS of
the capture socket, which scapy opens but does not report). sent - seen is what was lost in
all. Every frame of the capture passes the sensor's kernel filter (DNS queries and answers,
TLS ClientHellos, QUIC Initials, TLS data on 443), so seen = sent when nothing is dropped.

Needs root, iproute2 and tcpreplay (Debian's). Namespaces are tests/netns.py's (removed on the
way out, leftovers of a dead run first); documentation addresses only, nothing leaves them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from netns import Lab, missing_requirements  # noqa: E402

from monitor.sensor import synth  # noqa: E402

SOL_PACKET, PACKET_STATISTICS = 263, 6
HOSTS = ["www.tiktok.com", "www.youtube.com", "www.instagram.com", "www.school-site.example",
         "dns.google", "api16-normal-c-useast1a.tiktokv.com", "classroom.google.com"]  # fmt: skip


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}; kernel "
        f"{platform.release()}; Python {platform.python_version()}"
    )


# -- the capture ------------------------------------------------------------------------------


def mixed_frames(n: int, seed: int = 11) -> list[bytes]:
    """``n`` Ethernet frames a school's clients send, all of them through the sensor's filter:
    DNS queries and answers, TLS ClientHellos and TLS data, QUIC Initials."""
    rnd = random.Random(seed)
    out: list[bytes] = []
    hellos = {h: synth.tls_records(synth.client_hello(h)) for h in HOSTS}
    initials = {
        h: synth.quic_initials(synth.client_hello(h, alpn=["h3"]), dcid=bytes(range(8)))[0]
        for h in HOSTS
    }
    while len(out) < n:
        client = f"192.0.2.{rnd.randrange(10, 250)}"
        server = f"203.0.113.{rnd.randrange(1, 250)}"
        host = rnd.choice(HOSTS)
        sport = rnd.randrange(20000, 60000)
        kind = rnd.random()
        if kind < 0.3:
            seg = synth.udp(sport, 53, synth.dns_query([(host, 1)], msg_id=rnd.randrange(65536)))
            ip = synth.ipv4(client, "192.0.2.1", 17, seg)
        elif kind < 0.4:
            answer = synth.dns_answer(host, 1, addresses=[server], msg_id=rnd.randrange(65536))
            ip = synth.ipv4("192.0.2.1", client, 17, synth.udp(53, sport, answer))
        elif kind < 0.65:
            ip = synth.ipv4(client, server, 6, synth.tcp(sport, 443, hellos[host], flags=0x18))
        elif kind < 0.85:
            data = b"\x17\x03\x03" + struct.pack("!H", 1000) + rnd.randbytes(1000)
            ip = synth.ipv4(client, server, 6, synth.tcp(sport, 443, data, seq=2000))
        else:
            ip = synth.ipv4(client, server, 17, synth.udp(sport, 443, initials[host]))
        out.append(synth.ethernet(0x0800, ip))
    return out


def write_pcap(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1714550400 + i // 1000, (i % 1000) * 1000,
                                len(frame), len(frame)))  # fmt: skip
            f.write(frame)


# -- the sensor side (this file again, inside the capture namespace) --------------------------


def sniff_child(iface: str, ready: Path, result: Path, rcvbuf: int) -> None:
    """Capture until SIGINT as `monitor sensor --iface` does; write what was processed."""
    import scapy.arch  # noqa: F401  (sets conf.L2listen)
    from scapy.config import conf

    from monitor.platforms import catalogue as catalogue_mod
    from monitor.platforms.classify import Classifier
    from monitor.sensor.pcap import SO_RCVBUFFORCE, sniff_live
    from monitor.sensor.pipeline import Sensor

    base = conf.L2listen
    kernel: dict[str, int] = {}
    buffers: dict[str, int] = {}

    class Counted(base):  # type: ignore[misc, valid-type]
        """scapy's listening socket, read for the kernel's statistics before it closes."""

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            ready.write_text("ready")

        def recv_raw(self, x: int = 65535) -> Any:
            # the buffer sniff_live gave the socket (or the one --rcvbuf asks for)
            if "rcvbuf" not in buffers:
                if rcvbuf:
                    self.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
                buffers["rcvbuf"] = self.ins.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            return super().recv_raw(x)

        def close(self) -> None:
            if not kernel and getattr(self, "ins", None) is not None:
                raw = self.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                packets, drops = struct.unpack("II", raw)
                kernel.update(packets=packets, drops=drops)  # packets include the drops
            super().close()

    conf.L2listen = Counted
    sensor = Sensor(Classifier(catalogue_mod.load()))
    observations = 0

    def seen(_obs: object) -> None:
        nonlocal observations
        observations += 1

    start = resource.getrusage(resource.RUSAGE_SELF)
    try:
        sniff_live(iface, seen, sensor=sensor)
    except KeyboardInterrupt:
        pass
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
    c = sensor.counters
    result.write_text(
        json.dumps(
            {
                "seen": c.packets,
                "observations": c.observations + c.duplicates,
                "undecodable": c.undecodable,
                "cpu": cpu,
                "kernel": kernel,
                **buffers,
            }
        )
    )


# -- the run ----------------------------------------------------------------------------------


def replay(lab_rep: Any, iface: str, pcap: Path, rate: int, limit: int) -> dict[str, float]:
    cmd = ["tcpreplay", "-i", iface, f"--limit={limit}", "--loop=0"]
    cmd += [f"--pps={rate}"] if rate else ["--topspeed"]
    out = lab_rep.run([*cmd, str(pcap)], timeout=300)
    text = out.stdout + out.stderr
    m = re.search(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds", text)
    if not m:
        raise RuntimeError(f"tcpreplay said: {text}")
    failed = re.search(r"Failed packets:\s+(\d+)", text)
    return {
        "sent": int(m.group(1)) - (int(failed.group(1)) if failed else 0),
        "seconds": float(m.group(3)),
    }


def one_rate(
    lab: Lab, pcap: Path, rate: int, seconds: float, max_packets: int, rcvbuf: int
) -> dict[str, Any]:
    rep, sen = lab.spaces
    tmp = Path(tempfile.mkdtemp(prefix="sniff"))
    ready, result = tmp / "ready", tmp / "result.json"
    child = sen.popen(
        [sys.executable, __file__, "--sniff", "sen0", str(ready), str(result)]
        + ["--rcvbuf", str(rcvbuf)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sensor did not start")
            time.sleep(0.1)
        time.sleep(0.5)
        limit = min(max_packets, int(rate * seconds)) if rate else max_packets
        sent = replay(rep, "rep0", pcap, rate, limit)
        time.sleep(1.5)  # let the sensor read what is queued
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
    got = json.loads(result.read_text())
    shutil.rmtree(tmp, ignore_errors=True)
    return {"rate": rate, **sent, **got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="5000,20000,50000,100000,0")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--max-packets", type=int, default=400_000)
    ap.add_argument("--frames", type=int, default=20_000, help="distinct frames in the capture")
    ap.add_argument(
        "--rcvbuf",
        type=int,
        default=0,
        help="capture socket buffer in bytes instead of the sensor's own (for comparison)",
    )
    ap.add_argument(
        "--sniff", nargs=3, metavar=("IFACE", "READY", "RESULT"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.sniff:
        sniff_child(args.sniff[0], Path(args.sniff[1]), Path(args.sniff[2]), args.rcvbuf)
        return
    why = missing_requirements()
    if why or shutil.which("tcpreplay") is None:
        sys.exit(why or "tcpreplay not found: apt-get install -y tcpreplay")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as d:
        pcap = Path(d) / "mixed.pcap"
        frames = mixed_frames(args.frames)
        write_pcap(pcap, frames)
        size = sum(len(f) for f in frames) / len(frames)
        print(f"capture: {len(frames):,} distinct frames, {size:.0f} bytes on average, looped")
        with Lab.create() as lab:
            rep, sen = lab.namespace("rep"), lab.namespace("sen")
            lab.link(rep, "rep0", [], sen, "sen0", [])
            print(
                f"{'offered pps':>11} {'sent':>8} {'send pps':>9} {'seen':>8} {'lost':>7} "
                f"{'kernel drops':>12} {'obs':>8} {'sensor CPU s':>12} {'pkts/CPU-s':>10}"
            )
            for rate in (int(r) for r in args.rates.split(",")):
                r = one_rate(lab, pcap, rate, args.seconds, args.max_packets, args.rcvbuf)
                lost = r["sent"] - r["seen"]
                drops = r["kernel"].get("drops", -1)
                per_cpu = r["seen"] / r["cpu"] if r["cpu"] else 0.0
                print(
                    f"{rate or 'top':>11} {r['sent']:>8} {r['sent'] / r['seconds']:>9.0f} "
                    f"{r['seen']:>8} {lost:>7} {drops:>12} {r['observations']:>8} "
                    f"{r['cpu']:>12.2f} {per_cpu:>10.0f}",
                    flush=True,
                )
            print(f"capture socket buffer: {r.get('rcvbuf', '?')} bytes (as the kernel reports it)")
            print(f"load average after: {os.getloadavg()[0]:.2f} (other processes share the CPUs)")


if __name__ == "__main__":
    main()

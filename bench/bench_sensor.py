"""Benchmark the passive sensor against scapy's own dissection.

    /tmp/v/bin/python bench/bench_sensor.py [--packets 100000] [--scapy-packets 10000]

(a) ClientHello → SNI parses per second: ``monitor.sensor.tls.parse_record`` against scapy's
    TLS layer dissecting the same bytes (target: >= 100,000 parses/s for ours).
(b) End-to-end pcap processing, packets per second: a generated pcap of mixed traffic (DNS
    queries and answers, TLS ClientHellos whole and split, TLS application data, QUIC Initials
    and 1-RTT packets, ACKs, plain HTTP, other ports) read with ``monitor.sensor.capfile`` and
    run through the sensor, against scapy's full dissection (``PcapReader`` + layer access) of
    the same file (target: >= 50,000 packets/s for ours). scapy is timed on the first
    --scapy-packets packets only (the mix is shuffled, so they are representative); its rate
    is per packet. DNS answers and HTTP request hosts are observations too.
(c) ``monitor sensor --config``: observations per second through ``judge.Judge`` (identity,
    classification, policy decision), and with recording (metrics, incident queue, SQLite).
(d) The mix of (b) again, every packet inside a tunnel (a third each in GRE, IP in IP and
    VXLAN), the larger ones (over 1,000 bytes) cut in two IP fragments, out of order; and the
    same run over plain (b) frames, side by side: what tunnels and reassembly cost.

Frames are built by hand (no checksums: neither side verifies them) with documentation
addresses and written to a temporary file; nothing is sent.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from monitor.platforms import catalogue as catalogue_mod
from monitor.platforms.classify import Classifier
from monitor.sensor import quic, synth, tls
from monitor.sensor.pcap import read_frames
from monitor.sensor.pipeline import Sensor

MAC_C = bytes.fromhex("020000000001")
MAC_G = bytes.fromhex("0200000000fe")
HOSTS = [
    "www.tiktok.com",
    "www.youtube.com",
    "i.ytimg.com",
    "rr3---sn-example.googlevideo.com",
    "dns.google",
    "www.example.com",
    "cdn.example.net",
    "api.example.org",
]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}; "
        f"Python {platform.python_version()}"
    )


def rate(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


# --- (a) ClientHello parses -------------------------------------------------------------


def bench_sni(n_ours: int, n_scapy: int) -> tuple[float, float]:
    record = synth.tls_records(
        synth.client_hello("www.youtube.com", alpn=["h2", "http/1.1"], pad_to=517)
    )
    assert tls.parse_record(record) == tls.ClientHello("www.youtube.com", ("h2", "http/1.1"))

    from scapy.layers.tls.extensions import TLS_Ext_ServerName
    from scapy.layers.tls.record import TLS

    def scapy_sni() -> bytes:
        return TLS(record).getlayer(TLS_Ext_ServerName).servernames[0].servername  # type: ignore[no-any-return]

    assert scapy_sni() == b"www.youtube.com"
    rate(lambda: tls.parse_record(record), 1000)  # warm up
    ours = rate(lambda: tls.parse_record(record), n_ours)
    theirs = rate(scapy_sni, n_scapy)
    return ours, theirs


# --- (b) end to end ---------------------------------------------------------------------


def ipv4(src: int, dst: int, proto: int, payload: bytes) -> bytes:
    return (
        MAC_G
        + MAC_C
        + b"\x08\x00"
        + struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(payload),
            0,
            0x4000,
            64,
            proto,
            0,
            src.to_bytes(4, "big"),
            dst.to_bytes(4, "big"),
        )
        + payload
    )


def udp(src: int, sport: int, dst: int, dport: int, data: bytes) -> bytes:
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def tcp(
    src: int, sport: int, dst: int, dport: int, data: bytes, seq: int = 1, flags: int = 0x18
) -> bytes:
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 0x50, flags, 65535, 0, 0)
    return ipv4(src, dst, 6, hdr + data)


def mixed_frames(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    clients = [0xC0000200 + i for i in range(1, 255)] + [0xCB007100 + i for i in range(1, 255)]
    servers = [0xC6336400 + i for i in range(1, 255)]
    resolver = 0xC6336435
    appdata = b"\x17\x03\x03\x04\x00" + bytes(1024)
    # a pool of prebuilt payloads keeps generation fast; flows still differ by port
    hellos = [
        synth.tls_records(synth.client_hello(h, alpn=["h2", "http/1.1"], pad_to=517)) for h in HOSTS
    ]
    big_hellos = [synth.tls_records(synth.client_hello(h, alpn=["h2"], pad_to=1800)) for h in HOSTS]
    initials = [
        synth.quic_initials(synth.client_hello(h, alpn=["h3"]), dcid=rnd.randbytes(8))[0]
        for h in HOSTS
        for _ in range(8)
    ]
    frames: list[bytes] = []
    while len(frames) < n:
        c, s, port = rnd.choice(clients), rnd.choice(servers), rnd.randrange(1024, 65535)
        host = rnd.choice(HOSTS)
        r = rnd.random()
        if r < 0.10:
            frames.append(
                udp(c, port, resolver, 53, synth.dns_query([(host, rnd.choice((1, 28, 65)))]))
            )
        elif r < 0.15:
            frames.append(udp(resolver, 53, c, port, synth.dns_query([(host, 1)], response=True)))
        elif r < 0.18:
            frames.append(tcp(c, port, s, 443, rnd.choice(hellos)))
        elif r < 0.19:
            big = rnd.choice(big_hellos)
            frames.append(tcp(c, port, s, 443, big[:1200], seq=1))
            frames.append(tcp(c, port, s, 443, big[1200:], seq=1201))
        elif r < 0.20:
            frames.append(udp(c, port, s, 443, rnd.choice(initials)))
        elif r < 0.35:
            frames.append(udp(c, port, s, 443, b"\x43" + rnd.randbytes(8) + bytes(1100)))
        elif r < 0.55:
            frames.append(tcp(c, port, s, 443, appdata))
        elif r < 0.75:
            frames.append(tcp(s, 443, c, port, appdata))
        elif r < 0.90:
            frames.append(tcp(c, port, s, 443, b"", flags=0x10))
        elif r < 0.95:
            frames.append(udp(c, 123, s, 123, bytes(48)))
        else:
            frames.append(tcp(c, port, s, 80, b"GET / HTTP/1.1\r\nHost: plain.example\r\n\r\n"))
    return frames[:n]


def write_pcap(path: Path, frames: list[bytes]) -> None:
    from scapy.utils import PcapWriter

    with PcapWriter(str(path), linktype=1) as w:
        w.write_header(None)
        for i, f in enumerate(frames):
            w.write_packet(f, sec=1714550400 + i // 1000, usec=(i % 1000) * 1000)


def bench_pcap(path: Path, n: int, n_scapy: int, classifier: Classifier) -> dict[str, float]:
    out: dict[str, float] = {}

    t = time.perf_counter()
    frames = list(read_frames(path))
    out["read only (monitor.sensor.capfile)"] = n / (time.perf_counter() - t)

    from scapy.utils import RawPcapReader

    t = time.perf_counter()
    with RawPcapReader(str(path)) as reader:
        for _ in reader:
            pass
    out["read only (scapy RawPcapReader)"] = n / (time.perf_counter() - t)

    sensor = Sensor(classifier)
    t = time.perf_counter()
    for _ in sensor.run(frames):
        pass
    out["sensor only (frames in memory)"] = n / (time.perf_counter() - t)

    sensor = Sensor(classifier)
    t = time.perf_counter()
    observations = sum(1 for _ in sensor.run(read_frames(path)))
    out["end to end (ours)"] = n / (time.perf_counter() - t)
    out["_observations"] = observations
    out["_malformed"] = sum(sensor.counters.malformed.values())
    out["_protocols"] = dict(sensor.counters.protocols)  # type: ignore[assignment]

    from scapy.layers.dns import DNS
    from scapy.layers.tls.extensions import TLS_Ext_ServerName
    from scapy.main import load_layer
    from scapy.utils import PcapReader

    load_layer("tls")  # binds TCP 443 to the TLS layer, as a scapy user would
    names = 0
    t = time.perf_counter()
    with PcapReader(str(path)) as reader:
        for i, pkt in enumerate(reader):
            if i >= n_scapy:
                break
            d = pkt.getlayer(DNS)
            if d is not None and d.qd is not None and not d.qr:
                names += 1
                continue
            sn = pkt.getlayer(TLS_Ext_ServerName)
            if sn is not None and sn.servernames:
                names += 1
    out["end to end (scapy full dissection)"] = n_scapy / (time.perf_counter() - t)
    out["_scapy_names"] = names
    return out


# --- (d) tunnels and fragments ----------------------------------------------------------


def encapsulated_frames(frames: list[bytes]) -> list[bytes]:
    """Each frame's IP packet in a tunnel (GRE, IP in IP, VXLAN in turn); a tunnel packet over
    1,000 bytes as two fragments, the second first."""
    t1, t2 = "203.0.113.1", "203.0.113.2"
    out: list[bytes] = []
    for i, frame in enumerate(frames):
        packet = frame[14:]
        kind = i % 3
        if kind == 0:
            outer = synth.ipv4(t1, t2, 47, synth.gre(0x0800, packet), ident=i & 0xFFFF)
        elif kind == 1:
            outer = synth.ipv4(t1, t2, 4, packet, ident=i & 0xFFFF)
        else:
            vx = synth.udp(49152, 4789, synth.vxlan(frame))
            outer = synth.ipv4(t1, t2, 17, vx, ident=i & 0xFFFF)
        if len(outer) > 1000:
            half = ((len(outer) - 20) // 2 + 7) // 8 * 8
            out.extend(synth.ethernet(0x0800, f) for f in synth.fragment_ipv4(outer, half)[::-1])
        else:
            out.append(synth.ethernet(0x0800, outer))
    return out


def bench_encapsulated(n: int, classifier: Classifier) -> tuple[float, float, int, int]:
    """(plain packets/s, tunnelled packets/s, their observations) over frames in memory."""
    plain = mixed_frames(n)
    wrapped = encapsulated_frames(plain)
    rates = []
    found = []
    for frames in (plain, wrapped):
        sensor = Sensor(classifier)
        t = time.perf_counter()
        found.append(sum(1 for _ in sensor.run((1, f, 1714550400.0) for f in frames)))
        rates.append(len(frames) / (time.perf_counter() - t))
    return rates[0], rates[1], found[0], found[1]


# --- (c) judging observations -------------------------------------------------------------


def bench_judge(n: int) -> tuple[float, float, int]:
    """Observations through ``Judge`` against the generated example district: the demo
    addresses (students, staff, unknown) and a mix of catalogue hosts, over DNS, TLS and QUIC,
    at 10:30 on a school day. Recording goes to a real SQLite store in a temporary directory
    (written by the recorder's thread; closed, so flushed, before the figure is taken)."""
    import subprocess

    from prometheus_client import CollectorRegistry

    from monitor.district import DistrictLoader
    from monitor.flow.metrics import Metrics
    from monitor.flow.recording import DecisionLog, open_recorder
    from monitor.sensor.judge import Judge
    from monitor.sensor.model import Observation

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, str(root / "examples/generate_district.py"), "--out", tmp,
             "--today", "2026-11-18"],
            check=True, capture_output=True,
        )  # fmt: skip
        district = DistrictLoader(tmp).load()
        key = bytes(range(32))
        clients = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.15", "127.0.0.50",
                   "127.0.0.99", "127.0.0.1"]  # fmt: skip
        rnd = random.Random(3)
        t0 = 1795015800.0  # 2026-11-18 10:30 America/New_York
        obs = [
            Observation(
                t0 + i / 100, rnd.choice(clients), "192.0.2.1",
                rnd.choice(("dns", "tls", "quic")), rnd.choice(HOSTS[:5]),  # type: ignore[arg-type]
                platform=district.classifier(rnd.choice(HOSTS[:5])),
            )
            for i in range(n)
        ]  # fmt: skip
        judge = Judge(district, key)
        t = time.perf_counter()
        for o in obs:
            judge.judge(o)
        judged = n / (time.perf_counter() - t)

        recorder = open_recorder(district)
        judge = Judge(district, key, DecisionLog(Metrics(CollectorRegistry()), recorder, key))
        t = time.perf_counter()
        for o in obs:
            judge(o)
        recorder.close(timeout=60)
        recorded = n / (time.perf_counter() - t)
        return judged, recorded, recorder.stats.submitted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--scapy-packets", type=int, default=10_000)
    ap.add_argument("--parses", type=int, default=200_000)
    ap.add_argument("--scapy-parses", type=int, default=2_000)
    ap.add_argument("--judge-observations", type=int, default=50_000)
    ap.add_argument("--encap-packets", type=int, default=50_000)
    args = ap.parse_args()

    import scapy

    print(f"machine: {machine()}; scapy {scapy.__version__}")
    quic._key_cache.clear()

    ours, theirs = bench_sni(args.parses, args.scapy_parses)
    print("\n(a) ClientHello -> SNI, parses/s")
    met = "met" if ours >= 100_000 else "MISSED"
    print(f"    ours (monitor.sensor.tls):   {ours:12,.0f}   target >= 100,000: {met}")
    print(f"    scapy TLS layer:             {theirs:12,.0f}")
    print(f"    ratio:                       {ours / theirs:12,.0f}x")

    classifier = Classifier(catalogue_mod.load())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mixed.pcap"
        t = time.perf_counter()
        frames = mixed_frames(args.packets)
        write_pcap(path, frames)
        size = path.stat().st_size
        print(
            f"\n(b) pcap of {len(frames):,} mixed packets ({size / 1e6:.1f} MB, built in "
            f"{time.perf_counter() - t:.1f} s), packets/s"
        )
        del frames
        res = bench_pcap(path, args.packets, min(args.scapy_packets, args.packets), classifier)
    e2e = res["end to end (ours)"]
    sc = res["end to end (scapy full dissection)"]
    for k, v in res.items():
        if not k.startswith("_"):
            print(f"    {k + ':':<40} {v:12,.0f}")
    print(f"    target >= 50,000 end to end: {'met' if e2e >= 50_000 else 'MISSED'}")
    print(f"    ratio ours / scapy:                      {e2e / sc:12,.1f}x")
    protocols = ", ".join(f"{k} {v:,}" for k, v in sorted(res["_protocols"].items()))  # type: ignore[attr-defined]
    print(
        f"    observations: {int(res['_observations']):,} ({protocols}; malformed "
        f"{int(res['_malformed'])}); scapy found {int(res['_scapy_names']):,} names in its "
        f"{min(args.scapy_packets, args.packets):,} packets"
    )

    plain, wrapped, n_plain, n_wrapped = bench_encapsulated(args.encap_packets, classifier)
    print(
        f"\n(d) {args.encap_packets:,} packets of (b), plain and in tunnels, packets/s "
        "(frames in memory)"
    )
    print(f"    plain Ethernet/IPv4:                 {plain:12,.0f}   ({n_plain:,} observations)")
    print(
        f"    in GRE/IPIP/VXLAN, large fragmented: {wrapped:12,.0f}   ({n_wrapped:,} observations)"
    )

    judged, recorded, written = bench_judge(args.judge_observations)
    print(
        f"\n(c) --config: observations judged per second (example district, {written:,} incidents)"
    )
    print(f"    judge (identity, classify, decide):  {judged:12,.0f}")
    print(f"    judge + record (metrics, incidents): {recorded:12,.0f}")


if __name__ == "__main__":
    sys.exit(main())

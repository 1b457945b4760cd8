"""Capture file reading: pcap variants, pcapng sections/interfaces/blocks, compression."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from monitor.sensor import synth
from monitor.sensor.capfile import CaptureFile, read_frames
from monitor.sensor.model import Frame
from monitor.sensor.pipeline import Sensor

T = 1714550400  # 2024-05-01T08:00:00Z
ETH = bytes(
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:fe")
    / IP(src="192.0.2.10", dst="198.51.100.53")
    / UDP(sport=40000, dport=53)
    / Raw(synth.dns_query([("www.tiktok.com", 1)]))
)
RAW6 = bytes(
    IPv6(src="2001:db8::10", dst="2001:db8::53")
    / UDP(sport=40001, dport=53)
    / Raw(synth.dns_query([("www.youtube.com", 28)]))
)
SLL2 = (0x0800).to_bytes(2, "big") + bytes(2) + (3).to_bytes(4, "big") + b"\x00\x01\x00\x06"
SLL2 += bytes(8) + ETH[14:]


# -- pcap ----------------------------------------------------------------------------------


def pcap(magic: bytes, endian: str, records: list[tuple[int, int, bytes]], linktype: int = 1,
         extra: int = 0) -> bytes:  # fmt: skip
    out = magic + struct.pack(endian + "HHiIII", 2, 4, 0, 0, 65535, linktype)
    for sec, frac, data in records:
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(data)) + bytes(extra) + data
    return out


@pytest.mark.parametrize(
    ("magic", "endian", "frac", "extra", "time"),
    [
        pytest.param(b"\xd4\xc3\xb2\xa1", "<", 250000, 0, T + 0.25, id="usec-little"),
        pytest.param(b"\xa1\xb2\xc3\xd4", ">", 250000, 0, T + 0.25, id="usec-big"),
        pytest.param(b"\x4d\x3c\xb2\xa1", "<", 250000000, 0, T + 0.25, id="nsec-little"),
        pytest.param(b"\xa1\xb2\x3c\x4d", ">", 250000000, 0, T + 0.25, id="nsec-big"),
        pytest.param(b"\x34\xcd\xb2\xa1", "<", 250000, 8, T + 0.25, id="modified-kuznetzov"),
    ],
)
def test_pcap_variants(
    tmp_path: Path, magic: bytes, endian: str, frac: int, extra: int, time: float
) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap(magic, endian, [(T, frac, ETH), (T + 1, 0, ETH)], extra=extra))
    assert list(read_frames(path)) == [Frame(1, ETH, time), Frame(1, ETH, T + 1.0)]


def test_pcap_link_type_fcs_bits_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "fcs.pcap"
    # bit 26 (F) and an FCS length of 4 in the top bits, as the pcap spec allows
    path.write_bytes(pcap(b"\xd4\xc3\xb2\xa1", "<", [(T, 0, ETH + bytes(4))], 1 | (1 << 26) | (
        4 << 28)))  # fmt: skip
    (frame,) = read_frames(path)
    assert frame.linktype == 1
    (obs,) = Sensor().run([frame])  # the trailing FCS is cut by the IP length
    assert obs.hostname == "www.tiktok.com"


@pytest.mark.parametrize(
    ("cut", "frames", "problem"),
    [
        pytest.param(10, 0, "truncated pcap header", id="header"),
        pytest.param(24 + 8, 0, "truncated record header", id="record-header"),
        # the last record's bytes that are there are given, like a short snap length
        pytest.param(-5, 2, "truncated packet after 1 packets", id="last-packet"),
    ],
)
def test_pcap_cut_short(tmp_path: Path, cut: int, frames: int, problem: str) -> None:
    data = pcap(b"\xd4\xc3\xb2\xa1", "<", [(T, 0, ETH), (T, 1, ETH)])
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:cut])
    cap = CaptureFile(path)
    got = list(cap.frames())
    assert len(got) == frames
    assert cap.problem is not None and problem in cap.problem


# -- pcapng --------------------------------------------------------------------------------


def block(endian: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def shb(endian: str) -> bytes:
    return block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def option(endian: str, code: int, value: bytes) -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def idb(endian: str, linktype: int, *, tsresol: int | None = None, tsoffset: int = 0,
        snaplen: int = 0) -> bytes:  # fmt: skip
    opts = option(endian, 2, b"eth0")  # if_name: skipped
    if tsresol is not None:
        opts += option(endian, 9, bytes([tsresol]))
    if tsoffset:
        opts += option(endian, 14, struct.pack(endian + "q", tsoffset))
    opts += option(endian, 0, b"")
    return block(endian, 1, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts)


def epb(endian: str, iface: int, ts: int, data: bytes, *, comment: bool = False) -> bytes:
    body = struct.pack(endian + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    body += data + bytes(-len(data) % 4)
    if comment:
        body += option(endian, 1, b"a comment after the data") + option(endian, 0, b"")
    return block(endian, 6, body)


def spb(endian: str, data: bytes) -> bytes:
    return block(endian, 3, struct.pack(endian + "I", len(data)) + data)


def old_pb(endian: str, iface: int, ts: int, data: bytes) -> bytes:
    head = struct.pack(endian + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return block(endian, 2, head + data)


def test_pcapng_sections_interfaces_and_blocks(tmp_path: Path) -> None:
    data = (
        shb("<")
        + idb("<", 1)
        + idb("<", 276, tsresol=9)  # nanoseconds
        + block("<", 4, b"name resolution block")  # skipped
        + epb("<", 0, T * 10**6 + 500000, ETH, comment=True)
        + epb("<", 1, T * 10**9 + 600_000_000, SLL2)
        + spb("<", ETH)  # no timestamp: the previous packet's
        + block("<", 0x0BAD, b"custom block")  # skipped
        # a second section, big-endian, whose interface 0 is raw IP: not the first section's
        + shb(">")
        + idb(">", 101, tsresol=0x80 | 20, tsoffset=T)  # 2^-20 s units, offset in seconds
        + epb(">", 0, 2**19, RAW6)
        + old_pb(">", 0, 2**20, RAW6)
    )
    path = tmp_path / "multi.pcapng"
    path.write_bytes(data)
    frames = list(read_frames(path))
    assert [(f.linktype, f.data) for f in frames] == [
        (1, ETH), (276, SLL2), (1, ETH), (101, RAW6), (101, RAW6),
    ]  # fmt: skip
    assert [f.time for f in frames] == [T + 0.5, T + 0.6, T + 0.6, T + 0.5, T + 1.0]
    sensor = Sensor()
    assert [o.hostname for o in sensor.run(frames)] == ["www.tiktok.com", "www.youtube.com"]
    c = sensor.counters  # the same flow again and again, each frame decoded
    assert (c.duplicates, c.malformed, c.skipped) == (3, {}, {})


def test_pcapng_snaplen_bounds_simple_packet_blocks(tmp_path: Path) -> None:
    path = tmp_path / "snap.pcapng"
    path.write_bytes(shb("<") + idb("<", 1, snaplen=40) + spb("<", ETH))
    (frame,) = read_frames(path)
    assert frame.data == ETH[:40]


def test_pcapng_block_naming_no_interface_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bad-iface.pcapng"
    path.write_bytes(shb("<") + idb("<", 1) + epb("<", 5, 0, ETH) + epb("<", 0, 0, ETH))
    assert len(list(read_frames(path))) == 1


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(shb("<") + idb("<", 1) + epb("<", 0, 0, ETH)[:30], "truncated block",
                     id="cut-block"),
        pytest.param(shb("<") + struct.pack("<II", 6, 13) + bytes(8), "bad block length",
                     id="odd-length"),
        pytest.param(shb("<")[:10], "bad section header", id="cut-section-header"),
    ],
)  # fmt: skip
def test_pcapng_problems(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "broken.pcapng"
    path.write_bytes(data)
    cap = CaptureFile(path)
    assert list(cap.frames()) == []
    assert cap.problem is not None and problem in cap.problem


# -- compression, errors ---------------------------------------------------------------------


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, bz2.compress])
def test_compressed_captures(tmp_path: Path, compress: object) -> None:
    plain = shb("<") + idb("<", 1) + epb("<", 0, T * 10**6, ETH)
    path = tmp_path / "x.pcapng.z"
    path.write_bytes(compress(plain))  # type: ignore[operator]
    assert list(read_frames(path)) == [Frame(1, ETH, float(T))]


def test_corrupt_compressed_stream_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(pcap(b"\xd4\xc3\xb2\xa1", "<", [(T, 0, ETH)] * 50)))
    data[40:60] = bytes(20)
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(bytes(data))
    cap = CaptureFile(path)
    list(cap.frames())
    assert cap.problem is not None and str(path) in cap.problem


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x1f\x8b" + bytes(30), "cannot read"),
        (gzip.compress(b"plain text, compressed"), "not a pcap or pcapng file"),
        (b"\x0a\x0d", "not a pcap or pcapng file"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.cap"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as e:
        CaptureFile(path)
    assert str(path) in str(e.value)

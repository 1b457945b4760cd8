"""Capture files → frames: pcap and pcapng read by hand, plain or gzip/xz-compressed.

Why not scapy's readers: they apply the first section's interfaces to every later section of
a pcapng file (``cat a.pcapng b.pcapng``, as some tools write them), crash on Simple Packet
Blocks (no timestamp), ignore ``if_tsoffset``, and are slower than this. Reads sequentially,
so a FIFO works too. Understands:

* pcap with microsecond, nanosecond and "modified" (Kuznetzov) magics, either byte order;
  the link type field's FCS bits are masked off;
* pcapng with any number of sections and interfaces, per-interface link type, ``if_tsresol``
  and ``if_tsoffset``; Enhanced, Simple and (obsolete) Packet Blocks; other blocks skipped.

A file cut short (a capture still being written, a truncated download) ends the frames there
(a pcap's last partial record is still given, like a packet cut by the snap length);
``problem`` then says what was wrong.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple, cast

from monitor.sensor.model import Frame

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e6, 0),
    b"\xa1\xb2\xc3\xd4": (">", 1e6, 0),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9, 0),
    b"\xa1\xb2\x3c\x4d": (">", 1e9, 0),
    b"\x34\xcd\xb2\xa1": ("<", 1e6, 8),  # modified pcap: ifindex, protocol, pkt_type, pad
    b"\xa1\xb2\xcd\x34": (">", 1e6, 8),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
BLOCK_IDB = 1
BLOCK_PB = 2  # obsolete Packet Block
BLOCK_SPB = 3
BLOCK_EPB = 6
OPT_TSRESOL = 9
OPT_TSOFFSET = 14
MAX_BLOCK = 256 * 1024 * 1024  # a larger block length means a corrupt file
MAX_RECORD = 16 * 1024 * 1024  # pcap: above any real frame (jumbo, TSO/GRO, BIG TCP)

_COMPRESSED = {b"\x1f\x8b": "gzip", b"\xfd7zXZ": "xz", b"BZh": "bzip2"}


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    divisor: float  # timestamp units per second
    offset: float  # seconds added to every timestamp


def _open_decompressed(f: IO[bytes], head: bytes) -> IO[bytes] | None:
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            if kind == "gzip":
                return cast(IO[bytes], gzip.GzipFile(fileobj=f))
            if kind == "xz":
                return cast(IO[bytes], lzma.LZMAFile(f))
            return cast(IO[bytes], bz2.BZ2File(f))
    return None


class CaptureFile:
    """A pcap or pcapng file opened for sequential reading.

    Raises ValueError naming the file when it cannot be opened or is not a capture file.
    Use as a context manager, or iterate ``frames()`` to the end (which closes it).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.problem: str | None = None
        try:
            raw = open(path, "rb")
        except OSError as e:
            raise ValueError(f"{path}: cannot open: {e.strerror or e}") from e
        self._raw = raw
        self._f: IO[bytes] = raw
        try:
            head = raw.peek(8)[:8]
            inner = _open_decompressed(raw, head)
            if inner is not None:
                self._f = inner
                head = inner.read(4)
            else:
                head = raw.read(4)
        except (OSError, EOFError, lzma.LZMAError) as e:
            self.close()
            raise ValueError(f"{path}: cannot read: {e}") from e
        self._magic = head
        if head != PCAPNG_SHB and head not in PCAP_MAGICS:
            self.close()
            shown = head.hex() or "empty file"
            raise ValueError(f"{path}: not a pcap or pcapng file (starts with {shown})")

    def close(self) -> None:
        if self._f is not self._raw:
            self._f.close()
        self._raw.close()

    @property
    def position(self) -> int:
        """Bytes of the file read so far (of the compressed file, when it is compressed)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):  # closed
            return 0

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(self) -> Iterator[Frame]:
        """Every frame in file order; closes the file at the end."""
        try:
            if self._magic == PCAPNG_SHB:
                yield from self._pcapng()
            else:
                yield from self._pcap()
        except (OSError, EOFError, lzma.LZMAError) as e:  # a corrupt compressed stream
            self.problem = f"{self.path}: read error: {e}"
        finally:
            self.close()

    # -- pcap -----------------------------------------------------------------------------

    def _pcap(self) -> Iterator[Frame]:
        endian, divisor, extra = PCAP_MAGICS[self._magic]
        f = self._f
        rest = f.read(20)
        if len(rest) < 20:
            self.problem = f"{self.path}: truncated pcap header"
            return
        linktype = struct.unpack(endian + "I", rest[16:20])[0] & 0xFFFF  # FCS bits above
        rec = struct.Struct(endian + "IIII")
        hlen = 16 + extra
        read = f.read
        unpack = rec.unpack_from
        n = 0
        while True:
            head = read(hlen)
            if len(head) < hlen:
                if head:
                    self.problem = f"{self.path}: truncated record header after {n} packets"
                return
            sec, frac, caplen, _ = unpack(head)
            if caplen > MAX_RECORD:
                self.problem = f"{self.path}: corrupt record length {caplen} after {n} packets"
                return
            data = read(caplen)
            if len(data) < caplen:
                self.problem = f"{self.path}: truncated packet after {n} packets"
                if data:  # what is there, like a short snap length (the decoder says so)
                    yield Frame(linktype, data, sec + frac / divisor)
                return
            n += 1
            yield Frame(linktype, data, sec + frac / divisor)

    # -- pcapng ---------------------------------------------------------------------------

    def _pcapng(self) -> Iterator[Frame]:
        f = self._f
        read = f.read
        btype = PCAPNG_SHB
        endian = "<"
        interfaces: list[_Interface] = []
        last_time = 0.0
        n = 0
        first = True
        while True:
            if first:
                head = btype + read(4)  # the magic was read on open
                first = False
            else:
                head = read(8)
            if len(head) < 8:
                if head:
                    self.problem = f"{self.path}: truncated block header after {n} packets"
                return
            if head[:4] == PCAPNG_SHB:
                bom = read(4)
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    self.problem = f"{self.path}: bad section header after {n} packets"
                    return
                length = struct.unpack(endian + "I", head[4:8])[0]
                if length < 28 or length > MAX_BLOCK or length % 4:
                    self.problem = f"{self.path}: bad section header length {length}"
                    return
                body = read(length - 12)
                if len(body) < length - 12:
                    self.problem = f"{self.path}: truncated section header"
                    return
                interfaces = []  # each section describes its own interfaces
                continue
            btype_n, length = struct.unpack(endian + "II", head)
            if length < 12 or length > MAX_BLOCK or length % 4:
                self.problem = f"{self.path}: bad block length {length} after {n} packets"
                return
            body = read(length - 8)
            if len(body) < length - 8:
                self.problem = f"{self.path}: truncated block after {n} packets"
                return
            end = len(body) - 4  # the block ends with a copy of its length
            if btype_n == BLOCK_EPB:
                if end < 20:
                    continue
                iface, hi, lo, caplen, _ = struct.unpack_from(endian + "IIIII", body)
                if iface >= len(interfaces) or 20 + caplen > end:
                    continue  # a block naming no interface or overrunning itself: skipped
                itf = interfaces[iface]
                last_time = ((hi << 32) | lo) / itf.divisor + itf.offset
                n += 1
                yield Frame(itf.linktype, body[20 : 20 + caplen], last_time)
            elif btype_n == BLOCK_SPB:
                if not interfaces or end < 4:
                    continue
                itf = interfaces[0]
                wire = struct.unpack_from(endian + "I", body)[0]
                caplen = min(wire, end - 4, itf.snaplen or wire)
                n += 1
                # no timestamp in a simple packet block: the previous packet's time
                yield Frame(itf.linktype, body[4 : 4 + caplen], last_time)
            elif btype_n == BLOCK_IDB:
                if end >= 8:
                    interfaces.append(self._interface(body[:end], endian))
            elif btype_n == BLOCK_PB:
                if end < 20:
                    continue
                iface, _, hi, lo, caplen, _ = struct.unpack_from(endian + "HHIIII", body)
                if iface >= len(interfaces) or 20 + caplen > end:
                    continue
                itf = interfaces[iface]
                last_time = ((hi << 32) | lo) / itf.divisor + itf.offset
                n += 1
                yield Frame(itf.linktype, body[20 : 20 + caplen], last_time)
            # other blocks (name resolution, statistics, decryption secrets, custom): skipped

    @staticmethod
    def _interface(body: bytes, endian: str) -> _Interface:
        linktype, _, snaplen = struct.unpack_from(endian + "HHI", body)
        divisor = 1e6
        offset = 0.0
        p = 8
        while p + 4 <= len(body):
            code, olen = struct.unpack_from(endian + "HH", body, p)
            p += 4
            if code == 0:
                break
            value = body[p : p + olen]
            if code == OPT_TSRESOL and olen == 1:
                v = value[0]
                divisor = float(2 ** (v & 0x7F) if v & 0x80 else 10 ** (v & 0x7F))
            elif code == OPT_TSOFFSET and olen == 8:
                offset = float(struct.unpack(endian + "q", value)[0])
            p += olen + (-olen % 4)
        return _Interface(linktype, snaplen, divisor, offset)


def read_frames(path: str | Path) -> Iterator[Frame]:
    """Frames of a pcap or pcapng file (see the module docstring for what is understood).

    Raises ValueError naming the file when it cannot be opened or is not a capture file.
    """
    return CaptureFile(path).frames()

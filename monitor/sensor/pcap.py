"""The capture adapter: pcap/pcapng files and live interfaces → ``Sensor``.

The only module of the sensor that imports scapy, and it uses only scapy's raw readers and
``sniff``: frames are decoded by ``decode.py``, never dissected into scapy layers (a full
dissection is the slow part of scapy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scapy.error import Scapy_Exception
from scapy.utils import RawPcapNgReader, RawPcapReader

from .model import Observation
from .pipeline import Classify, Frame, Sensor

#: Kernel filter for live capture: the traffic the parsers read, nothing else.
BPF_FILTER = "udp port 53 or tcp port 53 or tcp port 443 or tcp port 853 or udp port 443"


def read_frames(path: str | Path) -> Iterator[Frame]:
    """Frames of a pcap or pcapng file (either byte order, micro- or nanosecond times).

    Raises ValueError naming the file when it cannot be opened or is not a capture file.
    """
    try:
        f = open(path, "rb")  # the reader owns it from here and closes it
    except OSError as e:
        raise ValueError(f"{path}: cannot open: {e.strerror or e}") from e
    try:
        # scapy opens by name without closing on failure: hand it our file object instead
        reader = _open_reader(f)  # falls back to RawPcapNgReader by magic
    except (OSError, EOFError, Scapy_Exception) as e:
        f.close()
        raise ValueError(f"{path}: not a pcap or pcapng file ({e})") from e
    return _frames(reader)


_open_reader: Any = RawPcapReader  # typed for a file name; it takes a file object too


def _frames(reader: Any) -> Iterator[Frame]:
    meta: Any
    with reader:
        if isinstance(reader, RawPcapNgReader):
            for data, meta in reader:  # linktype and time resolution per interface
                ts = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
                yield Frame(meta.linktype, data, ts)
        else:
            linktype = reader.linktype
            div = 1e9 if reader.nano else 1e6
            for data, meta in reader:
                yield Frame(linktype, data, meta.sec + meta.usec / div)


def observe_pcap(
    path: str | Path, classify: Classify | None = None, *, sensor: Sensor | None = None
) -> Iterator[Observation]:
    """Observations of a capture file (a fresh ``Sensor`` unless one is given)."""
    frames = read_frames(path)
    return (sensor or Sensor(classify)).run(frames)


def packet_handler(
    sensor: Sensor, on_observation: Callable[[Observation], None]
) -> Callable[[Any], None]:
    """A ``prn`` callback for scapy's ``sniff``: feeds each packet's bytes to the sensor.

    ``sniff`` hands over packet objects; their link-layer class gives the pcap link type and
    ``original`` the bytes as received, which ``decode.py`` reads by hand.
    """
    from scapy.config import conf

    layer2num = conf.l2types.layer2num

    def prn(pkt: Any) -> None:
        linktype = layer2num.get(type(pkt))
        if linktype is None:
            sensor.counters.skipped["unsupported_linktype"] += 1
            return
        data = pkt.original or bytes(pkt)
        for obs in sensor.feed(linktype, data, float(pkt.time)):
            on_observation(obs)

    return prn


def sniff_live(
    iface: str,
    on_observation: Callable[[Observation], None],
    *,
    classify: Classify | None = None,
    sensor: Sensor | None = None,
    bpf: str = BPF_FILTER,
    count: int = 0,
    timeout: float | None = None,
) -> Sensor:
    """Capture on ``iface`` with a kernel filter and report each observation as it appears.

    Blocks until ``count`` packets or ``timeout`` seconds (forever by default; Ctrl-C stops
    it). Needs the capture privilege (root or CAP_NET_RAW). Returns the sensor, whose counters
    say what was seen and dropped. Raises ValueError for an unknown interface, OSError
    (PermissionError without the privilege) when the capture cannot start.
    """
    from scapy.sendrecv import sniff

    sensor = sensor or Sensor(classify)
    prn = packet_handler(sensor, on_observation)
    try:
        sniff(iface=iface, filter=bpf, prn=prn, store=False, count=count, timeout=timeout)
    except Scapy_Exception as e:  # e.g. no tcpdump to compile the filter, a closed socket
        raise OSError(f"{iface}: {e}") from e
    return sensor

"""The capture adapter: capture files and live interfaces → ``Sensor``.

Files are read by ``capfile`` (pure Python); live capture uses scapy's ``sniff``. This is the
only module of the sensor that imports scapy, and only for ``sniff``: frames are decoded by
``decode.py``, never dissected into scapy layers (a full dissection is the slow part of scapy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from monitor.sensor.capfile import CaptureFile, read_frames
from monitor.sensor.model import Frame, Observation
from monitor.sensor.pipeline import Classify, Sensor

__all__ = ["BPF_FILTER", "Frame", "observe_pcap", "packet_handler", "read_frames", "sniff_live"]

#: The capture socket's receive buffer (bytes): scapy asks for 64 KiB, about a hundred
#: packets, which a busy machine overruns in a scheduling hiccup (bench/bench_sensor_live.py:
#: 0.6% of 5,000 packets/s dropped with it, none with this). Root may exceed net.core.rmem_max.
CAPTURE_BUFFER = 8 * 1024 * 1024
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; Python's socket module does not name it

#: Kernel filter for live capture: the traffic the parsers read, nothing else. DNS answers
#: (source port 53) are read too: they name the host when the query was not captured.
BPF_FILTER = "udp port 53 or tcp port 53 or tcp port 443 or tcp port 853 or udp port 443"


def observe_pcap(
    path: str | Path, classify: Classify | None = None, *, sensor: Sensor | None = None
) -> Iterator[Observation]:
    """Observations of a capture file (a fresh ``Sensor`` unless one is given)."""
    frames = CaptureFile(path).frames()
    return (sensor if sensor is not None else Sensor(classify)).run(frames)


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
    it). Needs the capture privilege (root or CAP_NET_RAW) and libpcap (Debian's
    ``libpcap0.8``), which scapy uses to compile the kernel filter. Returns the sensor, whose
    counters say what was seen and dropped. Raises OSError (PermissionError without the
    privilege) when the capture cannot start.

    Packets are read raw from scapy's listening socket (``recv_raw``): bytes, link-layer class
    and time, never dissected into scapy layers.
    """
    import select

    # The link-layer classes must be registered for the socket to name a frame's link type
    # (without them scapy warns "Unable to guess type" and every frame is unusable).
    import scapy.layers.l2  # noqa: F401
    from scapy.arch import get_if_list  # also sets conf.L2listen for this platform
    from scapy.config import conf
    from scapy.error import Scapy_Exception

    sensor = sensor if sensor is not None else Sensor(classify)
    if iface not in get_if_list():
        raise OSError(f"{iface}: no such network interface")
    layer2num = conf.l2types.layer2num
    try:
        sock = conf.L2listen(iface=iface, filter=bpf)
    except Scapy_Exception as e:  # e.g. no libpcap to compile the filter
        raise OSError(f"{iface}: {e} (install libpcap: apt-get install libpcap0.8)") from e
    _grow_buffer(sock)
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    try:
        while count == 0 or seen < count:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                break
            ready, _, _ = select.select([sock], [], [], wait)
            if not ready:
                continue
            cls, data, ts = sock.recv_raw(65535)
            if data is None:
                continue
            seen += 1
            linktype = layer2num.get(cls) if cls is not None else None
            if linktype is None:
                sensor.counters.skipped["unsupported_linktype"] += 1
                continue
            for obs in sensor.feed(linktype, data, float(ts if ts is not None else time.time())):
                on_observation(obs)
    finally:
        sock.close()
    return sensor


def _grow_buffer(sock: Any) -> None:
    """Give the capture socket CAPTURE_BUFFER bytes of queue (as far as allowed)."""
    import socket

    raw = getattr(sock, "ins", None)
    if not isinstance(raw, socket.socket):
        return
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):  # beyond rmem_max needs CAP_NET_ADMIN
        try:
            raw.setsockopt(socket.SOL_SOCKET, option, CAPTURE_BUFFER)
            return
        except OSError:
            continue

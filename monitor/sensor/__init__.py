"""Passive sensor: host names from DNS queries, TLS ClientHello SNI and QUIC Initial packets.

For traffic that does not cross the proxy (HTTP/3 over UDP, other ports, bypass tools). The
parsers (``dns``, ``tls``, ``quic``), the frame decoder (``decode``) and the pipeline
(``pipeline.Sensor``) are pure; ``pcap`` is the scapy adapter for files and live capture.
"""

from .model import Counters, Malformed, Observation
from .pipeline import Frame, Sensor, observe

__all__ = ["Counters", "Frame", "Malformed", "Observation", "Sensor", "observe"]

"""Passive sensor: host names from DNS queries and answers, TLS ClientHello SNI, QUIC Initials
(IETF and Google QUIC) and plain HTTP requests.

For traffic that does not cross the proxy (HTTP/3 over UDP, other ports, bypass tools). The
parsers (``dns``, ``tls``, ``quic``, ``gquic``, ``http``), the frame decoder (``decode``), the
capture file reader (``capfile``) and the pipeline (``pipeline.Sensor``) are pure; ``pcap``
is the scapy adapter for live capture; ``judge`` applies the district's identity, catalogue
and policy to observations and records them like the proxy does; ``metrics`` exports the
sensor's counters. Imports ``monitor.flow`` and the stages below it; never ``web``.
"""

from monitor.sensor.model import Counters, Frame, Malformed, Observation
from monitor.sensor.pipeline import Sensor, observe

__all__ = ["Counters", "Frame", "Malformed", "Observation", "Sensor", "observe"]

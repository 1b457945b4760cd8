"""The sensor's own counters as Prometheus metrics, read at scrape time.

The pipeline keeps plain integers (``model.Counters``); this collector turns them into
``monitor_sensor_*`` counters when Prometheus scrapes, so the per-packet path pays nothing for
metrics. Labels are bounded: protocols, and the fixed set of malformed/skipped kinds the
parsers and decoder name. Decisions on observations are counted by the shared
``monitor_requests_total{source="sensor"}`` (see ``judge``).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.sensor.pipeline import Sensor


class SensorCollector(Collector):
    """Collects a ``Sensor``'s counters (the sensor may be replaced: ``sensor`` attribute)."""

    def __init__(self, sensor: Sensor) -> None:
        self.sensor = sensor

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self.sensor
        c = s.counters
        # copies first: the capture thread keeps counting while a scrape reads
        protocols = dict(c.protocols)
        malformed = dict(c.malformed)
        skipped = dict(c.skipped)
        tunnels = dict(c.tunnels)
        reassembly = dict(c.reassembly)
        yield CounterMetricFamily(
            "monitor_sensor_packets", "Packets the sensor read.", value=c.packets
        )
        obs = CounterMetricFamily(
            "monitor_sensor_observations",
            "Host names reported, one per flow and name, by protocol (dns, tls, quic, http, ip, "
            "stun).",
            labels=["protocol"],
        )
        for proto, n in sorted(protocols.items()):
            obs.add_metric([proto], n)
        yield obs
        yield CounterMetricFamily(
            "monitor_sensor_duplicates",
            "Host names not reported again because their flow already named them.",
            value=c.duplicates,
        )
        bad = CounterMetricFamily(
            "monitor_sensor_malformed",
            "Broken packets by kind (truncated headers, bad lengths, failed decryption).",
            labels=["kind"],
        )
        for kind, n in sorted(malformed.items()):
            bad.add_metric([kind], n)
        yield bad
        skip = CounterMetricFamily(
            "monitor_sensor_skipped",
            "Packets that are fine but carry nothing the sensor reads, by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(skipped.items()):
            skip.add_metric([reason], n)
        yield skip
        tun = CounterMetricFamily(
            "monitor_sensor_tunnelled",
            "Packets read inside a tunnel, by the outermost tunnel's kind (6in4, 4in4, 4in6, "
            "6in6, gre, pptp, erspan, vxlan).",
            labels=["kind"],
        )
        for kind, n in sorted(tunnels.items()):
            tun.add_metric([kind], n)
        yield tun
        frag = CounterMetricFamily(
            "monitor_sensor_reassembly",
            "IP datagrams reassembled from fragments (ipv4, ipv6), and those dropped unfinished "
            "after the timeout (expired).",
            labels=["outcome"],
        )
        for outcome, n in sorted(reassembly.items()):
            frag.add_metric([outcome], n)
        yield frag
        yield CounterMetricFamily(
            "monitor_sensor_evicted",
            "Reassembly entries dropped to keep memory bounded.",
            value=c.evicted,
        )
        yield GaugeMetricFamily(
            "monitor_sensor_dedup_entries",
            "Flow and name pairs held for deduplication.",
            value=s.dedup_size,
        )


def register(registry: CollectorRegistry, sensor: Sensor) -> SensorCollector:
    """Add a collector of ``sensor``'s counters to ``registry``; return it."""
    collector = SensorCollector(sensor)
    registry.register(collector)
    return collector

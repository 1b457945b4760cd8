"""Prometheus metrics of the monitor, on an injected registry.

Labels come only from bounded sets: platform ids from the catalogue (or "none"), activities,
decisions, age bands (plus "staff" and "unknown"), school identifiers from the roster (plus
"unknown"), sources ("proxy", "sensor"). Never a student, device, address or free host name.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from monitor import __version__
from monitor.district import COMPONENTS
from monitor.model import STAFF_ROLES
from monitor.rules.overrides import Override

NONE = "none"
CONFIG_COMPONENTS = ("settings", *COMPONENTS)
UNKNOWN = "unknown"
CLOSE_REASONS = ("address_limit", "header_timeout")

# decision latency is in microseconds territory; store writes in milliseconds
_DECISION_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2)
_WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ActiveOverrides:
    """``monitor_overrides_active{platform}``, counted at scrape time from the overrides this
    process applies (the store's, as last polled)."""

    def __init__(
        self, overrides: Callable[[], Iterable[Override] | None], now: Callable[[], float]
    ) -> None:
        self.overrides, self.now = overrides, now

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            "monitor_overrides_active",
            "Teacher overrides in force now, by platform (each writer reports the same "
            "store's grants: aggregate with max, not sum).",
            labels=["platform"],
        )
        now = self.now()
        counts = Tally(o.platform for o in self.overrides() or () if o.starts.timestamp() <= now
                       < o.effective_end.timestamp())  # fmt: skip
        for platform, n in sorted(counts.items()):
            g.add_metric([platform], n)
        yield g


def role_label(role: str) -> str:
    """A granter's role as a bounded label."""
    return role if role in STAFF_ROLES else "other"


class Metrics:
    """Every metric the proxy and sensor export. One instance per process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "monitor_requests",
            "Decisions on requests to catalogue platforms (a connection refused without "
            "decrypting counts as one request, activity view).",
            ["platform", "activity", "decision", "age_band", "school", "source"],
            registry=r,
        )
        self.connections = Counter(
            "monitor_connections",
            "Client connections by what the proxy did with them: passthrough (not decrypted), "
            "intercepted (decrypted to decide per request) or refused (closed without decrypting).",
            ["outcome", "platform"],
            registry=r,
        )
        self.incidents = Counter(
            "monitor_incidents",
            "Incident events raised by policy and handed to the incident recorder.",
            ["platform", "severity", "school", "source"],
            registry=r,
        )
        self.flow_errors = Counter(
            "monitor_flow_errors",
            "Flows whose handling raised inside the addon, by the failure mode applied.",
            ["mode"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "monitor_decision_duration_seconds",
            "Time to identify, classify and decide one request.",
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "monitor_config_reloads",
            "Configuration reload attempts by component and result (success, failure).",
            ["component", "result"],
            registry=r,
        )
        self.config_loaded = Gauge(
            "monitor_config_last_reload_success_timestamp_seconds",
            "When each configuration component was last loaded successfully.",
            ["component"],
            registry=r,
        )
        self.config_size = Gauge(
            "monitor_config_entries",
            "Entries in the loaded configuration: people, devices, leases, rules, platforms.",
            ["component"],
            registry=r,
        )
        self.config_version = Info(
            "monitor_config",
            "Content hashes of the configuration in force.",
            registry=r,
        )
        self.build = Info("monitor_build", "Version of the monitor.", registry=r)
        self.build.info({"version": __version__})
        self.queue_depth = Gauge(
            "monitor_incident_queue_depth", "Incident events waiting to be written.", registry=r
        )
        self.queue_dropped = Counter(
            "monitor_incident_queue_dropped",
            "Incident events dropped because the bounded queue was full.",
            registry=r,
        )
        self.spooled = Counter(
            "monitor_incident_spooled",
            "Incident events written to the local spool because the store failed.",
            registry=r,
        )
        self.store_failures = Counter(
            "monitor_store_write_failures",
            "Failed attempts to open the incident store or write a batch to it.",
            registry=r,
        )
        self.store_seconds = Histogram(
            "monitor_store_write_duration_seconds",
            "Time to write one batch of incidents to the store.",
            buckets=_WRITE_BUCKETS,
            registry=r,
        )
        self.store_up = Gauge(
            "monitor_incident_store_up",
            "1 when the last attempt to open or write the incident store succeeded, 0 when it "
            "failed (from start-up on: a store that cannot be opened is 0 at once); incidents "
            "then wait in the local spool.",
            registry=r,
        )
        self.store_up.set(1)  # as the recorder's store_ok: up until an attempt failed
        self.key_mismatch = Gauge(
            "monitor_incident_store_key_mismatch",
            "1 while the incident store refuses this process because its pseudonym key is not "
            "the key the store's incidents were recorded with (a fingerprint check); incidents "
            "wait in the local spool. Give every proxy and sensor the district's one key.",
            registry=r,
        )
        self.spool_events = Gauge(
            "monitor_incident_spool_events",
            "Incident events waiting in the local spool for the store.",
            registry=r,
        )
        self.journal_failures = Counter(
            "monitor_incident_journal_failures",
            "Incident events that could not be written to the local journal (disk full or "
            "unwritable): held in memory only, so a crash of the process loses them.",
            registry=r,
        )
        self.journal_recovered = Counter(
            "monitor_incident_journal_recovered",
            "Incident events of an earlier run (killed or stopped with events unwritten) read "
            "back from the journal at start and written again; the store applies each once.",
            registry=r,
        )
        # Label sets known in advance exist from the start (as 0), so that increase() sees
        # their first increment and dashboards show 0 rather than no data.
        for component in CONFIG_COMPONENTS:
            for result in ("success", "failure"):
                self.reloads.labels(component, result)
        for mode in ("open", "closed"):
            self.flow_errors.labels(mode)
        self.client_connections = Gauge(
            "monitor_client_connections",
            "Client connections open at the proxy.",
            registry=r,
        )
        self.client_connections_closed = Counter(
            "monitor_client_connections_closed",
            "Client connections the proxy closed to protect itself: address_limit (too many "
            "open from one address) or header_timeout (no complete request head in time).",
            ["reason"],
            registry=r,
        )
        for reason in CLOSE_REASONS:
            self.client_connections_closed.labels(reason)
        self.override_allowed = Counter(
            "monitor_override_allowed_requests",
            "Requests a policy rule blocked and a teacher's override allowed, by platform and "
            "the granter's role (which override: monitor explain, the incident's rule id).",
            ["platform", "granted_by_role"],
            registry=r,
        )
        # CPU and memory of this process: the capacity signal of a CPU-bound proxy
        ProcessCollector(registry=r)

    def watch_overrides(
        self,
        overrides: Callable[[], Iterable[Override] | None],
        now: Callable[[], float] = time.time,
    ) -> None:
        """Export ``monitor_overrides_active`` from the overrides in force (read at scrape)."""
        self.registry.register(ActiveOverrides(overrides, now))

"""Recording decisions: Prometheus counters (in process) and incident events (through the
recorder's queue to the store). Shared by the proxy's addons and the sensor."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from monitor.district import District
from monitor.flow.metrics import Metrics
from monitor.incidents.events import UNKNOWN_PERSON, IncidentEvent, pseudonym
from monitor.incidents.recorder import Recorder, RecorderStats
from monitor.model import AGE_BANDS, Identity
from monitor.rules.decide import Ruling

log = logging.getLogger("monitor")


def open_recorder(district: District, store_url: str = "") -> Recorder:
    """The incident recorder of a district: its store (or ``store_url``), a spool in the
    state directory, the policy's dedupe window."""
    from monitor.incidents.store import open_store

    url = store_url or district.store_url
    state = district.state_dir
    state.mkdir(parents=True, exist_ok=True)
    window = district.policy.dedupe_window
    return Recorder(
        lambda: open_store(url, window=window),
        spool_path=Path(state) / "incident-spool.jsonl",
    )


class DecisionLog:
    """Counts decisions and queues incidents. Cheap and non-blocking: safe on an event loop."""

    def __init__(self, metrics: Metrics, recorder: Recorder | None, key: bytes) -> None:
        self.metrics = metrics
        self.recorder = recorder
        self.key = key
        self._last_stats: RecorderStats | None = None
        self._dropped_here = 0

    def record(
        self,
        who: Identity,
        ruling: Ruling,
        school: str,
        platform: str,
        activity: str,
        host: str,
        when: float,
        source: str = "proxy",
        *,
        count_request: bool = True,
    ) -> IncidentEvent | None:
        """Count one ruling; queue an incident when policy asks for one (and return it).

        ``school`` is the bounded label of ``ruling.school`` (``District.school_label``).
        """
        m = self.metrics
        decision = ruling.decision
        band = ruling.band
        if count_request:
            m.requests.labels(platform, activity, decision.action, band, school, source).inc()
        if decision.incident is None:
            return None
        m.incidents.labels(platform, decision.incident, school, source).inc()
        person = who.person
        try:
            event = IncidentEvent(
                time=datetime.fromtimestamp(when, UTC),
                person=pseudonym(self.key, person.sourced_id) if person else UNKNOWN_PERSON,
                school=school if school != "unknown" else "",
                grade=",".join(person.grades)[:16] if person else "",
                age_band=band if band in AGE_BANDS else "",
                role=person.role if person else "unknown",
                platform=platform,
                activity=activity,
                action=decision.action,
                rule_id=decision.rule_id,
                reason=decision.reason,
                host=host,
                source="sensor" if source == "sensor" else "proxy",
                severity=decision.incident,
            )
        except ValueError as e:
            log.warning("monitor: incident not recorded: %s", e)
            return None
        if self.recorder is not None and not self.recorder.submit(event):
            m.queue_dropped.inc()
            self._dropped_here += 1
        return event

    def update_recorder_metrics(self) -> None:
        """Carry the writer thread's counters over to Prometheus (deltas since last time)."""
        if self.recorder is None:
            return
        s = self.recorder.stats
        last = self._last_stats
        m = self.metrics
        m.queue_depth.set(s.queue_depth)
        if last is not None:
            m.spooled.inc(max(0, s.spooled - last.spooled))
            m.store_failures.inc(max(0, s.write_failures - last.write_failures))
            # submit() refusals were counted as they happened; these are the writer's own
            m.queue_dropped.inc(max(0, (s.dropped - last.dropped) - self._dropped_here))
            if s.written + s.duplicates > last.written + last.duplicates:
                m.store_seconds.observe(s.last_write_latency)
        self._dropped_here = 0
        self._last_stats = s

"""Recording decisions: Prometheus counters (in process) and incident events (through the
recorder's queue to the store). Shared by the proxy's addons and the sensor."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from monitor.district import District, pseudonym_key_source
from monitor.flow.metrics import Metrics, role_label
from monitor.incidents.aggregates import ActivityCounts
from monitor.incidents.events import UNKNOWN_PERSON, IncidentEvent, key_fingerprint, pseudonym
from monitor.incidents.recorder import ZERO_STATS, Recorder, RecorderStats
from monitor.model import AGE_BANDS, Identity
from monitor.notify.eventlog import event_log_for
from monitor.rules.decide import Ruling

log = logging.getLogger("monitor")

_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def recorder_files(state_dir: Path, instance: str = "") -> tuple[Path, Path]:
    """(journal, spool) of one recording process in the state directory.

    ``instance`` names the process when several share a state directory (proxy workers, the
    sensor): each needs files of its own, and a second live process on the same ones is
    refused. Empty: the single default instance, whose spool keeps its historical name.
    The name must not depend on the pid: a restarted process reads back what it left.
    """
    if instance and not _INSTANCE.fullmatch(instance):
        raise ValueError(
            f"instance name {instance!r}: letters, digits, '.', '_' and '-', at most 63"
        )
    suffix = f"-{instance}" if instance else ""
    return (
        state_dir / f"incident-journal{suffix}.jsonl",
        state_dir / f"incident-spool{suffix}.jsonl",
    )


def masked_url(url: str) -> str:
    """A store URL fit for logs: the password (if any) masked."""
    from monitor.incidents.store import normalise_url

    try:
        return normalise_url(url).render_as_string(hide_password=True)
    except ValueError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def open_recorder(
    district: District,
    store_url: str = "",
    instance: str = "",
    *,
    start: bool = True,
    key: bytes | None = None,
) -> Recorder:
    """The incident recorder of a district: its store (or ``store_url``), a journal and a
    spool in the state directory (named by ``instance``, see :func:`recorder_files`), the
    policy's dedupe window. ValueError when another live process uses the same files.

    With ``key`` (the pseudonym key), the store is opened only when it remembers this key's
    fingerprint, or none yet (then it remembers this one); otherwise events stay in the spool,
    and the recorder's ``key_mismatch`` says why."""
    from monitor.incidents.store import open_store

    url = store_url or district.store_url
    state = Path(district.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    journal, spool = recorder_files(state, instance)
    window = district.policy.dedupe_window
    fingerprint = key_fingerprint(key) if key is not None else None
    source = pseudonym_key_source(district)
    notify = district.settings.notify
    outbox = notify.outbox_filter() if notify is not None else None  # new urgent incidents
    events = event_log_for(notify.event_log if notify else None, state, instance, window)
    return Recorder(
        lambda: open_store(
            url,
            window=window,
            key_fingerprint=fingerprint,
            key_source=source,
            outbox=outbox,
            event_sink=events,
        ),  # fmt: skip
        spool_path=spool,
        journal_path=journal,
        store_name=masked_url(url),
        start=start,
    )


def check_store_key(
    district: District, key: bytes, store_url: str = "", timeout: float = 5.0
) -> str | None:
    """At start: does the store take this process's pseudonym key? Opens the store once (and
    makes its tables), claims the key's fingerprint if the store has none yet. None when it
    agrees; the reason (password masked) when the store cannot be reached, to be checked again
    by the recorder once it answers; KeyMismatchError (naming the key's file or variable) when
    it remembers another key."""
    from monitor.incidents.recorder import redact
    from monitor.incidents.store import open_store
    from monitor.incidents.store.keycheck import KeyMismatchError

    url = store_url or district.store_url
    if url == district.store_url and not district.settings.store:
        Path(district.state_dir).mkdir(parents=True, exist_ok=True)  # the default SQLite's
    try:
        open_store(
            url,
            window=district.policy.dedupe_window,
            timeout=timeout,
            key_fingerprint=key_fingerprint(key),
            key_source=pseudonym_key_source(district),
        ).close()
    except KeyMismatchError:
        raise
    except Exception as e:  # noqa: BLE001 - unreachable, for any reason: start anyway
        return f"{masked_url(url)}: {type(e).__name__}: {redact(str(e))}"
    return None


class DecisionLog:
    """Counts decisions and queues incidents. Cheap and non-blocking: safe on an event loop."""

    def __init__(
        self,
        metrics: Metrics,
        recorder: Recorder | None,
        key: bytes,
        aggregates: ActivityCounts | None = None,
    ) -> None:
        self.metrics = metrics
        self.recorder = recorder
        self.key = key
        self.aggregates = aggregates  # the daily activity counts, flushed to the store
        self._last_stats: RecorderStats = ZERO_STATS
        self._dropped_here = 0
        self.update_recorder_metrics()

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
        refused: bool = False,
    ) -> IncidentEvent | None:
        """Count one ruling; queue an incident when policy asks for one (and return it).

        ``school`` is the bounded label of ``ruling.school`` (``District.school_label``).
        ``refused``: the ruling closed a connection without decrypting it.
        """
        m = self.metrics
        decision = ruling.decision
        band = ruling.band
        person = who.person
        grade = ",".join(person.grades)[:16] if person else ""
        if count_request:
            m.requests.labels(platform, activity, decision.action, band, school, source).inc()
            if ruling.override is not None:
                m.override_allowed.labels(
                    platform, role_label(ruling.override.granted_by_role)
                ).inc()
            if self.aggregates is not None:
                self.aggregates.add(
                    when, school, band, grade, platform, activity, decision.action,
                    decision.rule_id, source, refused=refused,
                )  # fmt: skip
        if decision.incident is None:
            return None
        m.incidents.labels(platform, decision.incident, school, source).inc()
        try:
            event = IncidentEvent(
                time=datetime.fromtimestamp(when, UTC),
                person=pseudonym(self.key, person.sourced_id) if person else UNKNOWN_PERSON,
                school=school if school != "unknown" else "",
                grade=grade,
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
        last = self._last_stats  # zeros at first: what happened before the first call counts
        m = self.metrics
        m.queue_depth.set(s.queue_depth)
        m.store_up.set(1 if s.store_ok else 0)
        m.key_mismatch.set(1 if s.key_mismatch else 0)
        m.spool_events.set(s.spool_pending)
        m.spooled.inc(max(0, s.spooled - last.spooled))
        m.store_failures.inc(max(0, s.write_failures - last.write_failures))
        m.journal_failures.inc(max(0, s.journal_failures - last.journal_failures))
        m.journal_recovered.inc(max(0, s.recovered - last.recovered))
        # submit() refusals were counted as they happened; these are the writer's own
        m.queue_dropped.inc(max(0, (s.dropped - last.dropped) - self._dropped_here))
        if s.written + s.duplicates > last.written + last.duplicates:
            m.store_seconds.observe(s.last_write_latency)
        self._dropped_here = 0
        self._last_stats = s

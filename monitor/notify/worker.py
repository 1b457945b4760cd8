"""The notification worker: a thread that turns outbox rows into deliveries and sends what is
due, retrying failures with doubling backoff, counting every outcome.

It only reads the store and writes its own tables, on its own thread (or in its own process,
``monitor notify run``), so a slow mail server or a webhook that hangs never holds up the
recorder: the recorder's only part is the outbox row it writes in the incident's transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from monitor.incidents.events import Incident
from monitor.incidents.store.sql import SqlIncidentStore
from monitor.notify import mail, outbox, webhook
from monitor.notify.config import IncidentNotifyModel, NotifyModel
from monitor.notify.mail import DeliveryError

log = logging.getLogger("monitor.notify")

PRUNE_EVERY = timedelta(hours=1)
RESULTS = ("sent", "retry", "failed", "rate_limited", "no_address", "no_counselor", "gone")


class NotifyMetrics:
    """``monitor_notifications_total{channel,result}``: channel email or webhook; result one
    of RESULTS (retry: an attempt failed and another is scheduled; failed: attempts used up)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.total = Counter(
            "monitor_notifications_total",
            "Notification deliveries by channel and outcome.",
            ["channel", "result"],
            registry=registry,
        )
        for channel in ("email", "webhook"):
            for result in RESULTS:
                self.total.labels(channel, result)


def incident_text(i: Incident, link: str) -> tuple[str, str]:
    """Subject and body of an incident e-mail: pseudonym, platform, rule, time, link; no name."""
    subject = f"[student monitor] {i.severity} incident #{i.id} at {i.school or '?'}: {i.platform}"
    body = "\n".join((
        f"A {i.severity}-severity incident was recorded at school {i.school or '(unknown)'}.",
        "",
        f"Student (pseudonym): {i.person}",
        f"Platform:            {i.platform} ({i.activity}, {i.decision})",
        f"Rule:                {i.rule_id}",
        f"First seen:          {i.first_seen:%Y-%m-%d %H:%M:%S} UTC",
        "",
        f"Open it in the review app: {link}",
        "",
        "The student's name is shown only in the review app, to counselors of their school.",
    ))  # fmt: skip
    return subject, body + "\n"


def incident_payload(i: Incident, link: str, counselors: list[str]) -> dict[str, Any]:
    """The webhook's JSON: the incident under its pseudonym, and whom the monitor notified."""
    return {
        "type": "incident",
        "incident": {
            "id": i.id,
            "person": i.person,
            "school": i.school,
            "grade": i.grade,
            "platform": i.platform,
            "activity": i.activity,
            "decision": i.decision,
            "rule_id": i.rule_id,
            "severity": i.severity,
            "first_seen": i.first_seen.isoformat().replace("+00:00", "Z"),
            "link": link,
        },
        "counselors": counselors,
    }


class NotifyWorker:
    """Plans and sends the outbox's deliveries; :meth:`run_once` is one pass, :meth:`start`
    runs passes every ``poll`` seconds (and at :meth:`wake`) on a daemon thread."""

    def __init__(
        self,
        store: SqlIncidentStore,
        cfg: NotifyModel,
        config_dir: Path,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll: float = 2.0,
    ) -> None:
        if cfg.incidents is None:
            raise ValueError("notify: district.yaml has no notify.incidents section")
        self.store = store
        self.cfg = cfg
        self.incidents: IncidentNotifyModel = cfg.incidents
        self.config_dir = config_dir
        self.metrics = NotifyMetrics(registry)
        self.clock = clock
        self.poll = poll
        self._next_prune: datetime | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notify-worker", daemon=True)

    # -- one pass ----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Plan new outbox rows, then try every delivery that is due; returns how many were
        tried."""
        engine = self.store.engine
        for status, n in outbox.plan(
            engine, self.incidents, self.cfg.webhook is not None, self.clock()
        ).items():
            if status in ("rate_limited", "no_address", "no_counselor"):
                self.metrics.total.labels("email", status).inc(n)
                log.warning("notify: %d e-mail notifications not sent: %s", n, status)
        now = self.clock()
        if self._next_prune is None or now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            outbox.prune(engine, now - self.incidents.keep)
        tried = 0
        for d in outbox.due(engine, self.clock()):
            if self._stop.is_set():
                break
            tried += 1
            self._attempt(d)
        return tried

    def _attempt(self, d: outbox.Delivery) -> None:
        engine = self.store.engine
        incident = self.store.get(d.incident_id) if d.incident_id is not None else None
        if incident is None:  # purged before it could be sent
            outbox.finish(engine, d.id, "gone", self.clock())
            self.metrics.total.labels(d.channel, "gone").inc()
            return
        link = self.incidents.link.replace("{id}", str(incident.id))
        try:
            if d.channel == "email":
                self._email(d.recipient, incident, link)
            else:
                self._webhook(incident, link)
        except DeliveryError as e:
            self._failed(d, str(e))
            return
        outbox.finish(engine, d.id, "sent", self.clock())
        self.metrics.total.labels(d.channel, "sent").inc()

    def _email(self, user: str, incident: Incident, link: str) -> None:
        smtp = self.cfg.smtp
        address = outbox.address_of(self.incidents, user)
        if smtp is None or address is None:
            raise DeliveryError(f"no smtp section or no address for {user!r}")
        subject, body = incident_text(incident, link)
        msg = mail.new_message(smtp, [address], subject, body)
        msg["X-Monitor-Incident"] = str(incident.id)
        mail.send(smtp, self.config_dir, msg)

    def _webhook(self, incident: Incident, link: str) -> None:
        hook = self.cfg.webhook
        if hook is None:
            raise DeliveryError("no webhook section")
        try:
            secret = hook.secret(self.config_dir, "webhook")
        except ValueError as e:
            raise DeliveryError(str(e)) from None
        staff = outbox.counselors_of(self.store.engine, incident.school)
        payload = incident_payload(incident, link, staff)
        webhook.post(hook.url, payload, secret, hook.timeout.total_seconds())

    def _failed(self, d: outbox.Delivery, error: str) -> None:
        now = self.clock()
        attempts = d.attempts + 1
        who = d.recipient or "the district"
        if attempts >= self.incidents.attempts:
            outbox.finish(self.store.engine, d.id, "failed", now, error)
            self.metrics.total.labels(d.channel, "failed").inc()
            log.error("notify: %s to %s failed %d times, giving up: %s",
                      d.channel, who, attempts, error)  # fmt: skip
            return
        wait = outbox.backoff(self.incidents, attempts)
        outbox.retry_later(self.store.engine, d.id, now + wait, error)
        self.metrics.total.labels(d.channel, "retry").inc()
        log.warning("notify: %s to %s failed (attempt %d of %d), retrying in %s: %s",
                    d.channel, who, attempts, self.incidents.attempts, wait, error)  # fmt: skip

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop after the delivery in progress; True when the thread ended within ``timeout``."""
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the store is down, say: try again at the next poll
                log.exception("notify: a pass failed; trying again in %g s", self.poll)
            self._wake.wait(self.poll)
            self._wake.clear()

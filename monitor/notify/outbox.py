"""The outbox's bookkeeping: turning an outbox row into deliveries (one e-mail per counselor of
the student's school, one webhook call), rate limits, and each delivery's attempts.

A counselor is a review-app account with the role ``counselor``, enabled, whose schools include
the incident's. Deliveries beyond a counselor's rate limit, and counselors without a known
address, are recorded with that status (and counted), not dropped unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, func, select, update

from monitor.incidents.store.accessschema import accounts
from monitor.incidents.store.outboxschema import notify_deliveries, notify_outbox
from monitor.incidents.store.schema import incidents
from monitor.incidents.store.sql import write_transaction
from monitor.notify.config import IncidentNotifyModel

# Deliveries that count against a counselor's rate limit (sent, or on their way).
_COUNTED = ("pending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message due now: its channel, recipient (username, "" for the webhook), attempts
    so far, and the incident it is about (None when the incident was purged meanwhile)."""

    id: int
    channel: str
    recipient: str
    attempts: int
    incident_id: int | None


def address_of(cfg: IncidentNotifyModel, username: str) -> str | None:
    if username in cfg.addresses:
        return cfg.addresses[username]
    if cfg.address_domain:
        return f"{username}@{cfg.address_domain}"
    return None


def counselors_of(engine: Engine, school: str) -> list[str]:
    """Usernames of the enabled counselor accounts whose schools include ``school``."""
    q = select(accounts.c.username, accounts.c.schools).where(
        accounts.c.role == "counselor", accounts.c.disabled.is_(False)
    )
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(accounts.c.username)).all()
    return [r.username for r in rows if school and school in r.schools.split(",")]


def plan(
    engine: Engine, cfg: IncidentNotifyModel, webhook: bool, now: datetime, limit: int = 200
) -> dict[str, int]:
    """Make the deliveries of up to ``limit`` new outbox rows; returns counts by status (and
    ``no_counselor``: incidents whose school has no enabled counselor account to mail)."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        new = conn.execute(
            select(notify_outbox).where(notify_outbox.c.state == "new")
            .order_by(notify_outbox.c.id).limit(limit)
        ).all()  # fmt: skip
    for row in new:
        staff = counselors_of(engine, row.school)
        with write_transaction(engine) as conn:
            rows = []
            if cfg.email and not staff:
                counts["no_counselor"] = counts.get("no_counselor", 0) + 1
            if cfg.email:
                for user in staff:
                    status = "pending"
                    if address_of(cfg, user) is None:
                        status = "no_address"
                    elif _recent(conn, user, now - cfg.rate_window) >= cfg.rate_limit:
                        status = "rate_limited"
                    rows.append(("email", user, status))
            if webhook:
                rows.append(("webhook", "", "pending"))
            for channel, recipient, status in rows:
                conn.execute(
                    notify_deliveries.insert().values(
                        outbox_id=row.id, channel=channel, recipient=recipient, status=status,
                        attempts=0, next_attempt=now, last_error="", created_at=now,
                    )
                )  # fmt: skip
                counts[status] = counts.get(status, 0) + 1
            conn.execute(
                update(notify_outbox).where(notify_outbox.c.id == row.id).values(state="planned")
            )
    return counts


def _recent(conn: Connection, user: str, since: datetime) -> int:
    d = notify_deliveries.c
    q = (
        select(func.count())
        .select_from(notify_deliveries)
        .where(d.channel == "email", d.recipient == user, d.created_at >= since)
        .where(d.status.in_(_COUNTED))
    )
    return int(conn.execute(q).scalar_one())


def due(engine: Engine, now: datetime, limit: int = 100) -> list[Delivery]:
    """Pending deliveries whose next attempt is due, oldest first, with their incident's id."""
    d, o, i = notify_deliveries.c, notify_outbox.c, incidents.c
    q = (
        select(d.id, d.channel, d.recipient, d.attempts, i.id.label("incident_id"))
        .select_from(
            notify_deliveries.join(notify_outbox, d.outbox_id == o.id).outerjoin(
                incidents, and_(i.window_start == o.window_start, i.dedupe_key == o.dedupe_key)
            )
        )
        .where(d.status == "pending", d.next_attempt <= now)
        .order_by(d.next_attempt, d.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [Delivery(*r) for r in conn.execute(q).all()]


def finish(engine: Engine, delivery_id: int, status: str, now: datetime, error: str = "") -> None:
    """Close a delivery: sent, gone (its incident was purged) or failed (attempts used up)."""
    values: dict[str, object] = {"status": status, "last_error": error[:1000]}
    if status == "sent":
        values["sent_at"] = now
    with write_transaction(engine) as conn:
        conn.execute(
            update(notify_deliveries)
            .where(notify_deliveries.c.id == delivery_id)
            .values(attempts=notify_deliveries.c.attempts + 1, **values)
        )


def retry_later(engine: Engine, delivery_id: int, at: datetime, error: str) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(notify_deliveries)
            .where(notify_deliveries.c.id == delivery_id)
            .values(
                attempts=notify_deliveries.c.attempts + 1, next_attempt=at, last_error=error[:1000]
            )
        )


def backoff(cfg: IncidentNotifyModel, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling from retry_initial."""
    wait: timedelta = cfg.retry_initial * (2 ** max(0, attempts - 1))
    return min(wait, cfg.retry_max)


def summary(engine: Engine) -> dict[str, dict[str, int]]:
    """Deliveries by channel and status (``monitor notify status``)."""
    d = notify_deliveries.c
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(d.channel, d.status, func.count()).group_by(d.channel, d.status))
        for channel, status, n in rows:
            out.setdefault(channel, {})[status] = int(n)
        waiting = conn.execute(
            select(func.count()).select_from(notify_outbox).where(notify_outbox.c.state == "new")
        ).scalar_one()
    out["outbox"] = {"new": int(waiting)}
    return out


def failures(engine: Engine, limit: int = 20) -> Sequence[tuple[int, str, str, int, str]]:
    """The latest failed deliveries: (id, channel, recipient, attempts, last error)."""
    d = notify_deliveries.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(d.id, d.channel, d.recipient, d.attempts, d.last_error)
            .where(d.status == "failed").order_by(d.id.desc()).limit(limit)
        ).all()  # fmt: skip
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def prune(engine: Engine, before: datetime) -> int:
    """Forget outbox rows made before ``before`` whose deliveries are all settled (none
    pending); returns how many. Their incidents stay, under their own retention."""
    d, o = notify_deliveries.c, notify_outbox.c
    busy = select(d.outbox_id).where(d.status == "pending")
    old = select(o.id).where(o.created_at < before, o.state == "planned", o.id.not_in(busy))
    with write_transaction(engine) as conn:
        ids = list(conn.execute(old.limit(10_000)).scalars())
        if not ids:
            return 0
        conn.execute(delete(notify_deliveries).where(d.outbox_id.in_(ids)))
        conn.execute(delete(notify_outbox).where(o.id.in_(ids)))
    return len(ids)

"""Notifications of urgent incidents, end to end through real servers: the outbox row written
with the incident, e-mail through aiosmtpd (STARTTLS + AUTH), the signed webhook, retries with
backoff, the rate limit, and a hanging webhook that never holds up the recorder."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from mailhooks import HOOK_SECRET, SMTP_PASSWORD, Hook, Mailbox, SmtpServer, free_port, start_smtp
from notifyharness import NAME, P1, P2, P3, T0, Clock, config, event, make_store, wait_for
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from monitor.incidents.recorder import Recorder
from monitor.incidents.store import IncidentFilter, open_store
from monitor.incidents.store.outboxschema import OutboxFilter, notify_deliveries, notify_outbox
from monitor.notify import webhook
from monitor.notify.worker import NotifyWorker


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("TEST_HOOK_SECRET", HOOK_SECRET)


def deliveries(store: object) -> list[tuple[str, str, str, int]]:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        d = notify_deliveries.c
        rows = conn.execute(
            select(d.channel, d.recipient, d.status, d.attempts).order_by(d.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def sent(reg: CollectorRegistry, channel: str, result: str) -> float:
    v = reg.get_sample_value("monitor_notifications_total", {"channel": channel, "result": result})
    return v or 0.0


def test_an_urgent_incident_mails_its_schools_counselors_once(
    tmp_path: Path, smtp_server: SmtpServer, store_url: str
) -> None:
    store = make_store(tmp_path, url=store_url)
    reg = CollectorRegistry()
    cfg = config(smtp_server.port, smtp_server.ca_file)
    worker = NotifyWorker(store, cfg, tmp_path, registry=reg, clock=Clock())
    store.write_batch([event(), event(person=P2, severity="low"), event(person=P3, school="ms"),
                       event(person=P2, school="es", platform="tor")])  # fmt: skip
    # the same incident again (same person, platform, rule, window): deduped
    store.write_batch([event(T0 + timedelta(minutes=5))])
    with store.engine.connect() as conn:
        assert sorted(conn.execute(select(notify_outbox.c.school)).scalars()) == [
            "es", "hs", "ms"
        ]  # fmt: skip
    worker.run_once()
    worker.run_once()  # nothing left to send: no second message
    got = sorted((env[1][0], env[2], env[3]) for env in smtp_server.mailbox.envelopes)
    # hs: couns.hs and couns.both (not the disabled account, not the ms-only counselor);
    # ms: couns.both and couns.ms. Every one over TLS, authenticated.
    assert got == [
        ("couns.both@district.example", True, "monitor"),
        ("couns.both@district.example", True, "monitor"),
        ("couns.hs@district.example", True, "monitor"),
        ("couns.ms@district.example", True, "monitor"),
    ]
    incident = store.list(IncidentFilter(school="hs"))[0]
    hs_mail = [
        m for m in smtp_server.mailbox.messages
        if m["To"] == "couns.hs@district.example"
    ]  # fmt: skip
    assert len(hs_mail) == 1
    msg = hs_mail[0]
    assert msg["From"] == "monitor@district.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    for text in (P1, "nordvpn", "bypass-student", "2026-12-07 09:30:00 UTC", "high",
                 f"https://review.district.example/incidents/{incident.id}"):  # fmt: skip
        assert text in body, text
    assert NAME not in msg.as_string() and "stu-" not in msg.as_string()
    assert sent(reg, "email", "sent") == 4
    assert sent(reg, "email", "no_counselor") == 1  # es has no counselor account: said, counted
    assert {s for _, _, s, _ in deliveries(store)} == {"sent"}
    store.close()


def test_a_refusing_smtp_server_is_a_clear_error_then_a_retry_with_backoff(
    tmp_path: Path, tls_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(tmp_path)
    reg = CollectorRegistry()
    clock = Clock()
    port = free_port()  # nothing listens there yet
    worker = NotifyWorker(
        store, config(port, tls_files[0], attempts=4), tmp_path, registry=reg, clock=clock
    )
    store.write_batch([event(school="ms")])  # couns.both and couns.ms
    worker.run_once()
    assert sent(reg, "email", "retry") == 2
    assert f"smtp server 127.0.0.1:{port} refused the connection" in caplog.text
    assert "retrying in 0:00:30" in caplog.text
    worker.run_once()  # not due yet: the backoff holds
    assert sent(reg, "email", "retry") == 2
    # a server that answers but refuses the recipients (451): the second attempt fails too
    mailbox = Mailbox(refuse="451 4.3.0 mailbox busy, try later")
    controller = start_smtp(port, tls_files, mailbox)
    try:
        clock.advance(timedelta(seconds=30))
        worker.run_once()
        assert sent(reg, "email", "retry") == 4
        assert "refused every recipient" in caplog.text and "(451)" in caplog.text
        assert "retrying in 0:01:00" in caplog.text  # doubled
        clock.advance(timedelta(seconds=59))
        worker.run_once()
        assert sent(reg, "email", "retry") == 4  # still waiting
        mailbox.refuse = ""
        clock.advance(timedelta(seconds=1))
        worker.run_once()
    finally:
        controller.stop()
    assert sent(reg, "email", "sent") == 2
    assert sorted(m["To"] for m in mailbox.messages) == [
        "couns.both@district.example", "couns.ms@district.example"
    ]  # fmt: skip
    assert [(s, a) for _, _, s, a in deliveries(store)] == [("sent", 3), ("sent", 3)]
    store.close()


def test_attempts_used_up_are_failed_and_counted_not_lost(tmp_path: Path,
                                                           tls_files: tuple[Path, Path],
                                                           caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    store = make_store(tmp_path)
    reg = CollectorRegistry()
    clock = Clock()
    worker = NotifyWorker(store, config(free_port(), tls_files[0], attempts=2), tmp_path,
                          registry=reg, clock=clock)  # fmt: skip
    store.write_batch([event(school="ms", person=P2)])
    worker.run_once()
    clock.advance(timedelta(minutes=1))
    worker.run_once()
    assert sent(reg, "email", "retry") == 2 and sent(reg, "email", "failed") == 2
    assert {(s, a) for _, _, s, a in deliveries(store)} == {("failed", 2)}
    assert "failed 2 times, giving up" in caplog.text
    store.close()


def test_the_rate_limit_holds_back_and_counts(
    tmp_path: Path, smtp_server: SmtpServer, store_url: str
) -> None:
    store = make_store(tmp_path, url=store_url)
    reg = CollectorRegistry()
    cfg = config(smtp_server.port, smtp_server.ca_file, rate_limit=2, rate_window="1h")
    clock = Clock()
    worker = NotifyWorker(store, cfg, tmp_path, registry=reg, clock=clock)
    store.write_batch([event(person=p, school="ms") for p in (P1, P2, P3)])  # three incidents
    worker.run_once()
    per = sorted((r, s) for _, r, s, _ in deliveries(store))
    assert per == [
        ("couns.both", "rate_limited"), ("couns.both", "sent"), ("couns.both", "sent"),
        ("couns.ms", "rate_limited"), ("couns.ms", "sent"), ("couns.ms", "sent"),
    ]  # fmt: skip
    assert len(smtp_server.mailbox.messages) == 4
    assert sent(reg, "email", "rate_limited") == 2
    # settled deliveries are forgotten after notify.incidents.keep (90 days); incidents stay
    clock.advance(timedelta(days=89))
    worker.run_once()
    assert len(deliveries(store)) == 6
    clock.advance(timedelta(days=2))
    worker.run_once()
    assert deliveries(store) == [] and store.count() == 3
    store.close()


def test_the_webhook_is_signed_and_carries_no_name(
    tmp_path: Path, hook_server: Hook, store_url: str
) -> None:
    store = make_store(tmp_path, url=store_url)
    reg = CollectorRegistry()
    worker = NotifyWorker(store, config(None, None, hook_server.url), tmp_path, registry=reg,
                          clock=Clock())  # fmt: skip
    store.write_batch([event()])
    worker.run_once()
    assert len(hook_server.requests) == 1
    headers, body = hook_server.requests[0]
    ts, sig = headers["X-Monitor-Timestamp"], headers["X-Monitor-Signature"]
    assert sig.startswith("sha256=")
    assert webhook.verify(HOOK_SECRET, ts, body, sig)
    assert not webhook.verify("another-secret", ts, body, sig)
    assert not webhook.verify(HOOK_SECRET, ts, body.replace(b"nordvpn", b"nordvpm"), sig)
    payload = hook_server.payloads()[0]
    inc = payload["incident"]
    assert (inc["person"], inc["platform"], inc["rule_id"], inc["school"]) == (
        P1, "nordvpn", "bypass-student", "hs"
    )  # fmt: skip
    assert inc["first_seen"] == "2026-12-07T09:30:00Z"
    assert inc["link"] == f"https://review.district.example/incidents/{inc['id']}"
    assert payload["counselors"] == ["couns.both", "couns.hs"]
    assert NAME not in body.decode()
    assert sent(reg, "webhook", "sent") == 1
    store.close()


def test_a_hanging_webhook_is_retried_and_never_holds_up_the_recorder(
    tmp_path: Path, hook_server: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'incidents.sqlite'}"
    make_store(tmp_path).close()  # the counselors' accounts
    recorder = Recorder(
        lambda: open_store(url, outbox=OutboxFilter(frozenset({"high"}))),
        spool_path=tmp_path / "spool.jsonl",
        journal_path=tmp_path / "journal.jsonl",
        flush_interval=0.01,
    )
    reader = open_store(url, create=False)
    reg = CollectorRegistry()
    worker = NotifyWorker(reader, config(None, None, hook_server.url), tmp_path, registry=reg,
                          poll=0.01)  # fmt: skip
    hook_server.hang = True
    try:
        assert recorder.submit(event(person=P1))
        wait_for(lambda: recorder.stats.written == 1, "the first incident to be written")
        worker.start()
        wait_for(hook_server.entered.is_set, "the webhook to be called")
        # The webhook holds its answer; the recorder goes on writing incidents meanwhile.
        assert recorder.submit(event(person=P2))
        wait_for(lambda: recorder.stats.written == 2, "the second incident to be written")
        assert not hook_server.release.is_set() and not hook_server.requests
        assert reader.count() == 2
        # The worker's client gave up after its timeout: counted, and a retry is scheduled.
        wait_for(lambda: sent(reg, "webhook", "retry") >= 1, "the timeout to be counted")
        assert "did not answer within 1 s" in caplog.text
        assert "retrying in 0:00:30" in caplog.text
        assert ("webhook", "", "pending", 1) in deliveries(reader)
    finally:
        hook_server.release.set()
        assert worker.stop()
        assert recorder.close()
        reader.close()
    assert recorder.stats.dropped == 0
    assert os.path.exists(tmp_path / "journal.jsonl")

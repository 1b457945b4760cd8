"""``monitor notify run|status|weekly|test-mail``: the notification worker, its state, the
weekly report by e-mail, and a test message to check the SMTP settings."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli._common import load_district
from monitor.district import District
from monitor.notify.config import NotifyModel

_CONFIG = click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The district configuration directory (its notify: section and store).",
)


def _notify(district: District) -> NotifyModel:
    cfg = district.settings.notify
    if cfg is None:
        raise click.ClickException(
            f"{district.config_dir / 'district.yaml'}: no notify: section (see README, "
            "Notifications)"
        )
    return cfg


def _open_store(district: District) -> Any:
    from monitor.incidents.store import open_store
    from monitor.incidents.store.migrations import upgrade

    upgrade(district.store_url)
    return open_store(district.store_url, create=False, window=district.policy.dedupe_window)


@click.group("notify")
def notify_group() -> None:
    """Notifications of urgent incidents, and the weekly report by e-mail."""


@notify_group.command("run")
@_CONFIG
@click.option("--once", is_flag=True, help="One pass (plan and send what is due), then exit.")
@click.option("--poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between passes.")  # fmt: skip
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0,
              help="Serve the metrics on 127.0.0.1:PORT/metrics (0: off).")  # fmt: skip
def run_cmd(config: str, once: bool, poll: float, metrics_port: int) -> None:
    """Send the notifications of new urgent incidents (e-mail to the counselors of the
    student's school, the district's webhook), retrying failures with backoff."""
    from prometheus_client import CollectorRegistry, start_http_server

    from monitor.notify.worker import NotifyWorker

    district = load_district(config)
    cfg = _notify(district)
    if cfg.incidents is None:
        raise click.ClickException("district.yaml: notify has no incidents section")
    store = _open_store(district)
    registry = CollectorRegistry()
    worker = NotifyWorker(store, cfg, district.config_dir, registry=registry, poll=poll)
    try:
        if once:
            click.echo(f"{worker.run_once()} deliveries tried")
            return
        if metrics_port:
            start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        worker.start()
        click.echo("monitor notify: running (SIGTERM to stop)", err=True)
        stop.wait()
        worker.stop()
    finally:
        store.close()


@notify_group.command("status")
@_CONFIG
def status_cmd(config: str) -> None:
    """Deliveries by channel and state, and the latest failures."""
    from monitor.notify import outbox

    district = load_district(config)
    store = _open_store(district)
    try:
        counts = outbox.summary(store.engine)
        failed = outbox.failures(store.engine)
    finally:
        store.close()
    click.echo(f"outbox: {counts.pop('outbox')['new']} incidents waiting to be planned")
    for channel, by in sorted(counts.items()):
        click.echo(f"{channel}: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
    for id_, channel, recipient, attempts, error in failed:
        click.echo(f"failed #{id_} {channel} {recipient or '(webhook)'} after {attempts}: {error}")


def _week(value: str | None) -> tuple[str, date, date]:
    """ISO week ``2026-W49`` (default: last week) → (label, Monday, Sunday)."""
    from monitor.reports import Period

    if value is None:
        p = Period.last_week(datetime.now(UTC).date())
        start, end = p.start, p.end
    else:
        try:
            year, _, num = value.upper().partition("-W")
            start = date.fromisocalendar(int(year), int(num), 1)
            end = date.fromisocalendar(int(year), int(num), 7)
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: write an ISO week such as 2026-W49", param_hint="--week"
            ) from None
    iso = start.isocalendar()
    return f"{iso.year}-W{iso.week:02d}", start, end


@notify_group.command("weekly")
@_CONFIG
@click.option("--week", help="ISO week, e.g. 2026-W49 (default: last Monday to Sunday).")
@click.option("--school", "schools", multiple=True,
              help="Only this school (a key of notify.weekly.recipients; repeatable).")  # fmt: skip
@click.option("--force", is_flag=True, help="Send again to schools that had this week already.")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="Attempts after a refused or unreachable SMTP server.")  # fmt: skip
@click.option("--retry-wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds before the first retry (doubling).")  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress display (stderr, terminal only).")
def weekly_cmd(config: str, week: str | None, schools: tuple[str, ...], force: bool,
               retries: int, retry_wait: float, quiet: bool) -> None:  # fmt: skip
    """E-mail the weekly report of each school to the addresses in notify.weekly."""
    from monitor.incidents.access import AccessLog, Actor
    from monitor.notify.weekly import WeeklyReport, deliver_weekly
    from monitor.reports import Period, build

    label, start, end = _week(week)
    district = load_district(config)
    cfg = _notify(district)
    if cfg.weekly is None:
        raise click.ClickException("district.yaml: notify has no weekly section")
    link_base = cfg.weekly.link_base
    store = _open_store(district)

    def make(school: str) -> WeeklyReport:
        scope = None if school == "*" else (school,)
        r = build(store, Period(start, end), scope, district=district, link_base=link_base)
        return WeeklyReport(r.title, r.to_html(), r.empty, tuple(r.students))

    try:
        outcomes = deliver_weekly(cfg, district.config_dir, district.state_dir, label, make,
                                  schools=schools or None, force=force, retries=retries,
                                  retry_wait=retry_wait, quiet=quiet)  # fmt: skip
        log = AccessLog(store.engine)
        for o in outcomes:
            if o.status == "sent" and o.students:
                log.record(
                    Actor("system", "system", "weekly report e-mail"),
                    "report_email",
                    subjects=o.students,
                    detail=f"weekly report {label} of {o.school} e-mailed to "
                    + ", ".join(o.addresses),
                    reason="weekly report",
                )
    finally:
        store.close()
    failed = 0
    for o in outcomes:
        click.echo(f"{o.school}: {o.status} ({', '.join(o.addresses)})"
                   + (f": {o.detail}" if o.detail else ""))  # fmt: skip
        failed += o.status == "failed"
    if failed:
        raise click.ClickException(f"{failed} weekly report(s) not sent (run again to retry)")


@notify_group.command("test-mail")
@_CONFIG
@click.option("--to", "to", required=True, help="The address to send a test message to.")
def test_mail_cmd(config: str, to: str) -> None:
    """Send one test message through notify.smtp (checks server, TLS and login)."""
    from monitor.notify import mail

    district = load_district(config)
    cfg = _notify(district)
    if cfg.smtp is None:
        raise click.ClickException("district.yaml: notify has no smtp section")
    msg = mail.new_message(cfg.smtp, [to], "[student monitor] test message",
                           "This is a test of the student monitor's mail settings.\n")  # fmt: skip
    try:
        mail.send(cfg.smtp, Path(district.config_dir), msg)
    except mail.DeliveryError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"sent to {to} through {cfg.smtp.host}:{cfg.smtp.port}")


def register(group: click.Group) -> None:
    group.add_command(notify_group)

"""Through the example district: the recorder writes the outbox row and the SIEM log line,
``monitor notify run --once`` mails the counselors, ``monitor incidents export`` gives the
JSON lines, and ``monitor notify weekly`` mails each school its report; nothing names a
student."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from mailhooks import SMTP_PASSWORD, SmtpServer
from notifyharness import FAST_HASHER, wait_for

from monitor.cli import main
from monitor.district import DistrictLoader, pseudonym_key
from monitor.flow.recording import open_recorder
from monitor.incidents.events import IncidentEvent, pseudonym
from monitor.incidents.store import open_store
from monitor.model import Person
from monitor.notify.eventlog import EXPORT_FIELDS, FIELDS
from monitor.web.accounts import Accounts

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "district"


def district_dir(tmp_path: Path, smtp: SmtpServer) -> Path:
    dest = tmp_path / "district"
    shutil.copytree(EXAMPLE, dest)
    yaml = dest / "district.yaml"
    text = re.sub(r"(?m)^state_dir:.*$", "state_dir: var", yaml.read_text())
    text = (
        text[: text.index("\nnotify:")]
        + f"""
notify:
  smtp:
    host: 127.0.0.1
    port: {smtp.port}
    security: starttls
    username: monitor
    password_env: TEST_SMTP_PASSWORD
    from: monitor@district.example
    ca_file: {smtp.ca_file}
  incidents:
    severities: [high]
    address_domain: district.example
    link: https://review.district.example/incidents/{{id}}
  weekly:
    link_base: https://review.district.example
    recipients:
      hs: [principal.hs@district.example]
      "*": [superintendent@district.example]
  event_log: {{path: log/incident-events.jsonl, max_bytes: 4096, backups: 2}}
"""
    )
    yaml.write_text(text)
    return dest


def student(loader: DistrictLoader, school: str) -> Person:
    d = loader.current
    assert d is not None
    return next(
        p for p in sorted(d.roster.people.values(), key=lambda p: p.sourced_id)
        if p.is_student and d.school_label(p.school) == school and p.birth_date
    )  # fmt: skip


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)


def test_an_incident_through_the_district_mails_logs_and_exports(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = district_dir(tmp_path, smtp_server)
    loader = DistrictLoader(config)
    district = loader.load()
    key = pseudonym_key(district)
    kid = student(loader, "hs")
    who = pseudonym(key, kid.sourced_id)
    now = datetime.now(UTC).replace(microsecond=0)
    recorder = open_recorder(district, key=key)
    events = [
        IncidentEvent(
            time=now - timedelta(minutes=i), person=who, school="hs", grade="10",
            age_band="teen", role="student", platform="nordvpn", activity="connect",
            action="block", rule_id="bypass-student", reason="VPN", host="nordvpn.com",
            source="proxy", severity="high",
        )
        for i in range(40)
    ]  # fmt: skip
    for ev in events:
        assert recorder.submit(ev)
    wait_for(lambda: recorder.stats.written == 40, "the events to be written")
    assert recorder.close()
    store = open_store(district.store_url, create=False)
    Accounts(store.engine, hasher=FAST_HASHER).add(
        "couns.hs", "long-enough-password", "counselor", schools=["hs"]
    )
    incident_ids = sorted(i.id for i in store.list())
    store.close()

    # the SIEM log: one line per event, rotated at 4 KiB into .1 and .2 (no more)
    log = config / "var" / "log" / "incident-events.jsonl"
    files = [log, log.with_name(log.name + ".1"), log.with_name(log.name + ".2")]
    assert all(f.exists() for f in files)
    assert not log.with_name(log.name + ".3").exists()
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert all(list(x) == list(FIELDS) for x in lines)
    assert {x["event_id"] for x in lines} <= {e.event_id for e in events}
    assert len(lines) < 40  # the oldest rotated out
    assert {(x["person"], x["rule_id"], x["severity"]) for x in lines} == {
        (who, "bypass-student", "high")
    }
    assert lines[-1]["ts"].endswith("Z")

    runner = CliRunner()
    r = runner.invoke(main, ["notify", "run", "--config", str(config), "--once"])
    assert r.exit_code == 0, r.output
    # one message per incident (40 minutes of events span several dedupe windows)
    mails = smtp_server.mailbox.messages
    assert len(mails) == len(incident_ids) >= 1
    assert {m["To"] for m in mails} == {"couns.hs@district.example"}
    assert sorted(int(m["X-Monitor-Incident"]) for m in mails) == incident_ids
    msg = mails[0]
    assert who in msg.get_content()
    r = runner.invoke(main, ["notify", "status", "--config", str(config)])
    assert r.exit_code == 0 and f"email: sent {len(mails)}" in r.output, r.output

    since = (now - timedelta(days=1)).date().isoformat()
    r = runner.invoke(main, ["incidents", "export", "--config", str(config), "--since", since])
    assert r.exit_code == 0, r.output
    exported = [json.loads(x) for x in r.output.splitlines()]
    assert sorted(x["id"] for x in exported) == incident_ids
    assert all(set(x) == {*EXPORT_FIELDS, "type"} for x in exported)
    assert sum(x["count"] for x in exported) == 40
    r = runner.invoke(main, ["incidents", "export", "--config", str(config), "--since", "1h",
                             "--until", "2h"])  # fmt: skip
    assert r.exit_code == 2 and "must be after --since" in r.output

    # no name and no birth date anywhere the SIEM or the counselor sees
    seen = "\n".join([r.output, msg.as_string(), *(f.read_text() for f in files)])
    for secret in (kid.given_name, kid.family_name, kid.sourced_id, str(kid.birth_date)):
        assert secret and secret not in seen, secret


def test_weekly_report_mails_each_school_once(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = district_dir(tmp_path, smtp_server)
    runner = CliRunner()
    args = ["notify", "weekly", "--config", str(config), "--week", "2026-W49"]
    r = runner.invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "hs: sent (principal.hs@district.example)" in r.output
    assert "*: sent (superintendent@district.example)" in r.output
    got = {m["To"]: m for m in smtp_server.mailbox.messages}
    assert set(got) == {"principal.hs@district.example", "superintendent@district.example"}
    msg = got["principal.hs@district.example"]
    assert "2026-11-30" in msg["Subject"] and "2026-12-06" in msg["Subject"]
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == "report-hs-2026-W49.html"
    html = part.get_content()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "Nothing was recorded" in msg.get_body(("plain",)).get_content()
    assert all(env[2] and env[3] == "monitor" for env in smtp_server.mailbox.envelopes)
    # the timer fires again: nothing is sent twice
    r = runner.invoke(main, args)
    assert r.exit_code == 0 and r.output.count("already sent") == 2, r.output
    assert len(smtp_server.mailbox.messages) == 2


def test_weekly_report_with_a_refusing_server_retries_then_fails_clearly(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = district_dir(tmp_path, smtp_server)
    smtp_server.mailbox.refuse = "550 5.7.1 relaying denied"
    r = CliRunner().invoke(
        main,
        ["notify", "weekly", "--config", str(config), "--week", "2026-W49", "--school", "hs",
         "--retries", "2", "--retry-wait", "0"],
    )  # fmt: skip
    assert r.exit_code == 1
    assert (
        f"hs: failed (principal.hs@district.example): smtp server 127.0.0.1:{smtp_server.port}"
        in r.output
    )
    assert "refused every recipient: principal.hs@district.example (550)" in r.output
    assert "1 weekly report(s) not sent (run again to retry)" in r.output
    assert not (config / "var" / "weekly-sent.json").exists()
    r = CliRunner().invoke(main, ["notify", "weekly", "--config", str(config), "--week", "W49"])
    assert r.exit_code == 2 and "write an ISO week such as 2026-W49" in r.output
    assert date(2026, 11, 30).isocalendar().week == 49


# monitor.reports draws a legend with no labelled series when a school has incidents but no
# activity counts; matplotlib warns (told to helper "reports"). Not this test's concern.
def test_weekly_report_names_students_in_the_record_of_access(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    from monitor.incidents.access import AccessLog

    config = district_dir(tmp_path, smtp_server)
    loader = DistrictLoader(config)
    district = loader.load()
    key = pseudonym_key(district)
    who = pseudonym(key, student(loader, "hs").sourced_id)
    store = open_store(district.store_url)
    store.write_batch([
        IncidentEvent(
            time=datetime(2026, 12, 2, 15, i, tzinfo=UTC), person=who, school="hs", grade="10",
            age_band="teen", role="student", platform="nordvpn", activity="connect",
            action="block", rule_id="bypass-student", reason="VPN", host="nordvpn.com",
            source="proxy", severity="high",
        )
        for i in range(3)
    ])  # fmt: skip
    store.close()
    r = CliRunner().invoke(
        main, ["notify", "weekly", "--config", str(config), "--week", "2026-W49", "--school", "hs"]
    )
    assert r.exit_code == 0, r.output
    [msg] = smtp_server.mailbox.messages
    assert "Nothing was recorded" not in msg.get_body(("plain",)).get_content()
    [part] = list(msg.iter_attachments())
    assert who in part.get_content()
    store = open_store(district.store_url, create=False)
    [rec] = AccessLog(store.engine).for_person(who)
    store.close()
    assert (rec.account, rec.action) == ("system", "report_email")
    assert "principal.hs@district.example" in rec.detail


def test_notify_run_serves_its_counter_and_stops_on_sigterm(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from mailhooks import free_port

    config = district_dir(tmp_path, smtp_server)
    loader = DistrictLoader(config)
    district = loader.load()
    key = pseudonym_key(district)
    store = open_store(district.store_url)
    Accounts(store.engine, hasher=FAST_HASHER).add(
        "couns.hs", "long-enough-password", "counselor", schools=["hs"]
    )
    store.close()
    port = free_port()
    env = {**os.environ, "TEST_SMTP_PASSWORD": SMTP_PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "notify", "run", "--config", str(config),
         "--poll", "0.2", "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        # the proxy records an urgent incident while the worker runs
        recorder = open_recorder(district, key=key)
        who = pseudonym(key, student(loader, "hs").sourced_id)
        assert recorder.submit(
            IncidentEvent(
                time=datetime.now(UTC), person=who, school="hs", grade="10", age_band="teen",
                role="student", platform="nordvpn", activity="connect", action="block",
                rule_id="bypass-student", reason="VPN", host="nordvpn.com", source="proxy",
                severity="high",
            )
        )  # fmt: skip
        assert recorder.close()
        wait_for(smtp_server.mailbox.received.is_set, "the worker to send the e-mail")

        def scrape() -> str:
            r = subprocess.run(
                ["curl", "-fsS", "--noproxy", "*", f"http://127.0.0.1:{port}/metrics"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            return r.stdout

        wait_for(
            lambda: 'monitor_notifications_total{channel="email",result="sent"} 1.0' in scrape(),
            "the counter to show the e-mail",
        )
        assert 'monitor_notifications_total{channel="webhook",result="failed"} 0.0' in scrape()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        out, err = proc.communicate()
    assert "running" in err
    assert smtp_server.mailbox.messages[0]["To"] == "couns.hs@district.example"

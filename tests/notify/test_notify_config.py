"""district.yaml's notify: section: a wrong one is rejected whole, naming file, line and field;
secrets come from the environment or a file, and a missing one is said clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from mailhooks import SMTP_PASSWORD, SmtpServer

from monitor.district import read_settings
from monitor.notify import mail
from monitor.notify.config import NotifyModel
from monitor.notify.mail import DeliveryError
from monitor.yamlfile import ConfigError

SMTP = """\
  smtp:
    host: smtp.district.example
    username: monitor
    password_env: SMTP_PW
    from: monitor@district.example
"""


def settings(tmp_path: Path, notify: str) -> Path:
    (tmp_path / "district.yaml").write_text("roster: roster\nstate_dir: var\nnotify:\n" + notify)
    return tmp_path


@pytest.mark.parametrize(
    ("notify", "line", "field", "message"),
    [
        ("  incidents: {severities: [high]}\n", 3, "notify", "email is on but there is no smtp"),
        (SMTP + "    pasword_env: X\n", 9, "notify.smtp.pasword_env", "unknown key"),
        (SMTP + "  incidents: {retry_initial: 30 sec}\n", 9,
         "notify.incidents.retry_initial", "not a duration"),
        (SMTP + "  incidents: {severities: [urgent]}\n", 9, "notify.incidents.severities[0]", ""),
        (SMTP + "  incidents: {link: 'https://review.example/incidents'}\n", 9,
         "notify.incidents", "link must contain {id}"),
        (SMTP + "  weekly: {recipients: {hs: [principal-at-example]}}\n", 9,
         "notify.weekly.recipients.hs[0]", "is not an e-mail address"),
        (SMTP + "  weekly: {recipients: {hs: []}}\n", 9, "notify.weekly", "'hs' has no address"),
        ("  smtp: {host: h, security: none, username: u, password_env: P, from: a@b.example}\n",
         4, "notify.smtp", "username given with security: none"),
        ("  smtp: {host: h, username: u, from: a@b.example}\n", 4, "notify.smtp",
         "without password_env or password_file"),
        ("  webhook: {url: 'https://hooks.example/x'}\n", 4, "notify.webhook",
         "needs password_env or password_file"),
        ("  webhook: {url: 'ftp://hooks.example/x', password_env: S}\n", 4,
         "notify.webhook.url", "should match pattern"),
        ("  incidents: {email: false}\n", 3, "notify", "neither email nor a webhook"),
        ("  weekly: {recipients: {hs: [a@b.example]}}\n", 3, "notify", "no smtp section"),
    ],
)  # fmt: skip
def test_a_wrong_notify_section_names_file_line_and_field(
    tmp_path: Path, notify: str, line: int, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as e:
        read_settings(settings(tmp_path, notify))
    text = str(e.value)
    assert text.startswith(f"{tmp_path / 'district.yaml'}:"), text
    assert f"field '{field}'" in text, text
    assert message in text, text
    assert e.value.line == line, text


def test_a_good_section_loads_with_its_defaults(tmp_path: Path) -> None:
    s, _ = read_settings(settings(tmp_path, SMTP + "  incidents: {rules: [bypass-student]}\n"))
    assert s.notify is not None and s.notify.smtp is not None and s.notify.incidents is not None
    assert (s.notify.smtp.port, s.notify.smtp.security) == (587, "starttls")
    f = s.notify.outbox_filter()
    assert f is not None and f.severities == {"high"} and f.rules == {"bypass-student"}
    assert s.notify.incidents.retry_initial.total_seconds() == 30


def test_secrets_come_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = NotifyModel.model_validate(
        {"smtp": {"host": "h", "username": "u", "password_file": "pw", "from": "a@b.example"}}
    )
    assert cfg.smtp is not None
    with pytest.raises(ValueError, match=r"smtp: cannot read .*pw: No such file"):
        cfg.smtp.secret(tmp_path, "smtp")
    (tmp_path / "pw").write_text("file-secret\n")
    assert cfg.smtp.secret(tmp_path, "smtp") == "file-secret"
    env = NotifyModel.model_validate(
        {"smtp": {"host": "h", "username": "u", "password_env": "NOPE_PW", "from": "a@b.example"}}
    )
    assert env.smtp is not None
    monkeypatch.delenv("NOPE_PW", raising=False)
    with pytest.raises(DeliveryError, match="smtp: environment variable NOPE_PW is not set"):
        mail.send(env.smtp, tmp_path, mail.new_message(env.smtp, ["x@b.example"], "s", "t"))


def test_a_wrong_smtp_password_is_refused_clearly(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", SMTP_PASSWORD + "-wrong")
    cfg = NotifyModel.model_validate(
        {"smtp": {"host": "127.0.0.1", "port": smtp_server.port, "username": "monitor",
                  "password_env": "PW", "from": "a@b.example",
                  "ca_file": str(smtp_server.ca_file)}}
    )  # fmt: skip
    assert cfg.smtp is not None
    msg = mail.new_message(cfg.smtp, ["x@b.example"], "s", "t")
    with pytest.raises(DeliveryError, match=r"refused the login of 'monitor': 535"):
        mail.send(cfg.smtp, tmp_path, msg)
    # and a certificate the client does not trust is a TLS failure, not a silent downgrade
    untrusting = cfg.smtp.model_copy(update={"ca_file": ""})
    monkeypatch.setenv("PW", SMTP_PASSWORD)
    with pytest.raises(DeliveryError, match=r"TLS failed: CERTIFICATE_VERIFY_FAILED"):
        mail.send(untrusting, tmp_path, msg)
    assert smtp_server.mailbox.messages == []

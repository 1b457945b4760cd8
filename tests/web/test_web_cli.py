"""``monitor users …``, ``monitor incidents purge`` and ``monitor review``'s option parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from reviewharness import copy_district

from monitor.cli import main
from monitor.cli.review import is_loopback, parse_listen
from monitor.incidents.access import AccessLog
from monitor.incidents.events import IncidentEvent
from monitor.incidents.store import open_store
from monitor.web.accounts import Accounts


@pytest.fixture
def config(tmp_path: Path) -> str:
    return str(copy_district(tmp_path / "district"))


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


def test_users_add_list_disable_enable_password(config: str) -> None:
    r = run("users", "add", "pat.counselor", "--role", "counselor", "--school", "hs",
            "--school", "ms", "--position", "School counselor", "--password-stdin",
            "--config", config, input="a long enough password\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.output == "added pat.counselor (counselor)\n"
    r = run("users", "add", "audit", "--role", "auditor", "--password-stdin", "--config", config,
            input="another long password\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    listing = run("users", "list", "--config", config).output.splitlines()
    assert listing[0].split() == ["audit", "auditor", "-", "active"]
    assert listing[1].split() == [
        "pat.counselor",
        "counselor",
        "hs,ms",
        "active",
        "School",
        "counselor",
    ]
    assert "password" not in "".join(listing) and "argon2" not in "".join(listing)
    assert run("users", "disable", "pat.counselor", "--config", config).exit_code == 0
    assert "disabled" in run("users", "list", "--config", config).output.splitlines()[1]
    assert run("users", "enable", "pat.counselor", "--config", config).exit_code == 0
    r = run("users", "password", "pat.counselor", "--password-stdin", "--config", config,
            input="a brand new password\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    url = f"sqlite:///{Path(config) / 'var' / 'incidents.sqlite'}"
    store = open_store(url, create=False)
    accounts = Accounts(store.engine)
    assert accounts.authenticate("pat.counselor", "a brand new password") is not None
    assert accounts.authenticate("pat.counselor", "a long enough password") is None
    store.close()


def test_users_prompt_for_the_password_twice(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.sqlite'}"
    r = run("users", "add", "a", "--role", "auditor", "--db", db,
            input="a long enough password\na long enough password\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "a long enough password" not in r.output  # hidden input


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--role", "counselor", "--school", "xs"],
            "a long enough password\n",
            "xs: not a school of the roster",
        ),
        (
            ["--role", "counselor"],
            "a long enough password\n",
            "a counselor needs at least one school",
        ),
        (["--role", "auditor"], "short\n", "at least 12 characters"),
        (["--role", "janitor"], "a long enough password\n", "Invalid value for '--role'"),
    ],
)
def test_users_add_refuses_bad_values(
    config: str, args: list[str], stdin: str, message: str
) -> None:
    r = run("users", "add", "x", *args, "--password-stdin", "--config", config, input=stdin)
    assert r.exit_code != 0 and message in r.output


def test_users_errors(config: str) -> None:
    assert "no account 'ghost'" in run("users", "disable", "ghost", "--config", config).output
    run("users", "add", "a", "--role", "auditor", "--password-stdin", "--config", config,
        input="a long enough password\n")  # fmt: skip
    r = run("users", "add", "a", "--role", "auditor", "--password-stdin", "--config", config,
            input="a long enough password\n")  # fmt: skip
    assert r.exit_code == 1 and "exists already" in r.output


def _event(t: datetime, person: str) -> IncidentEvent:
    return IncidentEvent(time=t, person=person, school="hs", grade="9", age_band="teen",
                         role="student", platform="tiktok", activity="view", action="block",
                         rule_id="r", reason="r", host="www.tiktok.com", source="proxy",
                         severity="low")  # fmt: skip


def test_incidents_purge(config: str) -> None:
    (Path(config) / "retention.yaml").write_text("retention:\n  incidents: 30d\n  access_log: 1y\n")
    url = f"sqlite:///{Path(config) / 'var' / 'incidents.sqlite'}"
    now = datetime.now(UTC)
    (Path(config) / "var").mkdir()  # the proxy makes its state directory
    store = open_store(url)
    store.write_batch([_event(now - timedelta(days=40), "p-00000000000000a1"),
                       _event(now - timedelta(days=41), "p-00000000000000b2"),
                       _event(now - timedelta(days=5), "p-00000000000000a1")])  # fmt: skip
    store.close()
    r = run("incidents", "purge", "--config", config, "--dry-run")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("would delete 2 incidents of 2 students")
    assert "(retention: incidents 30d, access records 1y)" in r.output
    r = run("incidents", "purge", "--config", config)
    assert r.exit_code == 0 and r.output.startswith("deleted 2 incidents of 2 students"), r.output
    store = open_store(url, create=False)
    assert store.count() == 1
    (rec,) = AccessLog(store.engine).list()
    assert (rec.action, rec.role, rec.position) == ("purge", "system", "monitor incidents purge")
    assert rec.account.endswith("@cli")
    store.close()
    # options override the file; a nonsense period is refused
    r = run("incidents", "purge", "--config", config, "--incidents", "1d", "--dry-run")
    assert r.output.startswith("would delete 1 incidents of 1 students"), r.output
    r = run("incidents", "purge", "--config", config, "--incidents", "soon")
    assert r.exit_code == 2 and "'soon' is not a period" in r.output
    r = run("incidents", "purge", "--config", config, "--incidents", "2y")
    assert r.exit_code == 1 and "access_log must be kept at least as long" in r.output


@pytest.mark.parametrize(
    ("listen", "expected", "loopback"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000), True),
        ("[::1]:8443", ("::1", 8443), True),
        ("localhost:80", ("localhost", 80), True),
        ("0.0.0.0:8000", ("0.0.0.0", 8000), False),
        ("10.1.2.3:9000", ("10.1.2.3", 9000), False),
    ],
)
def test_listen_addresses(listen: str, expected: tuple[str, int], loopback: bool) -> None:
    assert parse_listen(listen) == expected
    assert is_loopback(expected[0]) is loopback


@pytest.mark.parametrize("bad", ["8000", "host:", "host:99999", "host:x"])
def test_bad_listen_address(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_listen(bad)


@pytest.mark.parametrize("bad", ["*", "proxy.example", "10.0.0.0/33", "10.0.0.5,,junk"])
def test_review_refuses_a_proxy_that_is_no_address(config: str, bad: str) -> None:
    # (a store URL no driver serves: should the option be taken, nothing would be served)
    r = run("review", "--config", config, "--db", "nosuchdialect://x", "--forwarded-allow-ips", bad)
    assert r.exit_code == 2, r.output
    assert "is not a proxy address or network (such as 10.0.0.5 or 10.0.0.0/24)" in r.output

"""deploy/postgresql/ on a real PostgreSQL: setup.sql as the superuser, the migrations as the
owner, grants.sql as the owner; then each role through the monitor's own code (a real mitmdump
writing as monitor_writer, the review commands as monitor_review), and what each must not do
(DROP, TRUNCATE, ALTER, DELETE, another role's tables) refused by the database."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pg
import psycopg
import pytest
from proxyharness import curl, start_world

from monitor.incidents.events import IncidentEvent
from monitor.incidents.store import metadata, open_store
from monitor.incidents.store.overrides import SqlOverrideRecords

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "deploy" / "postgresql" / "setup.sql"
GRANTS = ROOT / "deploy" / "postgresql" / "grants.sql"
MONITOR = str(Path(sys.executable).with_name("monitor"))
ROLES = ("monitor_owner", "monitor_writer", "monitor_review", "monitor_report")


@dataclass
class Deployed:
    cluster: pg.Cluster
    superuser: str  # libpq URL
    passwords: dict[str, str]

    def libpq(self, role: str) -> str:
        c = self.cluster
        return f"postgresql://{role}:{self.passwords[role]}@127.0.0.1:{c.port}/student_monitor"

    def url(self, role: str) -> str:
        return self.libpq(role).replace("postgresql://", "postgresql+psycopg://", 1)


def psql(bindir: Path, conninfo: str, script: Path) -> subprocess.CompletedProcess[str]:
    psql_bin = bindir / "psql" if (bindir / "psql").exists() else shutil.which("psql")
    return subprocess.run(
        [str(psql_bin), conninfo, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def refused(conninfo: str, sql: str) -> str:
    """The error PostgreSQL gives ``sql`` run as that role ('' if it succeeded: a failure).
    Read-only sessions (monitor_report's default) are switched off first, as any client may:
    the privileges must refuse on their own."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(sql)
    except psycopg.Error as e:
        return f"{type(e).__name__}: {e}"
    return ""


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MONITOR, *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    bindir = pg.find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries")
    with pg.running_cluster(bindir) as cluster:
        superuser = cluster.url.replace("postgresql+psycopg://", "postgresql://", 1)
        for _ in range(2):  # run twice: the second run must change nothing and fail nothing
            r = psql(bindir, superuser, SETUP)
            assert r.returncode == 0, r.stderr
        passwords = {role: f"pw-{role}-{i}" for i, role in enumerate(ROLES)}
        with psycopg.connect(superuser, autocommit=True) as conn:
            for role, pw in passwords.items():
                conn.execute(f"ALTER ROLE {role} PASSWORD '{pw}'")
        d = Deployed(cluster, superuser, passwords)
        # migrate as the owner, as deploy/README.md says
        r = cli("users", "list", "--db", d.url("monitor_owner"))
        assert r.returncode == 0, r.stdout + r.stderr
        for _ in range(2):
            r = psql(bindir, d.libpq("monitor_owner"), GRANTS)
            assert r.returncode == 0, r.stderr
        yield d


def test_every_table_has_its_grants_decided(deployed: Deployed) -> None:
    with psycopg.connect(deployed.libpq("monitor_owner")) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        owners = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables "
                                             "WHERE schemaname = 'public'").fetchall()}  # fmt: skip
    assert set(metadata.tables) <= tables  # the migrations made every table the code knows
    assert owners == {"monitor_owner"}
    text = GRANTS.read_text()
    undecided = sorted(t for t in tables - {"alembic_version"} if not re.search(rf"\b{t}\b", text))
    assert not undecided, f"add these tables to {GRANTS.name}: {undecided}"


def test_public_cannot_connect_and_nobody_else_creates(deployed: Deployed) -> None:
    with psycopg.connect(deployed.superuser, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS stranger")
        conn.execute("CREATE ROLE stranger LOGIN PASSWORD 'x'")
    c = deployed.cluster
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(f"postgresql://stranger:x@127.0.0.1:{c.port}/student_monitor").close()
    for role in ("monitor_writer", "monitor_review", "monitor_report"):
        why = refused(deployed.libpq(role), "CREATE TABLE sneaky (x int)")
        assert "InsufficientPrivilege" in why, (role, why)
        why = refused(deployed.libpq(role), "CREATE TEMP TABLE sneaky (x int)")
        assert "InsufficientPrivilege" in why, (role, why)


def _event(n: int) -> IncidentEvent:
    return IncidentEvent(
        time=datetime.now(UTC),
        person=f"p-{n:016x}",
        school="ms",
        grade="6",
        age_band="under13",
        role="student",
        platform="tiktok",
        activity="view",
        action="block",
        rule_id="synthetic-test",
        reason="synthetic",
        host="www.tiktok.com",
        source="proxy",
        severity="medium",
    )


def test_writer_cannot_drop_truncate_alter_or_read_accounts(deployed: Deployed) -> None:
    w = deployed.libpq("monitor_writer")
    for sql in (
        "DROP TABLE incidents",
        "TRUNCATE incidents",
        "TRUNCATE applied_events",
        "ALTER TABLE incidents ADD COLUMN x int",
        "DELETE FROM incidents",
        "UPDATE incidents SET status = 'resolved'",
        "UPDATE incidents SET notes = 'x'",
        "SELECT * FROM accounts",
        "SELECT * FROM sessions",
        "SELECT * FROM access_log",
        "INSERT INTO access_log (at, account, role, action) VALUES (now(), 'x', 'x', 'x')",
        "INSERT INTO overrides (id) VALUES ('x')",
        "UPDATE store_settings SET value = 'other key'",
        "DELETE FROM store_settings",
        "DROP TABLE alembic_version",
        "CREATE INDEX ON incidents (host)",
    ):
        why = refused(w, sql)
        assert "InsufficientPrivilege" in why or "must be owner" in why, (sql, why)


def test_a_real_worker_writes_as_monitor_writer(deployed: Deployed, tmp_path: Path) -> None:
    world = start_world(tmp_path, {"monitor_store": deployed.url("monitor_writer")})
    try:
        r = curl(world.proxy, "https://www.tiktok.com/login", client="127.0.0.11",
                 cacert=[world.proxy.confdir / "mitmproxy-ca-cert.pem"],
                 headers={"Accept": "text/html"})  # fmt: skip
        assert r.status == 403  # a login for an under-13: blocked, with an incident
        deadline = time.monotonic() + 20
        found = 0
        while not found and time.monotonic() < deadline:
            with psycopg.connect(deployed.libpq("monitor_report")) as conn:
                found = conn.execute(
                    "SELECT count(*) FROM incidents WHERE host = 'www.tiktok.com' "
                    "AND rule_id <> 'synthetic-test'"
                ).fetchone()[0]  # type: ignore[index]
            time.sleep(0.2)
        assert found >= 1
    finally:
        log = world.stop()
    assert "permission denied" not in log, log
    with psycopg.connect(deployed.libpq("monitor_report")) as conn:
        days = conn.execute("SELECT count(*) FROM daily_activity").fetchone()[0]  # type: ignore[index]
    assert days >= 1  # the activity counts, flushed at stop, as the writer


def test_writer_records_through_the_store_code(deployed: Deployed) -> None:
    """After the worker (which claimed the district's key): the store code as the writer
    role, with that key's fingerprint (a claim is an INSERT … ON CONFLICT, always checked)."""
    url = deployed.url("monitor_writer")
    with psycopg.connect(deployed.libpq("monitor_owner")) as conn:
        row = conn.execute("SELECT value FROM store_settings").fetchone()
    assert row is not None
    store = open_store(url, key_fingerprint=row[0], key_source="test")
    try:
        events = [_event(i) for i in range(5)]
        assert store.write_batch(events) == 5
        assert store.write_batch(events) == 0  # each event id applied once
        assert store.prune_applied(datetime(2000, 1, 1, tzinfo=UTC)) == 0  # DELETE allowed
    finally:
        store.close()
    records = SqlOverrideRecords(url)  # every worker reads teacher overrides
    try:
        assert records.version() >= 0
    finally:
        records.close()


def test_review_role_through_the_commands(deployed: Deployed) -> None:
    url = deployed.url("monitor_review")
    r = cli("users", "add", "jdoe", "--role", "counselor", "--school", "ms",
            "--position", "School counselor", "--db", url, "--password-stdin",
            stdin="a long synthetic password 42\n")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    store = open_store(url, create=False)
    try:
        (first, *_) = store.list(limit=1)
        updated = store.update(first.id, status="acknowledged", notes="seen")
        assert updated is not None and updated.status == "acknowledged"
    finally:
        store.close()
    r = cli("incidents", "purge", "--db", url, "--incidents", "1d", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    rv = deployed.libpq("monitor_review")
    for sql in (
        "DROP TABLE incidents",
        "TRUNCATE access_log",
        "UPDATE access_log SET reason = 'rewritten'",  # the record of access is never changed
        "UPDATE incidents SET count = 1000",
        "INSERT INTO incidents (dedupe_key) VALUES ('x')",
        "DELETE FROM overrides",
        "UPDATE store_settings SET value = 'other key'",
        "ALTER TABLE accounts ADD COLUMN x int",
    ):
        why = refused(rv, sql)
        assert "InsufficientPrivilege" in why or "must be owner" in why, (sql, why)


def test_report_role_reads_only(deployed: Deployed) -> None:
    rp = deployed.libpq("monitor_report")
    with psycopg.connect(rp) as conn:
        assert conn.execute("SELECT count(*) FROM incidents").fetchone() is not None
    for sql in ("SELECT * FROM accounts", "SELECT * FROM access_log", "DELETE FROM incidents",
                "INSERT INTO daily_activity (day) VALUES (now())"):  # fmt: skip
        why = refused(rp, sql)
        assert "InsufficientPrivilege" in why, (sql, why)
    with psycopg.connect(rp, autocommit=True) as conn:  # and read-only by default
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE t (x int)")

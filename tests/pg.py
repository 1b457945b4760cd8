"""A throwaway PostgreSQL for tests: ``pg_dsn`` yields a SQLAlchemy URL, or skips.

Order: the DSN in ``MONITOR_TEST_PG_DSN`` if set; else a cluster started from the PostgreSQL
binaries in /usr/lib/postgresql/*/bin (or on PATH) in a temporary directory, listening on a free
port on 127.0.0.1 only, removed afterwards; else the test is skipped. As root, the cluster runs
as the ``postgres`` user (initdb refuses root).

Use it from a test module with ``import pg`` and ``pg_dsn = pg.pg_dsn``; ``pg_cluster`` gives a
test a cluster of its own that it can stop and start (an outage). Or run this file directly
(``python tests/pg.py``) to start a cluster by hand and print its DSN.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ENV_DSN = "MONITOR_TEST_PG_DSN"


def find_bindir() -> Path | None:
    """Directory holding initdb and pg_ctl (newest installed version first)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for d in candidates:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A throwaway cluster in a temporary directory; ``url`` stays valid across stop/start."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.owner: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no 'postgres' user for initdb")
            self.owner = "postgres"
        self.base = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        self.data, self.log = self.base / "data", self.base / "log"
        self.port = _free_port()
        password = secrets.token_hex(12)
        pwfile = self.base / "pw"
        pwfile.write_text(password + "\n")
        if self.owner:
            info = pwd.getpwnam(self.owner)
            for p in (self.base, pwfile):
                os.chown(p, info.pw_uid, info.pw_gid)
        self.url = f"postgresql+psycopg://monitor:{password}@127.0.0.1:{self.port}/postgres"
        try:
            self._run("initdb", "-D", str(self.data), "-U", "monitor", f"--pwfile={pwfile}",
                      "--auth=scram-sha-256", "-E", "UTF8", "--locale=C")  # fmt: skip
        except BaseException:
            self.destroy()
            raise

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.owner:
            cmd = ["runuser", "-u", self.owner, "--", *cmd]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"PostgreSQL {tool} failed: {e.stderr or e.stdout}") from e

    def start(self) -> None:
        # Throwaway data: fsync off keeps the tests fast; the unix socket lives in our dir.
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.base} -c fsync=off -c max_connections=50"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                  "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except RuntimeError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def running_cluster(bindir: Path) -> Iterator[Cluster]:
    """Start a fresh cluster, yield it (``.url``, ``.stop()``, ``.start()``), then delete it."""
    cluster = Cluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL URL for tests (see module docstring), or skip."""
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        yield dsn
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(f"no PostgreSQL: set {ENV_DSN} or install postgresql")
    with running_cluster(bindir) as cluster:
        yield cluster.url


@pytest.fixture
def pg_cluster() -> Iterator[Cluster]:
    """A cluster of the test's own, which the test may stop and start; skips without
    PostgreSQL binaries (a DSN from the environment cannot be stopped)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries to start a cluster of our own")
    with running_cluster(bindir) as cluster:
        yield cluster


if __name__ == "__main__":
    found = find_bindir()
    if found is None:
        raise SystemExit("no PostgreSQL binaries found")
    with running_cluster(found) as c:
        print(c.url, flush=True)
        try:
            input("running; press Enter to stop ")
        except EOFError:
            pass


@contextmanager
def new_database(pg_dsn: str, prefix: str) -> Iterator[str]:
    """A new, empty database named ``prefix_<random>`` on the test cluster, dropped afterwards
    (with any connections left open to it); yields its URL."""
    from sqlalchemy import create_engine, text

    from monitor.incidents.store.sql import normalise_url

    dsn = normalise_url(pg_dsn)
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(dsn, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield dsn.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Iterator[str]:
    """For a fixture parametrised ``["sqlite", "postgresql"]``: a new SQLite file, or a new
    database on the test cluster (``pg_dsn``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    with new_database(request.getfixturevalue("pg_dsn"), prefix) as url:
        yield url

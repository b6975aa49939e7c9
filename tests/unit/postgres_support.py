"""A throwaway PostgreSQL cluster on loopback for tests: initdb + pg_ctl in a temp dir, as a non-root user.

`RAGCLI_TEST_PG_DSN` points the tests at an existing server instead (a database each test can create databases
in). Without it, the Debian binaries (`apt-get install postgresql`) are found under /usr/lib/postgresql/*/bin
and a cluster is started once per test session on a free port; tests skip with the reason when neither is there.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DSN_ENV = "RAGCLI_TEST_PG_DSN"


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs and (Path(dirs[-1]) / "initdb").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the `postgres` user (Debian's) when we are root."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]


class LocalCluster:
    """A PostgreSQL cluster in a temp dir, listening on 127.0.0.1 only, trust auth for user `ragcli`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="ragcli-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o755)

    def start(self) -> None:
        subprocess.run(
            _as_user(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "ragcli",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        subprocess.run(
            _as_user(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://ragcli@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            _as_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


def start_local_cluster(env: str) -> LocalCluster:
    """A started throwaway cluster with its admin DSN exported as `env` (for the benchmarks); exits with the fix
    when the PostgreSQL binaries are missing. Stop it with `.stop()`."""
    import sys

    bindir = _bindir()
    if bindir is None:
        sys.exit("PostgreSQL binaries not found: apt-get install postgresql")
    cluster = LocalCluster(bindir)
    cluster.start()
    os.environ[env] = cluster.admin_dsn
    return cluster


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """A DSN to a server where tests may create databases."""
    given = os.environ.get(DSN_ENV, "").strip()
    if given:
        yield given
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'ragcli[postgres]')")
    bindir = _bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL binaries not found (apt-get install postgresql), and {DSN_ENV} is not set")
    cluster = LocalCluster(bindir)
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        cluster.stop()
        pytest.skip(
            f"could not start a local PostgreSQL cluster: {exc.stderr.decode(errors='replace')[-300:]}"
        )
    yield cluster.admin_dsn
    cluster.stop()


@pytest.fixture
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = pg_admin_dsn.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

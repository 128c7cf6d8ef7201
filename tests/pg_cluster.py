"""A throwaway PostgreSQL cluster for the storage tests, from Debian's ``postgresql`` package.

``initdb`` and ``pg_ctl`` run in a temporary directory with the server's unix socket there and no TCP
listener; as root they run as the ``postgres`` user (``runuser``), which PostgreSQL requires.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

#: Tables the stores create; dropped between tests so every test starts from an empty database.
STORE_TABLES = (
    "accounts", "nicks", "channels", "channel_access", "channel_bans", "messages",
    "owner_metadata", "read_markers", "schema_migrations", "migration_probe",
)


def find_bindir() -> str | None:
    """The directory of the newest installed PostgreSQL's ``initdb`` and ``pg_ctl``."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    if candidates:
        return os.path.dirname(candidates[-1])
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


class PostgresCluster:
    """One cluster in a temp dir: ``start()``, ``url``, ``stop()``."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.as_postgres = os.geteuid() == 0
        # As root, in /tmp: the postgres user must reach the directory (TMPDIR may be private).
        self.root = tempfile.mkdtemp(prefix="twistedchat-pg-", dir="/tmp" if self.as_postgres else None)
        self.data = os.path.join(self.root, "data")
        self.socket_dir = self.root

    def _run(self, *argv: str) -> None:
        command = [os.path.join(self.bindir, argv[0]), *argv[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        """initdb, then start the server on a unix socket in the temp dir."""
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )
        options = f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.root, "log"),
            "-w", "-t", "60", "start",
        )

    def restart(self) -> None:
        """Stop the server at once (dropping every connection) and start it again."""
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        options = f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.root, "log"),
            "-w", "-t", "60", "start",
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.socket_dir}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def empty_database(url: str) -> None:
    """Drop the stores' tables (only those), so a test starts from a new database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        for table in STORE_TABLES:
            connection.execute(f"DROP TABLE IF EXISTS {table} CASCADE")

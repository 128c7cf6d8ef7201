"""``twistd -n chat --db …`` at start: a database that cannot be used ends the start with one clear
line and exit status 1 (never a traceback, never status 0); a value the option parser can judge
without I/O is a usage error."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
import pytest_twisted
from helpers import checkout_env, free_port, twistd_command, wait_until

from twistedchat.storage.migrations import MIGRATIONS
from twistedchat.storage.url import prepare_store, redacted


def run_chat(tmp_path: Path, db: str) -> subprocess.CompletedProcess[str]:
    """``twistd -n chat --db DB`` on a loopback port, to its end (bounded)."""
    return subprocess.run(
        [*twistd_command(), "-n", "--pidfile=", "chat", "--db", db,
         "--port", "tcp:0:interface=127.0.0.1"],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=60)


def newer_database(path: Path) -> None:
    """A SQLite file whose schema a later twistedchat wrote."""
    prepare_store(f"sqlite:{path}")
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                           (MIGRATIONS[-1].version + 1, "from the future"))


CASES = {
    "missing directory": (lambda tmp: "sqlite:/nonexistent/dir/x.db",
                          "the directory /nonexistent/dir does not exist"),
    "not a database": (lambda tmp: (tmp / "notes.txt").write_text("x" * 4096) and
                       f"sqlite:{tmp / 'notes.txt'}", "file is not a database"),
    "newer schema": (lambda tmp: newer_database(tmp / "new.db") or f"sqlite:{tmp / 'new.db'}",
                     "has schema version"),
    "postgresql refuses": (lambda tmp: f"postgresql://chat:hunter2@127.0.0.1:{free_port()}/chat",
                           "Connection refused"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_database_that_cannot_open_exits_1_with_one_line(tmp_path, case):
    make_url, reason = CASES[case]
    url = make_url(tmp_path)
    result = run_chat(tmp_path, url)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    said = [line for line in output.splitlines() if "twistedchat: cannot open the database" in line]
    assert len(said) == 1 and reason in said[0], output
    assert redacted(url) in said[0] and "hunter2" not in output
    assert "Traceback" not in output, output


@pytest.mark.parametrize("url, reason", [
    ("mysql://chat@db/chat", "unknown kind of database"),
    ("twistedchat.sqlite3", "no scheme"),
    ("sqlite:", "needs a file path"),
    ("sqlite:/tmp/", "not a directory"),
    ("postgresql://chat@db:notaport/chat", "port"),
])
def test_a_db_value_judged_without_io_is_a_usage_error(tmp_path, url, reason):
    result = run_chat(tmp_path, url)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    last = output.strip().splitlines()[-1]
    assert "--db" in last and reason in last, output
    assert "Traceback" not in output and not (tmp_path / "twistd.log").exists()


def test_redacted_hides_only_the_password():
    assert redacted("postgresql://chat:s3cret@db:5432/chat") == "postgresql://chat:***@db:5432/chat"
    assert redacted("postgresql://chat@db/chat") == "postgresql://chat@db/chat"
    assert redacted("sqlite:/var/lib/chat.db") == "sqlite:/var/lib/chat.db"


def test_a_store_failing_after_the_start_check_still_exits_1(monkeypatch, capsys):
    """The database checked at start but gone when the reactor opens it: the reactor stops and,
    after its shutdown, the process exits 1 with the reason (twistd alone would exit 0)."""
    from twisted.internet.defer import fail
    from twisted.internet.testing import MemoryReactorClock

    from twistedchat.server import service as service_module
    from twistedchat.server import store_start
    from twistedchat.server.config import ServerConfig
    from twistedchat.storage.model import StoreError

    reactor = MemoryReactorClock()
    reactor.running = True
    chat = service_module.ChatService(
        ServerConfig(db="postgresql://chat:hunter2@db/chat", ports=[]), reactor=reactor,
        owns_process=True)
    monkeypatch.setattr(store_start, "open_store",
                        lambda url, clock: fail(StoreError("the database went away")))
    chat._open_store()
    assert reactor.hasStopped
    [(trigger, args, _)] = reactor.triggers["after"]["shutdown"]
    exits: list[int] = []
    monkeypatch.setattr(store_start.os, "_exit", exits.append)
    trigger(*args)
    assert exits == [1]
    line = capsys.readouterr().err.strip()
    assert line == ("twistedchat: cannot open the database postgresql://chat:***@db/chat: "
                    "the database went away")


def test_daemonized_the_waiting_parent_says_why_and_exits_1(tmp_path):
    """Without -n the reason crosses twistd's status pipe: the parent prints it, exits 1, and
    no pidfile is left behind."""
    result = subprocess.run(
        [*twistd_command(), f"--pidfile={tmp_path / 'chat.pid'}",
         f"--logfile={tmp_path / 'chat.log'}", "chat", "--db", f"sqlite:{tmp_path}/gone/x.db",
         "--port", "tcp:0:interface=127.0.0.1"],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "RuntimeError: cannot open the database: the directory /" in result.stderr, result.stderr
    assert not (tmp_path / "chat.pid").exists()


@pytest_twisted.ensureDeferred
async def test_sigterm_while_the_database_is_prepared_is_a_clean_stop(tmp_path):
    """Between the listeners opening and the reactor running the daemon prepares its database
    (here it waits for a lock another program holds): a SIGTERM then is kept, and honoured as
    a clean stop (exit 0) once the reactor runs, instead of killing the process."""
    from helpers import DaemonProcess

    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    daemon = DaemonProcess(tmp_path, "--db", f"sqlite:{path}")
    try:
        await daemon.wait_listening()  # the port is open: its SIGTERM is held from now on
        daemon.process.terminate()
        holder.execute("ROLLBACK")
        await wait_until(lambda: daemon.process.poll() is not None, "twistd exits", 30)
        assert daemon.process.returncode == 0, daemon.log_text()
        assert "SIGTERM received while starting: stopping" in daemon.log_text()
    finally:
        holder.close()
        daemon.stop()


def run_configtest(tmp_path: Path, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*twistd_command(), "-n", "--pidfile=", "chat", "--configtest", "--db", db,
         "--port", "tcp:0:interface=127.0.0.1"],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=60)


def test_configtest_looks_at_the_database_without_changing_it(tmp_path):
    """--configtest reads the database's schema version (read-only) and refuses what the start
    would refuse; a database it does not find is created at the first start, not by it."""
    fresh = run_configtest(tmp_path, f"sqlite:{tmp_path / 'new.db'}")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "(new: created at the first start)" in fresh.stdout
    assert not (tmp_path / "new.db").exists()

    older = tmp_path / "older.db"
    prepare_store(f"sqlite:{older}", MIGRATIONS[:2])
    found = run_configtest(tmp_path, f"sqlite:{older}")
    assert found.returncode == 0, found.stdout + found.stderr
    assert (f"database sqlite:{older} (schema version 2; migrations up to "
            f"{MIGRATIONS[-1].version} applied at the next start)") in found.stdout
    with sqlite3.connect(older) as connection:
        assert connection.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (2,)
    connection.close()

    for case in ("missing directory", "not a database", "newer schema", "postgresql refuses"):
        make_url, reason = CASES[case]
        url = make_url(tmp_path)
        refused = run_configtest(tmp_path, url)
        output = refused.stdout + refused.stderr
        assert refused.returncode == 1, output
        assert "command line: configuration refused: the database: " in output and reason in output
        assert "Traceback" not in output and "hunter2" not in output

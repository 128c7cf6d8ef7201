"""The daemon as a sysadmin runs it: SIGHUP reloads, start-up errors, limits, logs, ``--uid``.

Each test runs twistd (or ``python -m twistedchat``) as a child process and waits on the reactor,
polling, for what it checks; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import pytest_twisted
from helpers import (
    DaemonProcess,
    checkout_env,
    connect,
    free_port,
    stop_process,
    twistd_command,
    wait_until,
)

from twistedchat.__main__ import split_arguments
from twistedchat.server.process import TwistdContext, writable_by


def write_setup(tmp_path: Path, motd: str, max_per_ip: int = 10) -> Path:
    (tmp_path / "motd.txt").write_text(motd + "\n", encoding="utf-8")
    path = tmp_path / "chat.toml"
    path.write_text(f'motd = "motd.txt"\nmax-per-ip = {max_per_ip}\npassword = "letmein"\n',
                    encoding="utf-8")
    return path


async def motd_of(endpoint: str) -> list[str]:
    client = await connect(endpoint)
    client.send("PASS letmein", "NICK reader", "USER r 0 * :R")
    burst = await client.collect_until("376")
    client.send("QUIT")
    await client.wait_closed()
    return [m.params[-1] for m in burst if m.command == "372"]


async def wait_for_log(daemon_log, text: str, count: int = 1) -> None:
    await wait_until(lambda: daemon_log().count(text) >= count, f"the log says {text!r}",
                     timeout=15)


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_motd_and_limits_without_disconnecting(tmp_path):
    config = write_setup(tmp_path, "Old news.")
    daemon = DaemonProcess(tmp_path, "--config", str(config))
    try:
        await daemon.wait_listening()
        stayer = await connect(daemon.client_endpoint)
        stayer.send("PASS letmein", "NICK stayer", "USER s 0 * :S", "JOIN #ops")
        await stayer.expect("366")
        assert await motd_of(daemon.client_endpoint) == ["- Old news."]

        write_setup(tmp_path, "Fresh news.", max_per_ip=2)
        daemon.process.send_signal(signal.SIGHUP)
        await wait_for_log(daemon.log_text, "configuration reloaded from")
        assert daemon.process.poll() is None
        assert "motd text" in daemon.log_text() and "max-per-ip" in daemon.log_text()
        assert await motd_of(daemon.client_endpoint) == ["- Fresh news."]
        await stayer.sync()  # still connected and answered
        # the new limit holds: stayer plus one more, the third is refused
        second = await connect(daemon.client_endpoint)
        third = await connect(daemon.client_endpoint)
        await third.expect("ERROR", where=lambda m: "Too many connections" in m.params[-1])
        second.transport.loseConnection()

        # A broken file is refused with its reason; the running configuration stays.
        config.write_text("max-per-ip = \"lots\"\n", encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        await wait_for_log(daemon.log_text, "reload refused")
        assert "max-per-ip: 'lots' is not a whole number" in daemon.log_text()
        assert daemon.process.poll() is None
        await stayer.sync()
        assert await motd_of(daemon.client_endpoint) == ["- Fresh news."]
        assert not stayer.is_closed
    finally:
        assert await daemon.terminate() == 0


def start_daemonized(tmp_path: Path, *chat_args: str) -> subprocess.CompletedProcess[str]:
    """``twistd chat`` without -n: returns once the parent exits (the daemon keeps running)."""
    return subprocess.run(
        [*twistd_command(), f"--pidfile={tmp_path / 'chat.pid'}",
         f"--logfile={tmp_path / 'chat.log'}", "chat", *chat_args],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=60)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_a_daemonized_server(tmp_path):
    config = write_setup(tmp_path, "Before.")
    port = free_port()
    started = start_daemonized(tmp_path, "--config", str(config),
                               "--port", f"tcp:{port}:interface=127.0.0.1")
    assert started.returncode == 0, started.stdout + started.stderr
    pid = int((tmp_path / "chat.pid").read_text())
    log_path = tmp_path / "chat.log"

    def log_text() -> str:
        return log_path.read_text() if log_path.exists() else ""

    try:
        await wait_for_log(log_text, "twistedchat listening on")
        write_setup(tmp_path, "After.")
        os.kill(pid, signal.SIGHUP)
        await wait_for_log(log_text, "configuration reloaded from")
        assert pid_alive(pid)
        assert await motd_of(f"tcp:127.0.0.1:{port}") == ["- After."]
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
        await wait_until(lambda: not (tmp_path / "chat.pid").exists(), "the pidfile is removed",
                         timeout=15)


async def pidfile_removed(tmp_path: Path) -> None:
    """twistd removes the pidfile just after it reports the failure to the waiting parent."""
    await wait_until(lambda: not (tmp_path / "chat.pid").exists(), "the pidfile is removed",
                     timeout=10)


@pytest_twisted.ensureDeferred
async def test_daemonized_start_on_a_taken_port_fails_at_once(tmp_path):
    """It hung forever before (SystemExit escaped twistd's start-up reporting)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = start_daemonized(tmp_path, "--port", f"tcp:{port}:interface=127.0.0.1")
    assert result.returncode == 1
    assert f"cannot listen on tcp:{port}:interface=127.0.0.1: Address already in use" in \
        result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    await pidfile_removed(tmp_path)


@pytest_twisted.ensureDeferred
async def test_daemonized_start_on_a_missing_address_fails_at_once(tmp_path):
    result = start_daemonized(tmp_path, "--port", "tcp:0:interface=192.0.2.1")
    assert result.returncode == 1
    assert "cannot listen on tcp:0:interface=192.0.2.1" in result.stderr, result.stderr
    await pidfile_removed(tmp_path)


def test_foreground_start_on_a_taken_port_removes_its_pidfile(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*twistd_command(), "-n", f"--pidfile={tmp_path / 'fg.pid'}", "chat",
             "--port", f"tcp:{port}:interface=127.0.0.1"],
            cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr  # in the foreground twistd logs stderr to stdout
    assert result.returncode == 1
    assert "Address already in use" in output and "Traceback" not in output, output
    assert not (tmp_path / "fg.pid").exists()


def test_reactor_still_records_the_exit_signal():
    """ChatService.stopService clears ``reactor._exitSignal`` (private Twisted API: twistd
    re-raises the signal it holds) so SIGTERM exits 0. Pin the attribute and the interface twistd
    reads, so a Twisted upgrade that renames them fails here, not in production."""
    from twisted.internet.interfaces import _ISupportsExitSignalCapturing
    from twisted.internet.selectreactor import SelectReactor

    reactor = SelectReactor()
    assert _ISupportsExitSignalCapturing.providedBy(reactor)
    assert reactor._exitSignal is None
    reactor.sigTerm(signal.SIGTERM, None)
    assert reactor._exitSignal == signal.SIGTERM


@pytest_twisted.ensureDeferred
async def test_open_files_soft_limit_is_raised_to_the_hard_limit(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")

    def lower_soft_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    daemon = DaemonProcess(tmp_path, preexec_fn=lower_soft_limit)
    try:
        await daemon.wait_listening()
        limits = Path(f"/proc/{daemon.process.pid}/limits").read_text()
        row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        now_soft, now_hard = row.split()[3:5]
        assert now_soft == now_hard, row
        assert "open-files limit raised from 256 to" in daemon.log_text()
    finally:
        await daemon.terminate()


@pytest_twisted.ensureDeferred
async def test_json_log_format_writes_one_event_a_line(tmp_path):
    daemon = DaemonProcess(tmp_path, "--log-format", "json")
    try:
        await daemon.wait_listening()
        await wait_for_log(daemon.log_text, "twistedchat listening on")
    finally:
        assert await daemon.terminate() == 0
    events = [json.loads(line) for line in daemon.log_text().splitlines()]
    assert any(e.get("log_format") == "twistedchat listening on {description}" for e in events)
    assert all("log_time" in e for e in events)


def test_json_log_format_refuses_syslog(tmp_path):
    result = subprocess.run([*twistd_command(), "-n", "--pidfile=", "--syslog", "chat",
                             "--log-format", "json"], cwd=tmp_path, env=checkout_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "--syslog writes text lines" in result.stderr and "Traceback" not in result.stderr


def test_split_arguments_moves_twistd_options_first():
    assert split_arguments(["--port", "6667", "--logfile", "x.log", "--syslog",
                            "-l", "y.log", "--logger=a.b", "--name", "n"]) == (
        ["--logfile=x.log", "--syslog", "--logfile=y.log", "--logger=a.b"],
        ["--port", "6667", "--name", "n"])


@pytest_twisted.ensureDeferred
async def test_entry_point_accepts_logfile(tmp_path):
    """``python -m twistedchat --logfile F`` used to be refused (an unknown chat option)."""
    port = free_port()
    log_path = tmp_path / "entry.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "twistedchat", "--port", f"tcp:{port}:interface=127.0.0.1",
         "--logfile", str(log_path)], cwd=tmp_path, env=checkout_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        await wait_until(lambda: log_path.exists() and "twistedchat listening on"
                         in log_path.read_text() or process.poll() is not None,
                         "the entry point logs to its file", timeout=15)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
    finally:
        stop_process(process)
    assert process.returncode == 0


@pytest.fixture
def root_owned_dir():
    """A fresh directory outside root's private pytest tree: every user may enter it, only its
    owner (root, in CI) may write it."""
    path = Path(tempfile.mkdtemp(prefix="twistedchat-ops-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_pidfile_in_an_unwritable_directory_is_a_clear_error(tmp_path):
    """``twistd -n chat`` without --pidfile= writes twistd.pid in the working directory: where
    that is not writable, say so and how to fix it instead of a PermissionError traceback."""
    if os.geteuid() == 0:
        # root may write almost anywhere (and the venv's python may sit in /root, which another
        # user cannot run): /proc is a directory where even root cannot create a file
        where = Path("/proc")
    else:
        where = tmp_path / "readonly"
        where.mkdir()
        where.chmod(0o555)
    result = subprocess.run([*twistd_command(), "-n", "chat", "--port", str(free_port())],
                            cwd=where, env=checkout_env(), capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"cannot write the pidfile {where / 'twistd.pid'}: " in output, output
    assert "--pidfile=" in output and "Traceback" not in output, output


def test_writable_by_reads_owner_group_other_and_sticky(tmp_path):
    uid, gid = os.getuid(), os.getgid()
    stranger = 4242 if uid != 4242 else 4243
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    assert writable_by(str(mine), uid, gid) or uid == 0
    assert not writable_by(str(mine), stranger, 4242)
    mine.chmod(0o757)
    assert writable_by(str(mine), stranger, 4242)
    mine.chmod(0o1777)  # sticky: a root-made pidfile there cannot be removed by a stranger
    assert not writable_by(str(mine), stranger, 4242)
    assert not writable_by(str(tmp_path / "absent"), stranger, 4242)


def test_privilege_warnings_name_the_pidfile_and_log(tmp_path):
    root_only = tmp_path / "run"
    root_only.mkdir()
    root_only.chmod(0o755)
    context = TwistdContext(nodaemon=False, pidfile=str(root_only / "chat.pid"),
                            logfile=str(root_only / "chat.log"), uid=4242, gid=4242)
    warnings = context.privilege_warnings()
    assert len(warnings) == 2
    assert f"the pidfile {root_only / 'chat.pid'} will be left behind at exit" in warnings[0]
    assert "cannot be rotated" in warnings[1]
    assert TwistdContext(pidfile=str(root_only / "x.pid")).privilege_warnings() == []
    private = tmp_path / "chat.toml"
    private.write_text("")
    private.chmod(0o600)
    assert context.privilege_warnings([str(private)])[0] == (
        f"{private} cannot be read again on reload: uid 4242 (after --uid) may not read it; "
        "give that user or its group read access")
    private.chmod(0o644)
    assert len(context.privilege_warnings([str(private)])) == 2


@pytest_twisted.ensureDeferred
async def test_uid_warns_at_start_about_what_will_fail(root_owned_dir):
    """After --uid, pidfile removal and log rotation in root-owned directories used to fail
    silently at exit or at rotation time; now the start-up log says so."""
    if os.geteuid() != 0:
        pytest.skip("--uid needs root")
    where = root_owned_dir
    config = where / "chat.toml"
    config.write_text('name = "uid.test"\n')
    config.chmod(0o600)  # root's alone: read at start, not on a reload as nobody
    # (no database: nobody could not create one in this root-owned directory)
    daemon = DaemonProcess(where, "--config", str(config), "--db", "memory:",
                           twistd_args=("--uid", "nobody", f"--pidfile={where / 'c.pid'}"))
    try:
        await daemon.wait_listening()
        await wait_for_log(daemon.log_text, "twistedchat listening on")
        text = daemon.log_text()
        assert f"the pidfile {where / 'c.pid'} will be left behind at exit" in text, text
        assert f"the log file {where / 'twistd.log'} cannot be rotated" in text, text
        assert f"{config} cannot be read again on reload: uid" in text, text
    finally:
        await daemon.terminate()


def test_raise_open_files_limit_in_process():
    from twistedchat.server.process import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 200 if hard == resource.RLIM_INFINITY else min(200, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        before, after = raise_open_files_limit() or (None, None)
        assert before == low
        assert after == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert after > low or hard == low
        assert raise_open_files_limit() == (after, after)  # nothing left to raise
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_while_running_and_is_ignored_during_shutdown():
    """In-process: the service's handler reloads; once stopping, a SIGHUP neither reloads nor
    reaches the handler that was there before (for twistd: the default, which kills)."""
    from twisted.internet import reactor

    from twistedchat.server.config import ServerConfig
    from twistedchat.server.service import ChatService

    earlier: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda number, frame: earlier.append(number))
    try:
        chat = ChatService(ServerConfig(ports=["tcp:0:interface=127.0.0.1"]), reactor=reactor,
                           owns_process=True)
        chat.privilegedStartService()
        chat.startService()
        client = await connect(f"tcp:127.0.0.1:{chat.ports[0].getHost().port}")
        client.send("NICK hup", "USER h 0 * :H")
        await client.expect("001")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: chat.reloads_ok == 1, "the SIGHUP reload")
        stopping = chat.stopService()
        os.kill(os.getpid(), signal.SIGHUP)
        await stopping
        assert chat.reloads_ok == 1 and earlier == []
        await client.wait_closed()
        os.kill(os.getpid(), signal.SIGHUP)  # the earlier handler is back
        assert earlier == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest_twisted.ensureDeferred
async def test_child_services_stop_after_every_client_is_told():
    """A store attached to the chat service flushes after the goodbyes, not before them."""
    from twisted.application.service import Service
    from twisted.internet import reactor

    from twistedchat.server.config import ServerConfig
    from twistedchat.server.service import ChatService

    chat = ChatService(ServerConfig(ports=["tcp:0:interface=127.0.0.1"]), reactor=reactor)
    seen: list[str] = []

    class Store(Service):
        def startService(self) -> None:
            super().startService()
            seen.append("started")

        def stopService(self) -> None:
            super().stopService()
            seen.append(f"stopped with {len(chat.factory.connections)} connections")

    Store().setServiceParent(chat)
    chat.privilegedStartService()
    chat.startService()
    client = await connect(f"tcp:127.0.0.1:{chat.ports[0].getHost().port}")
    client.send("NICK bye", "USER b 0 * :B")
    await client.expect("001")
    assert seen == ["started"]
    await chat.stopService()
    await client.expect("ERROR", where=lambda m: "Server shutting down" in m.params[-1])
    assert seen == ["started", "stopped with 0 connections"]

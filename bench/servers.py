"""Start the servers under test: pinned to one core, open-files limit raised, flood limits lifted.

Each server is a `ServerSpec` (a name and how to build its command line for a port); `running()`
starts one in its own temporary directory and stops it again, so every measurement starts from a
fresh process.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TWISTD = str(Path(PYTHON).with_name("twistd"))
NGIRCD = "/usr/sbin/ngircd"
#: twistd of a PyPy virtualenv with Twisted installed (``make bench-pypy`` makes .venv-pypy).
PYPY_TWISTD = os.environ.get("BENCH_PYPY_TWISTD", str(REPO / ".venv-pypy" / "bin" / "twistd"))
SENDQ = 64 * 1024 * 1024

NGIRCD_CONF = """\
[Global]
Name = ngircd.bench
Info = bench
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = "bench"
PidFile = {tmp}/ngircd.pid
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600
[Options]
DNS = no
Ident = no
PAM = no
"""


@dataclass(frozen=True)
class ServerSpec:
    """A server to bench: its name and a function (port, temp dir) -> command line."""

    name: str
    command: Callable[[int, Path], list[str]]
    available: Callable[[], bool] = lambda: True
    #: Also listen for IRC over WebSocket (``--websocket``); half the bench clients use it.
    websocket: bool = False


def _ngircd_command(port: int, tmp: Path) -> list[str]:
    conf = tmp / "ngircd.conf"
    conf.write_text(NGIRCD_CONF.format(port=port, tmp=tmp))
    return [NGIRCD, "-n", "-f", str(conf)]


def _twistedchat_command(port: int, tmp: Path, twistd: str = TWISTD) -> list[str]:
    return [
        twistd, "-n", "--logfile", str(tmp / "twistd.log"), "--pidfile", "",
        "chat", "--port", f"tcp:{port}:interface=127.0.0.1:backlog=1024",
        "--no-flood-control", "--max-per-ip", "0", "--max-clients", "0",
        "--sendq", str(SENDQ), "--ping-interval", "3600", "--ping-timeout", "3600",
    ]  # fmt: skip


def _plain_command(port: int, tmp: Path) -> list[str]:
    return [PYTHON, "-m", "bench.plain_server", str(port)]


SERVERS: dict[str, ServerSpec] = {
    "twistedchat": ServerSpec("twistedchat", _twistedchat_command),
    "ngircd": ServerSpec("ngircd", _ngircd_command, lambda: os.path.exists(NGIRCD)),
    "twistedchat-pypy": ServerSpec(
        "twistedchat-pypy", lambda port, tmp: _twistedchat_command(port, tmp, PYPY_TWISTD),
        lambda: os.path.exists(PYPY_TWISTD)),
    "plain-twisted": ServerSpec("plain-twisted", _plain_command),
    # The same daemon with half of the clients over WebSocket (compare with "twistedchat").
    "twistedchat-ws": ServerSpec("twistedchat-ws", _twistedchat_command, websocket=True),
}


def ensure_ngircd() -> bool:
    """Install Debian's ngircd if it is missing (needs root and the package registry)."""
    if os.path.exists(NGIRCD):
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for args in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "ngircd"]):
        subprocess.run(args, env=env, check=False, timeout=600, stdout=subprocess.DEVNULL)
    # The package starts a system-wide ngircd on 6667; the bench runs its own copies.
    subprocess.run(["service", "ngircd", "stop"], check=False, capture_output=True, timeout=60)
    return os.path.exists(NGIRCD)


def raise_nofile() -> int:
    """Raise this process's open-files soft limit to the hard limit; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """The command run under ``taskset -c CPU`` (if taskset exists and a CPU is given)."""
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout:.0f} s")


@dataclass
class RunningServer:
    """A started server process."""

    name: str
    pid: int
    port: int
    log: Path
    websocket_port: int = 0


@contextlib.contextmanager
def running(
    spec: ServerSpec, cpu: int | None, start_timeout: float = 30.0
) -> Iterator[RunningServer]:
    """Start ``spec`` on a free loopback port, yield it once it listens, then stop it."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{spec.name}-") as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        command = spec.command(port, tmp)
        websocket_port = 0
        if spec.websocket:
            websocket_port = free_port()
            command += ["--websocket", f"tcp:{websocket_port}:interface=127.0.0.1:backlog=1024"]
        log = tmp / "server.out"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                pinned(command, cpu),
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=raise_nofile, env=dict(os.environ, PYTHONPATH=str(REPO)),
            )  # fmt: skip
        try:
            try:
                _wait_listening(port, proc, start_timeout)
                if websocket_port:  # its listener may open a moment after the TCP one
                    _wait_listening(websocket_port, proc, start_timeout)
            except RuntimeError as err:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{spec.name}: {err}; its output: {tail}") from None
            time.sleep(0.2)  # let the probe connection's close be processed
            yield RunningServer(spec.name, proc.pid, port, log, websocket_port)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int:
    """VmRSS of a process, in bytes, from /proc/PID/status."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

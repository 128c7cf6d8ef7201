"""Start the servers under test: pinned to one core, open-files limit raised, flood limits lifted.

Each server is a `ServerSpec` (a name and how to build its command line for a port); `running()`
starts one in its own temporary directory and stops it again, so every measurement starts from a
fresh process. With ``tls=True`` the server listens with TLS only, on a self-signed certificate
made afresh in that directory (the same kind of key for every server).
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
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
Ports = {plain_port}
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

#: ngircd's TLS listener (its plain ``Ports`` then moves to another free port nobody uses).
NGIRCD_TLS = """\
[SSL]
CertFile = {cert}
KeyFile = {key}
Ports = {port}
"""


#: Extra ``twistd chat`` arguments for every twistedchat run (e.g. ``--tls-engine twisted`` to
#: bench the fallback TLS transport), split on spaces.
TWISTEDCHAT_ARGS = os.environ.get("BENCH_TWISTEDCHAT_ARGS", "")


@dataclass(frozen=True)
class ServerSpec:
    """A server to bench: its name and a function (port, temp dir, TLS?) -> command line.

    With ``front`` (public port, backend port, temp dir) -> command line, that process (a proxy
    terminating TLS) listens on the public port and the server on the backend port; both are
    pinned to the server's core and their CPU and RSS are counted together.
    """

    name: str
    command: Callable[[int, Path, bool], list[str]]
    available: Callable[[], bool] = lambda: True
    speaks_tls: bool = True
    front: Callable[[int, int, Path], list[str]] | None = None
    #: Also listen for IRC over WebSocket (``--websocket``); half the bench clients use it.
    websocket: bool = False


def write_self_signed(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A fresh RSA-2048 key and a self-signed certificate for ``name``: (key path, cert path)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))  # fmt: skip
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _ngircd_command(port: int, tmp: Path, tls: bool) -> list[str]:
    conf = tmp / "ngircd.conf"
    text = NGIRCD_CONF.format(plain_port=free_port() if tls else port, tmp=tmp)
    if tls:
        key, cert = write_self_signed(tmp)
        text += NGIRCD_TLS.format(port=port, key=key, cert=cert)
    conf.write_text(text)
    return [NGIRCD, "-n", "-f", str(conf)]


def _twistedchat_command(port: int, tmp: Path, tls: bool, twistd: str = TWISTD) -> list[str]:
    listen = f"{port}:interface=127.0.0.1:backlog=1024"
    if tls:
        key, cert = write_self_signed(tmp)
        listen = f"ssl:{listen}:privateKey={key}:certKey={cert}"
    else:
        listen = f"tcp:{listen}"
    return [
        twistd, "-n", "--logfile", str(tmp / "twistd.log"), "--pidfile", "",
        "chat", "--port", listen,
        "--no-flood-control", "--max-per-ip", "0", "--max-clients", "0",
        "--sendq", str(SENDQ), "--ping-interval", "3600", "--ping-timeout", "3600",
        # history on, in a fresh SQLite file per run (BENCH_DB=memory: measures without it)
        "--db", os.environ.get("BENCH_DB") or f"sqlite:{tmp / 'bench.sqlite3'}",
        *TWISTEDCHAT_ARGS.split(),
    ]  # fmt: skip


HAPROXY = "/usr/sbin/haproxy"
HAPROXY_CONF = """\
global
    maxconn 9000
    nbthread 1
defaults
    mode tcp
    timeout connect 10s
    timeout client 1h
    timeout server 1h
frontend irc
    bind 127.0.0.1:{port} ssl crt {pem}
    default_backend chat
backend chat
    server chat 127.0.0.1:{backend} send-proxy
"""


def _haproxy_front(port: int, backend: int, tmp: Path) -> list[str]:
    """Debian's haproxy (one thread) terminating TLS, passing the address on with PROXY v1."""
    key, cert = write_self_signed(tmp)
    pem = tmp / "haproxy.pem"
    pem.write_text(cert.read_text() + key.read_text())
    conf = tmp / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(port=port, backend=backend, pem=pem))
    return [HAPROXY, "-db", "-f", str(conf)]


def _proxied_twistedchat(port: int, tmp: Path, tls: bool) -> list[str]:
    command = _twistedchat_command(port, tmp, False)
    index = command.index("--port") + 1
    command[index] = "haproxy:" + command[index]
    return command


def _plain_command(port: int, tmp: Path, tls: bool) -> list[str]:
    return [PYTHON, "-m", "bench.plain_server", str(port)]


SERVERS: dict[str, ServerSpec] = {
    "twistedchat": ServerSpec("twistedchat", _twistedchat_command),
    "ngircd": ServerSpec("ngircd", _ngircd_command, lambda: os.path.exists(NGIRCD)),
    "twistedchat-pypy": ServerSpec(
        "twistedchat-pypy", lambda port, tmp, tls: _twistedchat_command(port, tmp, tls, PYPY_TWISTD),
        lambda: os.path.exists(PYPY_TWISTD)),
    "plain-twisted": ServerSpec("plain-twisted", _plain_command, speaks_tls=False),
    # TLS terminated by haproxy in front of the daemon's haproxy: (PROXY protocol) listener.
    "haproxy+twistedchat": ServerSpec("haproxy+twistedchat", _proxied_twistedchat,
                                      lambda: os.path.exists(HAPROXY), front=_haproxy_front),
    # The daemon on Twisted's own TLS (TLSMemoryBIOProtocol + pyOpenSSL), for comparison.
    "twistedchat-twisted-tls": ServerSpec(
        "twistedchat-twisted-tls",
        lambda port, tmp, tls: [*_twistedchat_command(port, tmp, tls), "--tls-engine", "twisted"]),
    # The daemon gathering a busy TLS client's output for 20 ms (fewer, larger records).
    "twistedchat-tls-gather": ServerSpec(
        "twistedchat-tls-gather",
        lambda port, tmp, tls: [*_twistedchat_command(port, tmp, tls), "--tls-write-interval", "20"]),
    # The same daemon with half of the clients over WebSocket (compare with "twistedchat").
    "twistedchat-ws": ServerSpec("twistedchat-ws", _twistedchat_command, websocket=True,
                                 speaks_tls=False),
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
    """A started server process (and the proxy in front of it, if any)."""

    name: str
    pid: int
    port: int
    log: Path
    pids: tuple[int, ...] = ()
    websocket_port: int = 0


@contextlib.contextmanager
def running(
    spec: ServerSpec, cpu: int | None, start_timeout: float = 30.0, tls: bool = False
) -> Iterator[RunningServer]:
    """Start ``spec`` on a free loopback port (TLS only if ``tls``), yield it once it listens,
    then stop it (and the proxy in front of it, if it has one)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{spec.name}-") as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        commands = [(spec.command(port, tmp, tls), port, tmp / "server.out")]
        websocket_port = 0
        if spec.websocket:
            websocket_port = free_port()
            commands[0][0].extend(
                ["--websocket", f"tcp:{websocket_port}:interface=127.0.0.1:backlog=1024"])
        if spec.front is not None:
            backend = free_port()
            commands = [(spec.command(backend, tmp, tls), backend, tmp / "server.out"),
                        (spec.front(port, backend, tmp), port, tmp / "front.out")]  # fmt: skip
        procs: list[subprocess.Popen] = []
        try:
            for command, listen_port, log in commands:
                with open(log, "wb") as out:
                    procs.append(subprocess.Popen(
                        pinned(command, cpu),
                        cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        preexec_fn=raise_nofile, env=dict(os.environ, PYTHONPATH=str(REPO)),
                    ))  # fmt: skip
                try:
                    _wait_listening(listen_port, procs[-1], start_timeout)
                    if websocket_port and len(procs) == 1:  # it may open after the TCP one
                        _wait_listening(websocket_port, procs[0], start_timeout)
                except RuntimeError as err:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{spec.name}: {err}; its output: {tail}") from None
            time.sleep(0.2)  # let the probe connection's close be processed
            yield RunningServer(spec.name, procs[0].pid, port, commands[0][2],
                                tuple(p.pid for p in procs), websocket_port)  # fmt: skip
        finally:
            stop_processes(procs)


def stop_processes(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM each process, last started first; SIGKILL one still there after ``grace`` s."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


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


REDIS_SERVER = "/usr/bin/redis-server"
#: Seconds redis-server may take to say it is ready.
REDIS_START_SECONDS = 15.0


def start_redis_server(binary: str, port: int, workdir: Path,
                       timeout: float = REDIS_START_SECONDS,
                       prefix: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Debian's ``redis-server`` on 127.0.0.1:``port``, no persistence, its files in ``workdir``;
    returns once it accepts connections (bounded by ``timeout``), its output left on a pipe.

    ``prefix`` goes before the command (e.g. ``taskset -c 0``).
    """
    process = subprocess.Popen(
        [*(prefix or []), binary, "--port", str(port), "--bind", "127.0.0.1", "--dir",
         str(workdir), "--save", "", "--appendonly", "no", "--daemonize", "no",
         "--protected-mode", "no"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while b"Ready to accept connections" not in seen:
        readable, _, _ = select.select([process.stdout], [], [], max(deadline - time.monotonic(), 0))
        chunk = process.stdout.read1(4096) if readable else b""
        if not chunk:
            process.kill()
            process.wait(10)
            process.stdout.close()
            why = "did not start in time" if not readable else "exited"
            raise RuntimeError(f"redis-server {why}: {seen.decode(errors='replace')[-2000:]}")
        seen += chunk
    return process


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (from /proc/PID/task/*/children)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return children


def listeners_on(port: int) -> int:
    """How many sockets listen on a loopback TCP ``port`` (several with SO_REUSEPORT)."""
    count = 0
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                count += 1
    return count

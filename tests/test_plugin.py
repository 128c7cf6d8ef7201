"""The ``twistd chat`` plugin: found by twistd, strict about its options, found after a plain install.

These run ``twistd`` as a child process (from a temporary directory, so the checkout is not found
through the working directory) and look at its exit status and output.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import pytest_twisted
from helpers import DaemonProcess, connect, free_port, stop_process, twistd_command, wait_until

ROOT = Path(__file__).resolve().parent.parent
#: Run twistd's entry point with ``python -S``: no site-packages .pth files (the editable install
#: and the Makefile's checkout .pth), so only what PYTHONPATH names can provide the plugin.
TWISTD_WITHOUT_SITE = [
    sys.executable, "-S", "-c",
    "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
]


def run_twistd(args: list[str], cwd: Path, command: list[str] | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(command or twistd_command()), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_twistd_help_lists_chat(tmp_path):
    result = run_twistd(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert any(words[:1] == ["chat"] for words in lines), result.stdout


def test_chat_help_lists_the_options(tmp_path):
    result = run_twistd(["chat", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--port", "--name", "--network", "--motd", "--password", "--max-clients",
                   "--max-per-ip", "--oper", "--ping-interval", "--ping-timeout",
                   "--registration-timeout", "--flood-burst", "--flood-rate",
                   "--no-flood-control", "--sendq"):
        assert option in result.stdout, option


@pytest.mark.parametrize(("args", "option"), [
    (["--max-clients", "abc"], "--max-clients"),
    (["--port", "nonsense:"], "--port"),
    (["--port", "99999"], "--port"),
    (["--oper", "nopassword"], "--oper"),
    (["--flood-rate", "-1"], "--flood-rate"),
    (["--motd", "/nonexistent/motd.txt"], "--motd"),
    (["--sendq", "12.5"], "--sendq"),
])
def test_bad_option_is_a_usage_error(tmp_path, args, option):
    result = run_twistd(["-n", "chat", *args], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert option in output, output
    assert "Traceback" not in output, output
    assert not (tmp_path / "twistd.pid").exists()


def copy_checkout(destination: Path) -> Path:
    """The checkout's source files (no venv, git, caches or build output), ready to install."""
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                    "dropin.cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
                                    "_trial_temp", "bench", "tests")
    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination


def test_plugin_found_after_plain_install(tmp_path):
    # --no-build-isolation builds with this venv's setuptools, which (before 70.1) needs wheel.
    import setuptools

    if tuple(int(p) for p in setuptools.__version__.split(".")[:2]) < (70, 1):
        pytest.importorskip("wheel", reason="pip install wheel (the [test] extra should list it)")
    source = copy_checkout(tmp_path / "src")
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / "twisted" / "plugins" / "twistedchat_plugin.py").exists()
    for name in ("index.html", "style.css", "app.js", "client.js", "irc.js"):  # the web client
        assert (target / "twistedchat" / "web" / "static" / name).exists(), name

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site_packages = sysconfig.get_path("purelib")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}

    without = run_twistd(["--help"], elsewhere, TWISTD_WITHOUT_SITE,
                         {**base_env, "PYTHONPATH": site_packages})
    assert without.returncode == 0, without.stderr
    assert "twistedchat" not in without.stdout  # the check below is not fooled by the checkout

    installed_path = os.pathsep.join([str(target), site_packages])
    found = run_twistd(["--help"], elsewhere, TWISTD_WITHOUT_SITE,
                       {**base_env, "PYTHONPATH": installed_path})
    assert found.returncode == 0, found.stderr
    assert any(line.split()[:1] == ["chat"] for line in found.stdout.splitlines()), found.stdout

    where = subprocess.run(
        [sys.executable, "-S", "-c", "import twistedchat.server.tap; print(twistedchat.server.tap.__file__)"],
        cwd=elsewhere, env={**base_env, "PYTHONPATH": installed_path},
        capture_output=True, text=True, timeout=60,
    )
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_twistd(["-n", "--pidfile=", "chat", "--port",
                             f"tcp:{port}:interface=127.0.0.1"], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"Couldn't listen on 127.0.0.1:{port}" in output and "in use" in output, output
    assert "Traceback" not in output, output


@pytest_twisted.ensureDeferred
async def test_options_reach_the_running_daemon(tmp_path):
    """--name, --network, --motd, --password and --oper, end to end through twistd."""
    motd = tmp_path / "motd.txt"
    motd.write_text("Hello from the MOTD file.\nSecond line.\n", encoding="utf-8")
    daemon = DaemonProcess(tmp_path, "--name", "opts.server", "--network", "OptNet",
                           "--motd", str(motd), "--password", "pw", "--oper", "boss:hunter2",
                           "--max-per-ip", "3")
    try:
        await daemon.wait_listening()
        # the admin reads where it listens, as they wrote it (not an endpoint object's repr),
        # once the database is ready (the port accepts connections a little before)
        said = f"twistedchat listening on tcp:{daemon.port}:interface=127.0.0.1"
        await wait_until(lambda: said in daemon.log_text(), "the listening line", 15)
        refused = await connect(daemon.client_endpoint)
        refused.send("NICK nopass", "USER n 0 * :N")
        await refused.expect("464")
        await refused.wait_closed()
        client = await connect(daemon.client_endpoint)
        client.send("PASS pw", "NICK boss", "USER boss 0 * :Boss")
        burst = await client.collect_until("376")
        assert burst[0].source == "opts.server"
        assert "Welcome to the OptNet Network" in burst[0].params[-1]
        assert [m.params[-1] for m in burst if m.command == "372"] == [
            "- Hello from the MOTD file.", "- Second line."]
        client.send("OPER boss hunter2")
        await client.expect("381")
        client.send("QUIT")
        await client.wait_closed()
    finally:
        await daemon.terminate()


@pytest_twisted.ensureDeferred
async def test_server_only_install_needs_no_qt(tmp_path):
    """``pip install .`` (no extras) in a fresh venv: no PyQt6, and a working ``twistd chat``."""
    import venv

    source = copy_checkout(tmp_path / "src")
    home = tmp_path / "venv"
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    for qt_module in ("PyQt6", "qtpy", "qtreactor"):
        probe = subprocess.run([str(python), "-c", f"import {qt_module}"], env=clean_env,
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0, f"{qt_module} was installed without the client extra"
    client = subprocess.run([str(home / "bin" / "twistedchat-client")], env=clean_env,
                            capture_output=True, text=True, timeout=60)
    assert client.returncode == 1 and "Traceback" not in client.stderr, client.stderr
    assert "pip install 'twistedchat[client]'" in client.stderr, client.stderr
    listed = run_twistd(["--help"], tmp_path, [str(home / "bin" / "twistd")], clean_env)
    assert any(line.split()[:1] == ["chat"] for line in listed.stdout.splitlines()), listed.stdout

    number = free_port()
    daemon = subprocess.Popen([str(home / "bin" / "twistd"), "-n", "--pidfile=", "chat", "--port",
                               f"tcp:{number}:interface=127.0.0.1"], cwd=tmp_path, env=clean_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def listening() -> bool:
        assert daemon.poll() is None, daemon.stdout.read() if daemon.stdout else ""
        try:
            with socket.create_connection(("127.0.0.1", number), timeout=0.2):
                return True
        except OSError:
            return False

    try:
        await wait_until(listening, "the installed daemon listens", timeout=30, interval=0.05)
        client = await connect(f"tcp:127.0.0.1:{number}")
        client.send("NICK fresh", "USER fresh 0 * :Fresh")
        await client.expect("001")
        client.send("QUIT")
        await client.wait_closed()
    finally:
        stop_process(daemon)
    assert daemon.returncode == 0

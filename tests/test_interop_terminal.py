"""Real terminal IRC clients, irssi and weechat, driven in tmux against a ``twistd chat`` child.

Each test starts the daemon as a subprocess, a raw Python client in ``#lobby``, and the terminal
client in a private tmux server (its own socket); it types with ``send-keys`` and reads the screen
with ``capture-pane``. Every wait is a bounded poll; tmux runs through Twisted's process API so the
reactor keeps serving the Python client meanwhile.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import pytest_twisted
from helpers import DaemonProcess, register
from twisted.internet import reactor, task, utils

ensure = pytest_twisted.ensureDeferred

#: Seconds a terminal client may take for one step (start, connect, show a line).
STEP = 10.0


class Tmux:
    """A private tmux server for one test."""

    def __init__(self, directory: Path) -> None:
        self.tmux = shutil.which("tmux")
        self.socket = str(directory / "tmux.sock")
        self.env = {**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8",
                    "LC_ALL": "C.UTF-8", "HOME": str(directory)}
        self.env.pop("TMUX", None)

    async def run(self, *args: str) -> str:
        out, err, code = await utils.getProcessOutputAndValue(
            self.tmux, ("-S", self.socket, *args), env=self.env, reactor=reactor
        )
        if code != 0:
            raise AssertionError(f"tmux {args} failed ({code}): {err.decode(errors='replace')}")
        return out.decode("utf-8", "replace")

    async def start(self, name: str, command: str) -> None:
        await self.run("new-session", "-d", "-s", name, "-x", "200", "-y", "50", command)

    async def type(self, name: str, text: str) -> None:
        await self.run("send-keys", "-t", name, "-l", text)
        await self.run("send-keys", "-t", name, "Enter")

    async def screen(self, name: str) -> str:
        return await self.run("capture-pane", "-p", "-t", name)

    async def wait_for_text(self, name: str, text: str, timeout: float = STEP) -> str:
        deadline = reactor.seconds() + timeout
        shown = ""
        while reactor.seconds() < deadline:
            shown = await self.screen(name)
            if text in shown:
                return shown
            await task.deferLater(reactor, 0.1, lambda: None)  # poll again shortly
        raise AssertionError(f"{text!r} never appeared in {name}; the screen shows:\n{shown}")

    async def kill(self) -> None:
        await utils.getProcessOutputAndValue(self.tmux, ("-S", self.socket, "kill-server"),
                                             env=self.env, reactor=reactor)


async def expect_showing(python, tmux: Tmux, name: str, *args, **kwargs):
    """``python.expect`` that, on failure, shows what the terminal client's screen says."""
    try:
        return await python.expect(*args, timeout=STEP, **kwargs)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{name}'s screen:\n{await tmux.screen(name)}") from None


def need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (make system-deps installs it)")


@pytest_twisted.async_yield_fixture
async def terminal_setup(tmp_path):
    need("tmux")
    daemon = DaemonProcess(tmp_path, "--name", "term.test", "--network", "TermNet")
    tmux = Tmux(tmp_path)
    try:
        await daemon.wait_listening()
        python = await register(daemon, "pyuser")
        python.send("JOIN #lobby")
        await python.expect("366")
        yield daemon, tmux, python
        python.close()
    finally:
        await tmux.kill()
        await daemon.terminate()


@ensure
async def test_irssi_talks_with_a_python_client(terminal_setup, tmp_path):
    need("irssi")
    daemon, tmux, python = terminal_setup
    await start_irssi(daemon, tmux, tmp_path, "irssiuser")
    await tmux.type("irssi", "/join #lobby")
    await expect_showing(python, tmux, "irssi", "JOIN", "#lobby", source="irssiuser!")
    await tmux.wait_for_text("irssi", "has joined #lobby")

    python.send("PRIVMSG #lobby :hello irssi, from python")
    shown = await tmux.wait_for_text("irssi", "hello irssi, from python")
    assert "pyuser" in shown

    await tmux.type("irssi", "hello python, from irssi")
    await expect_showing(python, tmux, "irssi", "PRIVMSG", "#lobby", "hello python, from irssi",
                         source="irssiuser!")

    python.send("PART #lobby :brb", "JOIN #lobby")
    await tmux.wait_for_text("irssi", "has left #lobby")

    await tmux.type("irssi", "/quit see you")
    quit_ = await expect_showing(python, tmux, "irssi", "QUIT", source="irssiuser!")
    assert quit_.params[0] == "Quit: see you"


async def start_irssi(daemon, tmux: Tmux, tmp_path: Path, nick: str, extra: str = "") -> None:
    """irssi in tmux, connected to the daemon as ``nick``, its pacing and paste holding off;
    ``extra`` is added to its config file."""
    home = tmp_path / "irssi-home"
    home.mkdir()
    # irssi paces its own output (a few commands at once, then one per 2.2 s), and typing that
    # arrives fast looks like a paste to it, which it may hold back; turn both off.
    (home / "config").write_text(
        'settings = { core = { real_name = "irssi user"; user_name = "irssi"; }; '
        '"irc/core" = { cmd_queue_speed = "0msec"; }; '
        '"fe-text" = { paste_detect_time = "0msecs"; }; };\n' + extra
    )
    await tmux.start("irssi", f"irssi --home={home} -c 127.0.0.1 -p {daemon.port} -n {nick}")
    await tmux.wait_for_text("irssi", "Welcome to the TermNet Network")


@ensure
async def test_irssi_users_type_ns_and_cs(terminal_setup, tmp_path):
    """``/ns`` and ``/cs`` (irssi sends them with the aliases docs/operations.md gives, as
    ``NS …``/``CS …``) reach the services, whose NOTICEs it shows; ``/msg nickserv`` in lower
    case too; ``/whois NickServ`` shows a user, not "no such nick"."""
    need("irssi")
    daemon, tmux, python = terminal_setup
    await start_irssi(daemon, tmux, tmp_path, "irssiacct",
                      'aliases = { NS = "quote NS $0-"; CS = "quote CS $0-"; };\n')
    await tmux.type("irssi", "/ns register correct-horse-battery")
    await tmux.wait_for_text("irssi", "irssiacct is now registered to you.", 30)
    await tmux.type("irssi", "/join #irssiroom")
    await tmux.wait_for_text("irssi", "has joined #irssiroom")
    await tmux.type("irssi", "/window 1")  # where irssi shows the services' notices
    await tmux.type("irssi", "/cs register #irssiroom")
    await tmux.wait_for_text("irssi", "#irssiroom is now registered to irssiacct.")
    await tmux.type("irssi", "/cs set #irssiroom description typed in irssi")
    await tmux.wait_for_text("irssi", "description is now: typed in irssi")
    await tmux.type("irssi", "/msg nickserv info")
    await tmux.type("irssi", "/window goto nickserv")  # the query irssi opened for the /msg
    await tmux.wait_for_text("irssi", "irssiacct registered 20")
    await tmux.type("irssi", "/whois NickServ")
    await tmux.wait_for_text("irssi", "Nickname services")


@ensure
async def test_weechat_talks_with_a_python_client(terminal_setup, tmp_path):
    need("weechat")
    daemon, tmux, python = terminal_setup
    home = tmp_path / "weechat-home"
    home.mkdir()
    commands = ";".join([
        f"/server add test 127.0.0.1/{daemon.port}",
        # Plain TCP: WeeChat < 4 calls the option "ssl" (off by default), 4.x "tls" (on by default).
        "/set irc.server.test.ssl off",
        "/set irc.server.test.tls off",
        "/set irc.server.test.nicks weeuser",
        "/set irc.server.test.autojoin #lobby",
        "/connect test",
    ])
    await tmux.start("weechat", f"weechat --dir {home} -r '{commands}'")
    await expect_showing(python, tmux, "weechat", "JOIN", "#lobby", source="weeuser!")
    await tmux.wait_for_text("weechat", "has joined #lobby")

    python.send("PRIVMSG #lobby :hello weechat, from python")
    shown = await tmux.wait_for_text("weechat", "hello weechat, from python")
    assert "pyuser" in shown

    await tmux.type("weechat", "hello python, from weechat")
    await expect_showing(python, tmux, "weechat", "PRIVMSG", "#lobby",
                         "hello python, from weechat", source="weeuser!")

    await tmux.type("weechat", "/quit see you")
    quit_ = await expect_showing(python, tmux, "weechat", "QUIT", source="weeuser!")
    assert quit_.params[0] == "Quit: see you"

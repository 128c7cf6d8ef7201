"""Item 7: the test kit itself: FakeServer's clocks and handshake, and the pytest plugin as a bot
author outside this repository gets it (entry point, no conftest)."""

from __future__ import annotations

import subprocess
import sys

import pytest_twisted
from twisted.internet import task

from twistedchat.bot import Bot, command, every
from twistedchat.bot.testing import FakeServer, advance_clock

AUTHOR_TEST = '''
import pytest_twisted
from twistedchat.bot import Bot, command


class Echo(Bot):
    nickname = "echo"
    channels = ["#lobby"]

    @command("echo")
    def echo(self, event):
        return event.args


@pytest_twisted.ensureDeferred
async def test_echo_on_the_real_daemon(bot_runner, chat_user):
    await bot_runner(Echo())
    alice = await chat_user("alice", "#lobby")
    alice.say("#lobby", "!echo hi there")
    assert await alice.expect_text("#lobby", "echo") == "hi there"
'''


def test_the_plugin_gives_an_outside_project_a_real_daemon(tmp_path):
    (tmp_path / "test_author.py").write_text(AUTHOR_TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_author.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


class Counter(Bot):
    nickname = "counter"

    def __init__(self):
        super().__init__()
        self.count = 0

    @every(10)
    def tick(self):
        self.count += 1

    @command("count")
    def show(self, event):
        return str(self.count)


def test_fake_server_registers_with_the_caps_it_offers_and_keeps_two_clocks():
    bot = Counter()
    server = FakeServer(bot, caps=("multi-prefix", "server-time")).register()
    assert bot.client.enabled_caps == {"multi-prefix", "server-time"}
    assert bot.nick == "counter" and bot.client._registered
    assert server.sent()[:3] == ["CAP LS 302", "NICK counter", "USER counter foo bar :twistedchat bot"]
    server.pacer_clock.advance(100)
    assert bot.count == 0
    server.advance(100)
    assert bot.count == 10
    server.say("alice", "counter", "count")
    assert server.sent() == ["PRIVMSG alice :10"]


def test_advance_clock_fires_each_timer_at_its_own_time():
    clock = task.Clock()
    times = []
    loop = task.LoopingCall(lambda: times.append(clock.seconds()))
    loop.clock = clock
    loop.start(3, now=False)
    advance_clock(clock, 10)
    assert times == [3, 6, 9] and clock.seconds() == 10
    loop.stop()


def readme_bot() -> type[Bot]:
    """The bot in the README's Bots section, run as written."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Bots"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace["KarmaBot"]


@pytest_twisted.ensureDeferred
async def test_the_readme_bot_works_as_written(tmp_path):
    from twistedchat.bot.testing import wait_until

    bot = readme_bot()()
    bot.database = str(tmp_path / "readme.sqlite3")
    server = FakeServer(bot).register().join("#lobby", "alice", "bob", ops=["alice"])
    server.sent()
    got: list[str] = []
    server.say("bob", "#lobby", "!plus alice")
    await wait_until(lambda: got.extend(server.sent()) or got, "the reply")
    server.say("bob", "#lobby", "!reset alice")
    server.say("bob", "#lobby", "!help plus")
    await wait_until(lambda: got.extend(server.sent()) or len(got) >= 3, "two more lines")
    assert got == ["PRIVMSG #lobby :alice has 1",
                   "NOTICE bob :Sorry, you need to be a channel operator to use !reset.",
                   "PRIVMSG #lobby :!plus: Give someone a point: !plus NICK."]
    server.stop()


def test_the_docs_bot_works_as_written():
    from pathlib import Path

    docs = (Path(__file__).resolve().parent.parent / "docs" / "bots.md").read_text()
    code = docs.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/bots.md", "exec"), namespace)
    bot = namespace["DiceBot"]()
    server = FakeServer(bot).register().join("#lobby", "alice", "bob", ops=["alice"])
    server.sent()
    server.say("bob", "#lobby", "!r")
    server.say("bob", "#lobby", "hello there")
    server.say("bob", "#lobby", "hello again")
    server.say("bob", "#lobby", "!op bob")
    server.say("alice", "#lobby", "!op")
    server.user_joins("carol", "#lobby")
    lines = server.sent()
    assert lines[0].startswith("PRIVMSG #lobby :bob rolled ")
    assert lines[1:] == ["PRIVMSG #lobby :hello, bob",
                         "NOTICE bob :Please wait 60 s before using that again.",
                         "NOTICE bob :Sorry, you need to be a channel operator to use !op.",
                         "PRIVMSG #lobby :usage: !op NICK",
                         "PRIVMSG #lobby :Welcome, carol!"]
    server.advance(3600)
    assert server.sent() == ["PRIVMSG #lobby :Another hour of dice."]

"""Item 3: @every and call_later on the bot's own clock (apart from the pacer's); say() while away."""

from __future__ import annotations

import pytest
import pytest_twisted

from twistedchat.bot import Bot, every
from twistedchat.bot.testing import FakeServer


class Ticker(Bot):
    nickname = "ticker"
    channels = ["#lobby"]

    def __init__(self):
        super().__init__()
        self.ticks = 0

    @every(60)
    def tick(self):
        self.ticks += 1
        self.say("#lobby", f"tick {self.ticks}")

    @every(30)
    def broken(self):
        raise RuntimeError("a failing job keeps its schedule")


def test_every_runs_on_the_bot_clock_not_the_pacer_clock():
    bot = Ticker()
    server = FakeServer(bot).register().join("#lobby")
    server.sent()
    server.pacer_clock.advance(600)
    assert bot.ticks == 0
    server.advance(60)
    assert bot.ticks == 1
    assert server.sent() == ["PRIVMSG #lobby :tick 1"]
    server.advance(120)
    assert bot.ticks == 3


def test_jobs_run_while_disconnected_and_what_they_say_waits_for_the_next_sign_on():
    bot = Ticker()
    server = FakeServer(bot).register().join("#lobby")
    server.sent()
    server.disconnect()
    server.advance(120)
    assert bot.ticks == 2
    server.connect().register()
    lines = server.sent()
    assert lines.index("JOIN #lobby") < lines.index("PRIVMSG #lobby :tick 1")
    assert lines[-2:] == ["PRIVMSG #lobby :tick 1", "PRIVMSG #lobby :tick 2"]


def test_failing_jobs_are_logged_and_keep_running():
    bot = Ticker()
    server = FakeServer(bot).register()
    server.advance(90)  # broken ran 3 times, tick once
    assert bot.ticks == 1
    assert len(server.clock.getDelayedCalls()) == 2


def test_call_later_runs_once_and_stopping_cancels_everything():
    bot = Ticker()
    server = FakeServer(bot).register()
    fired = []
    bot.call_later(5, fired.append, "five")
    bot.call_later(50, fired.append, "fifty")
    server.advance(5)
    assert fired == ["five"] and bot.scheduler.pending == 1
    server.stop()
    assert not server.clock.getDelayedCalls()
    server.advance(100)
    assert fired == ["five"]


def test_the_offline_buffer_is_bounded_and_keeps_the_newest():
    class Small(Ticker):
        offline_limit = 3

    bot = Small()
    server = FakeServer(bot, connect=False)
    for n in range(10):
        bot.say("#lobby", f"line {n}")
    server.connect().register()
    assert server.sent()[-3:] == ["PRIVMSG #lobby :line 7", "PRIVMSG #lobby :line 8",
                                  "PRIVMSG #lobby :line 9"]


def test_say_before_the_welcome_waits_for_it():
    bot = Ticker()
    server = FakeServer(bot)
    bot.say("#lobby", "early")
    assert not [line for line in server.sent() if "early" in line]
    server.register()
    assert "PRIVMSG #lobby :early" in server.sent()


def test_every_needs_a_positive_interval():
    with pytest.raises(ValueError):
        every(0)


@pytest_twisted.ensureDeferred
async def test_what_is_said_while_disconnected_arrives_after_the_next_sign_on(bot_runner,
                                                                              chat_user):
    bot = Ticker()
    service = await bot_runner(bot)
    await service.stopService()
    assert bot.client is None
    bot.say("#lobby", "said while away")
    alice = await chat_user("alice", "#lobby")
    service.startService()
    assert await alice.expect_text("#lobby", "ticker") == "said while away"


def test_lines_still_waiting_in_the_pacer_when_the_connection_drops_are_sent_after_reconnecting():
    class Slow(Ticker):
        burst, rate = 1, 0.5

    bot = Slow()
    server = FakeServer(bot).register().join("#lobby")
    server.sent()
    server.pacer_clock.advance(10)
    for n in range(4):
        bot.say("#lobby", f"line {n}")
    assert server.sent(drain=False) == ["PRIVMSG #lobby :line 0"]
    server.disconnect()
    server.connect().register()
    lines = server.sent()
    assert lines[-3:] == ["PRIVMSG #lobby :line 1", "PRIVMSG #lobby :line 2",
                          "PRIVMSG #lobby :line 3"]

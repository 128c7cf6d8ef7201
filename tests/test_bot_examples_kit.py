"""The four community bots in examples/, tested with the shipped kit (twistedchat.bot.testing):
FakeServer for timing and edge cases, the plugin's chat_daemon/bot_runner/chat_user on the real
daemon for the round trip."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet import task

from twistedchat.bot.tap import load_bot
from twistedchat.bot.testing import FakeServer, wait_until

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str, tmp_path: Path | None = None):
    bot = load_bot(EXAMPLES / f"{name}.py")
    if tmp_path is not None:
        bot.database = str(tmp_path / f"{name}.sqlite3")
    return bot


async def in_lobby(bot, *members, ops=()):
    server = FakeServer(bot, channels=["#lobby"]).register().join("#lobby", *members, ops=ops)
    server.sent()
    return server


async def replies(server, count=1, timeout=5.0):
    """The bot's next ``count`` lines (database answers come from a thread, so wait for them)."""
    got: list[str] = []
    await wait_until(lambda: got.extend(server.sent()) or len(got) >= count,
                     f"{count} lines from the bot", timeout)
    return got


# -- reminder ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_reminder_fires_on_the_bot_clock_and_survives_a_restart(tmp_path):
    bot = example("reminder", tmp_path)
    server = await in_lobby(bot, "alice")
    server.say("alice", "#lobby", "!remind 10m tea is ready")
    server.say("alice", "#lobby", "!remind 2h call mum")
    assert await replies(server, 2) == ["PRIVMSG #lobby :alice: I will remind you in 10m.",
                                        "PRIVMSG #lobby :alice: I will remind you in 2h."]
    server.advance(600)
    assert await replies(server) == ["PRIVMSG #lobby :alice: reminder: tea is ready"]
    server.stop()  # the bot goes down with one reminder waiting

    again = example("reminder", tmp_path)
    restarted = FakeServer(again, channels=["#lobby"], connect=False)
    restarted.clock.advance(600)  # the same time line as before the restart
    restarted.connect().register().join("#lobby", "alice")
    await wait_until(lambda: again.scheduler.pending == 1, "the stored reminder is scheduled")
    restarted.advance(2 * 3600 - 600)
    lines = await replies(restarted)
    assert lines[-1] == "PRIVMSG #lobby :alice: reminder: call mum"
    # one database thread: this query runs after the reminder's delete
    assert await again.db.items(prefix="reminder:") == {}
    restarted.stop()


@pytest_twisted.ensureDeferred
async def test_reminder_explains_bad_input_and_limits_each_user(tmp_path):
    bot = example("reminder", tmp_path)
    server = await in_lobby(bot, "alice")
    server.say("alice", "#lobby", "!remind soon tea")
    server.say("alice", "#lobby", "!remind 99d tea")
    assert await replies(server, 2) == ["PRIVMSG #lobby :alice: usage: !remind 10m TEXT",
                                        "PRIVMSG #lobby :alice: at most 30 days ahead, please"]
    for n in range(6):
        server.say("alice", "#lobby", f"!in 1h thing {n}")
        await replies(server)
    server.say("alice", "#lobby", "!in 1h one too many")
    assert await replies(server) == [
        "PRIVMSG #lobby :alice: you have 5 reminders waiting already"]
    server.stop()


# -- karma ------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_karma_counts_votes_across_case_refuses_self_votes_and_is_rate_limited(tmp_path):
    bot = example("karma", tmp_path)
    server = await in_lobby(bot, "alice", "bob")
    server.say("alice", "#lobby", "Bob++ thanks")
    assert await replies(server) == ["PRIVMSG #lobby :Bob has 1 karma"]
    server.say("alice", "#lobby", "bob++")
    assert await replies(server) == ["NOTICE alice :Please wait 30 s before using that again."]
    server.advance(30)
    server.say("alice", "#lobby", "BOB-- alice++")
    assert await replies(server) == [
        "PRIVMSG #lobby :BOB has 0 karma; alice: no voting for yourself"]
    server.say("carol", "#lobby", "!karma bob")
    assert await replies(server) == ["PRIVMSG #lobby :bob has 0 karma"]
    server.say("carol", "#lobby", "c++ is a language, x--y is not a vote")
    assert await replies(server) == ["PRIVMSG #lobby :c has 1 karma"]
    server.stop()


# -- ops helper -------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_ops_helper_obeys_operators_only_and_reports_server_refusals():
    bot = example("opsbot")
    server = await in_lobby(bot, "alice", "bob", ops=["alice"])
    server.say("bob", "#lobby", "!kick alice")
    assert await replies(server) == [
        "NOTICE bob :Sorry, you need to be a channel operator to use !kick."]
    server.say("alice", "#lobby", "!kick bob flooding")
    lines = await replies(server, 2)
    assert lines[0] == "KICK #lobby bob :flooding"
    server.send(":fake.server 482 opsbot #lobby :You're not channel operator",
                f":fake.server PONG fake.server :{lines[1].split(':', 1)[1]}")
    assert await replies(server) == [
        "PRIVMSG #lobby :alice: the server said no: You're not channel operator"]
    server.say("alice", "#lobby", "!topic")
    assert await replies(server) == ["PRIVMSG #lobby :alice: usage: !topic TEXT"]


# -- missed lines -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_missed_keeps_the_last_lines_per_channel_and_sends_them_privately():
    bot = example("missed")
    server = await in_lobby(bot, "alice", "bob")
    for n in range(60):
        server.say("alice", "#lobby", f"line {n}",
                   tags={"time": f"2026-11-30T10:{n % 60:02d}:00.000Z"})
    server.send("@time=2026-11-30T11:00:00.000Z :bob!bob@users.test PRIVMSG #lobby "
                ":\x01ACTION waves\x01")
    server.say("bob", "#lobby", "!missed 3")
    assert server.sent() == ["PRIVMSG bob :[10:58] <alice> line 58",
                             "PRIVMSG bob :[10:59] <alice> line 59",
                             "PRIVMSG bob :[11:00] * bob waves"]
    server.say("bob", "#lobby", "!missed")
    lines = server.sent()
    assert len(lines) == 50 and lines[0] == "PRIVMSG bob :[10:11] <alice> line 11"
    server.say("bob", "missed", "missed")
    assert server.sent() == ["PRIVMSG bob :usage: !missed in the channel you want to catch up on"]


# -- on the real daemon, with the plugin's fixtures -------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_missed_bob_is_not_held_behind_alices_long_catch_up(chat_daemon, bot_runner,
                                                                  chat_user):
    chat_daemon.config.flood_burst = 100  # alice pastes 50 lines at once
    bot = example("missed")
    bot.burst, bot.rate = 2, 20.0
    await bot_runner(bot, channels=["#lobby"])
    alice = await chat_user("alice", "#lobby")
    bob = await chat_user("bob", "#lobby")
    for n in range(50):
        alice.say("#lobby", f"line {n}")
    await wait_until(lambda: len(bot.lines[bot.state.fold("#lobby")]) == 50, "50 lines kept")
    alice.say("#lobby", "!missed")
    await alice.expect_text("alice", "missed")  # her 50 lines have started
    bob.say("#lobby", "!missed 3")
    assert (await bob.expect_text("bob", "missed")).endswith("<alice> line 47")
    assert (await bob.expect_text("bob", "missed")).endswith("<alice> line 48")
    assert (await bob.expect_text("bob", "missed")).endswith("<alice> line 49")
    got = [m for m in alice.messages if m.command == "PRIVMSG" and m.params[0] == "alice"]
    assert len(got) < 20  # bob's three lines came while alice's 50 were still on their way


@pytest_twisted.ensureDeferred
async def test_karma_and_ops_on_the_real_daemon(bot_runner, chat_user, tmp_path):
    karma = example("karma", tmp_path)
    ops = example("opsbot")
    alice = await chat_user("alice", "#lobby")  # first in: operator
    await bot_runner(karma, channels=["#lobby"])
    await bot_runner(ops, channels=["#lobby"])
    bob = await chat_user("bob", "#lobby")
    bob.say("#lobby", "alice++")
    assert await alice.expect_text("#lobby", "karma") == "alice has 1 karma"
    bob.say("#lobby", "!topic mine now")
    assert await bob.expect_text("bob", "opsbot") == \
        "Sorry, you need to be a channel operator to use !topic."
    alice.say("#lobby", "!topic ours")
    assert await alice.expect_text("#lobby", "opsbot") == \
        "alice: the server said no: You're not channel operator"
    alice.send("MODE #lobby +o opsbot")
    await wait_until(lambda: "opsbot" in ops.channel("#lobby").ops, "opsbot is an operator")
    alice.say("#lobby", "!kick bob bye")
    kick = await alice.expect("KICK", "#lobby", "bob")
    assert kick.params[2] == "bye" and kick.source.startswith("opsbot!")
    await wait_until(lambda: len(ops.client.pending) == 0, "the daemon's PONG settles the kick")


@pytest_twisted.ensureDeferred
async def test_reminder_on_the_real_daemon_with_a_fake_bot_clock(bot_runner, chat_user, tmp_path):
    bot = example("reminder", tmp_path)
    bot.clock = task.Clock()  # the bot's timers are fake; its output and the daemon are real
    await bot_runner(bot, channels=["#lobby"])
    alice = await chat_user("alice", "#lobby")
    alice.say("reminder", "remind 1d stretch")
    assert await alice.expect_text("alice", "reminder") == "alice: I will remind you in 1d."
    bot.clock.advance(86400)
    assert await alice.expect_text("alice", "reminder") == "alice: reminder: stretch"

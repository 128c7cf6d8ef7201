"""Item 9: fair per-target queues, max_lines and priority, a learned flood limit, commands that fail."""

from __future__ import annotations

import pytest
import pytest_twisted

from twistedchat.bot import Bot, ServerError
from twistedchat.bot.output import FairQueues, PendingCommands
from twistedchat.bot.testing import FakeServer, wait_until


class Talker(Bot):
    nickname = "talker"
    channels = ["#lobby"]
    burst = 1
    rate = 1.0


def lobby(**options):
    bot = Talker()
    server = FakeServer(bot, **options).register().join("#lobby", "alice", "bob")
    server.sent()
    return bot, server


def test_a_short_answer_to_bob_is_not_held_behind_a_long_dump_to_alice():
    bot, server = lobby()
    for n in range(50):
        bot.say("alice", f"dump {n}")
    for n in range(3):
        bot.say("bob", f"missed {n}")
    lines = server.sent()
    bob_last = lines.index("PRIVMSG bob :missed 2")
    assert bob_last < 8  # one line each in turn: bob is done after about 6 lines, not 53
    assert [line for line in lines if "alice" in line] == [f"PRIVMSG alice :dump {n}" for n in range(50)]


def test_priority_goes_first_and_targets_share_equal_priority_in_turn():
    queues = FairQueues()
    for n in range(3):
        queues.put("a", f"a{n}")
        queues.put("b", f"b{n}")
    queues.put("c", "urgent", priority=5)
    assert [queues.pop() for _ in range(7)] == ["urgent", "a0", "b0", "a1", "b1", "a2", "b2"]
    assert queues.pop() is None


def test_queues_are_capped_per_target_and_in_total():
    queues = FairQueues(per_target=3, total=5)
    assert all(queues.put("a", str(n)) for n in range(3))
    assert not queues.put("a", "too many")
    assert queues.put("b", "1") and queues.put("b", "2")
    assert not queues.put("c", "over the total")
    assert len(queues) == 5


def test_say_drops_lines_over_the_target_limit():
    class Capped(Talker):
        queue_limit = 5

    bot = Capped()
    server = FakeServer(bot).register()
    server.sent()
    for n in range(20):
        bot.say("alice", f"line {n}")
    assert len(server.sent()) == 5  # the pacer had no token left: five waited, the rest dropped


def test_max_lines_cuts_a_long_text_and_marks_the_cut():
    bot, server = lobby()
    bot.say("#lobby", " ".join(f"word{n}" for n in range(400)), max_lines=2)
    lines = server.sent()
    assert len(lines) == 2 and lines[-1].endswith(" …")


def test_event_reply_passes_output_options():
    from twistedchat.bot import command

    class Replier(Talker):
        @command("long")
        def long(self, event):
            event.reply("x " * 2000, max_lines=1)

    bot = Replier()
    server = FakeServer(bot).register().join("#lobby", "alice")
    server.sent()
    server.say("alice", "#lobby", "!long")
    assert len(server.sent()) == 1


def test_a_flood_limit_the_server_announces_is_kept():
    class Fast(Talker):
        burst, rate = 100, 100.0

    bot = Fast()
    server = FakeServer(bot, isupport=("PREFIX=(ov)@+", "FLOODLIMIT=2:0.5")).register()
    server.sent()
    for n in range(6):
        bot.say("#lobby", f"line {n}")
    assert len(server.sent(drain=False)) == 2
    server.pacer_clock.advance(2)
    assert server.sent(drain=False) == ["PRIVMSG #lobby :line 2"]


def test_kick_topic_mode_ban_succeed_at_the_barrier():
    bot, server = lobby()
    results = []
    bot.kick("#lobby", "bob", "bye").addCallback(results.append)
    bot.topic("#lobby", "new topic").addCallback(results.append)
    bot.mode("#lobby", "+v", "alice").addCallback(results.append)
    server.send(":bob!bob@hidden.example PRIVMSG #lobby :hi")
    bot.ban("#lobby", "bob").addCallback(results.append)
    bot.ban("#lobby", "stranger").addCallback(results.append)
    lines = server.sent()
    assert [line for line in lines if not line.startswith("PING")] == [
        "KICK #lobby bob :bye", "TOPIC #lobby :new topic", "MODE #lobby +v alice",
        "MODE #lobby +b *!*@hidden.example", "MODE #lobby +b stranger!*@*"]
    for line in lines:
        if line.startswith("PING"):
            server.send(f":fake.server PONG fake.server :{line.split(':', 1)[1]}")
    assert results == [None] * 5


def test_server_errors_fail_the_matching_command():
    bot, server = lobby()
    failures = []
    kick = bot.kick("#lobby", "bob")
    kick.addErrback(failures.append)
    topic = bot.topic("#lobby", "x")
    topic.addErrback(failures.append)
    lines = server.sent()
    server.send(":fake.server 482 talker #lobby :You're not channel operator",
                ":fake.server 482 talker #lobby :You're not channel operator")
    for line in lines:
        if line.startswith("PING"):
            server.send(f":fake.server PONG fake.server :{line.split(':', 1)[1]}")
    assert [f.value.code for f in failures] == ["482", "482"]
    assert isinstance(failures[0].value, ServerError)
    assert "not channel operator" in str(failures[0].value)


def test_a_ban_from_join_fails_join_and_unmatched_errors_reach_server_error():
    class Noting(Talker):
        def __init__(self):
            super().__init__()
            self.errors = []

        def server_error(self, code, params):
            self.errors.append((code, params[1]))

    bot = Noting()
    server = FakeServer(bot).register()
    server.sent()
    failures = []
    bot.join("#closed").addErrback(failures.append)
    server.send(":fake.server 474 talker #closed :Cannot join channel (+b)",
                ":fake.server 401 talker nobody :No such nick/channel")
    assert failures[0].value.code == "474"
    assert bot.errors == [("401", "nobody")]


def test_pending_commands_fail_when_the_connection_drops_and_are_bounded():
    bot, server = lobby()
    failures = []
    bot.topic("#lobby", "x").addErrback(failures.append)
    server.disconnect()
    assert failures and isinstance(failures[0].value, ConnectionError)
    pending = PendingCommands(str.lower)
    for _ in range(100):
        pending.add(["#a"], ["482"])
    with pytest.raises(ServerError):
        pending.add(["#a"], ["482"])


def test_commands_while_disconnected_fail_at_once():
    bot = Talker()
    failures = []
    bot.kick("#lobby", "bob").addErrback(failures.append)
    assert isinstance(failures[0].value, ConnectionError)


def test_nothing_a_bot_is_given_can_break_out_of_its_line():
    bot, server = lobby()
    failures = []
    bot.say("bob\r\nQUIT", "x")
    bot.say("#lobby", "one\r\ntwo\nthree")
    bot.kick("#lobby", "bob\nQUIT").addErrback(failures.append)
    bot.join("#x :y").addErrback(failures.append)
    bot.topic("#lobby", "a\r\nQUIT :b")
    lines = [line for line in server.sent() if not line.startswith("PING")]
    assert lines == ["PRIVMSG #lobby :one", "PRIVMSG #lobby :two", "PRIVMSG #lobby :three",
                     "TOPIC #lobby :a QUIT :b"]
    assert [type(f.value) for f in failures] == [ValueError, ValueError]


@pytest_twisted.ensureDeferred
async def test_the_daemons_401_474_and_482_reach_the_bot(bot_runner, chat_user):
    class Listener(Talker):
        burst, rate = 10, 10.0

        def __init__(self):
            super().__init__()
            self.errors = []

        def server_error(self, code, params):
            self.errors.append(code)

    alice = await chat_user("alice", "#lobby", "#closed")
    alice.send("MODE #closed +b talker!*@*", "MODE #lobby -t")
    await alice.expect("MODE", "#lobby", "-t")
    bot = Listener()
    await bot_runner(bot, channels=["#lobby"])
    with pytest.raises(ServerError) as banned:
        await bot.join("#closed")
    assert banned.value.code == "474"
    with pytest.raises(ServerError) as not_op:
        await bot.kick("#lobby", "alice")
    assert not_op.value.code == "482"
    await bot.topic("#lobby", "anyone may set this")  # -t: accepted
    await alice.expect("TOPIC", "#lobby", "anyone may set this")
    bot.say("nobody", "hello?")
    await wait_until(lambda: bot.errors == ["401"], "the 401 reaches server_error")

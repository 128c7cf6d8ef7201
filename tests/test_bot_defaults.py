"""Item 10: CTCP VERSION, QUIT on stop, rejoin after a kick, logging under the class name,
the error reply, and bot mode +B."""

from __future__ import annotations

from twisted.logger import globalLogPublisher

from twistedchat.bot import Bot, command
from twistedchat.bot.testing import FakeServer


class Plain(Bot):
    nickname = "plain"
    channels = ["#lobby"]

    @command("fail")
    def fail(self, event):
        raise ValueError("no luck")


def lobby(bot=None, **options):
    bot = bot or Plain()
    server = FakeServer(bot, **options).register().join("#lobby", "alice")
    server.sent()
    return bot, server


def test_ctcp_version_answers_with_the_bot_version_and_no_trailing_colons():
    class Versioned(Plain):
        version = "plainbot 2.1"

    bot, server = lobby(Versioned())
    server.send(":alice!a@h PRIVMSG plain :\x01VERSION\x01")
    assert server.sent() == ["NOTICE alice :\x01VERSION plainbot 2.1\x01"]
    bot, server = lobby()
    server.send(":alice!a@h PRIVMSG plain :\x01VERSION\x01")
    assert server.sent() == ["NOTICE alice :\x01VERSION twistedchat bot 0.1.0\x01"]


def test_stopping_says_quit_past_the_pacer():
    class Slow(Plain):
        burst, rate = 1, 0.01
        quit_message = "see you"

    bot, server = lobby(Slow())
    for n in range(5):
        bot.say("#lobby", f"line {n}")
    server.stop()
    assert "QUIT :see you" in server.sent(drain=False)


def test_the_bot_rejoins_after_a_kick_by_default_and_keeps_the_channel_for_reconnects():
    bot, server = lobby()
    server.send(":alice!a@h KICK #lobby plain :out")
    assert "#lobby" not in bot.joined_channels
    assert "#lobby" in [c.lower() for c in server.factory.channels]
    server.advance(bot.rejoin_after_kick - 1)
    assert not [line for line in server.sent() if line.startswith("JOIN")]
    server.advance(1)
    assert "JOIN #lobby" in server.sent()


def test_rejoin_after_kick_can_be_turned_off():
    class Stays(Plain):
        rejoin_after_kick = -1

    bot, server = lobby(Stays())
    server.send(":alice!a@h KICK #lobby plain :out")
    server.advance(3600)
    assert not [line for line in server.sent() if line.startswith("JOIN")]
    assert "#lobby" not in [c.lower() for c in server.factory.channels]


def test_lifecycle_and_handler_errors_are_logged_under_the_class_name_with_the_line():
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        bot, server = lobby()
        server.say("alice", "#lobby", "!fail now")
        server.send(":alice!a@h KICK #lobby plain :out")
    finally:
        globalLogPublisher.removeObserver(events.append)
    mine = [e for e in events if e.get("log_namespace") == "Plain"]
    formats = [e["log_format"] for e in mine]
    assert "signed on as {nick}" in formats and "joined {channel}" in formats
    assert "kicked from {channel} by {kicker}: {reason}" in formats
    failure = next(e for e in mine if "failed on" in e["log_format"])
    assert failure["text"] == "!fail now" and failure["user"] == "alice!alice@users.test"
    assert server.sent() == []  # no error reply unless asked for


def test_an_error_reply_tells_the_user():
    class Apologetic(Plain):
        error_reply = "sorry, that went wrong (logged)."

    bot, server = lobby(Apologetic())
    server.say("alice", "#lobby", "!fail")
    assert server.sent() == ["PRIVMSG #lobby :alice: sorry, that went wrong (logged)."]


def test_bot_mode_is_set_when_the_server_advertises_it():
    bot = Plain()
    server = FakeServer(bot, isupport=("PREFIX=(ov)@+", "BOT=B")).register()
    assert "MODE plain +B" in server.sent()
    bot = Plain()
    server = FakeServer(bot).register()
    assert not [line for line in server.sent() if line.startswith("MODE")]

    class Human(Plain):
        bot_mode = False

    server = FakeServer(Human(), isupport=("BOT=B",)).register()
    assert not [line for line in server.sent() if line.startswith("MODE")]


def test_server_errors_nobody_waits_for_are_logged_under_the_bot():
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        bot, server = lobby()
        server.send(":fake.server 474 plain #closed :Cannot join channel (+b)")
    finally:
        globalLogPublisher.removeObserver(events.append)
    logged = [e for e in events if e.get("log_namespace") == "Plain"
              and e["log_format"].startswith("server error")]
    assert "474 #closed: Cannot join channel (+b)" in logged[0]["error"]


def test_two_bots_in_one_process_log_under_their_own_class_names():
    class First(Plain):
        nickname = "first"

    class Second(Plain):
        nickname = "second"

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        FakeServer(First()).register()
        FakeServer(Second()).register()
    finally:
        globalLogPublisher.removeObserver(events.append)
    signed_on = {(e["log_namespace"], e.get("nick")) for e in events
                 if e.get("log_format") == "signed on as {nick}"}
    assert signed_on == {("First", "first"), ("Second", "second")}


def test_join_succeeds_at_the_barrier_and_is_remembered_for_reconnects():
    bot, server = lobby()
    joined = []
    bot.join("#games").addCallback(joined.append)
    lines = server.sent()
    assert lines[0] == "JOIN #games"
    server.send(":plain!plain@users.test JOIN #games",
                f":fake.server PONG fake.server :{lines[1].split(':', 1)[1]}")
    assert joined == [None] and "#games" in bot.joined_channels
    server.disconnect()
    server.connect().register()
    assert "JOIN #games" in server.sent()


def test_ctcp_queries_are_answered_once_per_ten_seconds_per_nick_but_actions_always_pass():
    from twistedchat.bot import on_message

    class Hearing(Plain):
        heard: list = []

        @on_message()
        def hear(self, event):
            self.heard.append(event.text)

    bot, server = lobby(Hearing())
    for _ in range(5):
        server.send(":alice!a@h PRIVMSG plain :\x01VERSION\x01",
                    ":alice!a@h PRIVMSG plain :\x01PING 123\x01",
                    ":alice!a@h PRIVMSG #lobby :\x01ACTION waves\x01")
    server.send(":bob!b@h PRIVMSG plain :\x01VERSION\x01")
    assert server.sent() == ["NOTICE alice :\x01VERSION twistedchat bot 0.1.0\x01",
                             "NOTICE bob :\x01VERSION twistedchat bot 0.1.0\x01"]
    assert bot.heard == ["waves"] * 5
    server.advance(10)
    server.send(":alice!a@h PRIVMSG plain :\x01PING 9\x01")
    assert server.sent() == ["NOTICE alice :\x01PING 9\x01"]

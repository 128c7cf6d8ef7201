"""The bot API without sockets: dispatch to decorated handlers, replies, pacing, nick reclaiming."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task
from twisted.internet.testing import StringTransport

from twistedchat.bot import Bot, BotFactory, command, on_join, on_message
from twistedchat.wire.message import MAX_LINE_BYTES

WELCOME = ":test.server 001 {nick} :Welcome to TestNet {nick}!bot@127.0.0.1"


class Sample(Bot):
    nickname = "sample"
    channels = ["#lobby"]

    def __init__(self):
        super().__init__()
        self.seen = []

    @command("roll")
    def roll(self, event):
        return f"{event.nick} rolled 4 ({event.args or 'no args'})"

    @command("later")
    async def later(self, event):
        await defer.succeed(None)
        return "done later"

    @command("broken")
    def broken(self, event):
        raise RuntimeError("boom")

    @on_message(r"\bhello\b")
    def hello(self, event):
        self.seen.append(("hello", event.nick, event.channel, event.match.group(0)))

    @on_message()
    def everything(self, event):
        self.seen.append(("any", event.nick, event.channel, event.text, event.action,
                          event.tags))

    @on_join
    def greet(self, event):
        self.seen.append(("join", event.user, event.channel))
        event.reply(f"hi {event.nick}")


def connect(bot: Bot, nickname: str | None = None, **kwargs):
    clock = task.Clock()
    factory = BotFactory(bot, nickname=nickname, clock=clock, **kwargs)
    client = factory.buildProtocol(None)
    transport = StringTransport()
    client.makeConnection(transport)
    return clock, client, transport


def feed(client, *lines: str) -> None:
    for line in lines:
        client.dataReceived(line.encode() + b"\r\n")


def sent(transport: StringTransport) -> list[str]:
    lines = transport.value().decode().split("\r\n")[:-1]
    transport.clear()
    return lines


def signed_on(bot: Bot, nick: str = "sample"):
    clock, client, transport = connect(bot)
    feed(client, ":test.server CAP * LS :multi-prefix", ":test.server CAP * ACK :multi-prefix",
         WELCOME.format(nick=nick), f":{nick}!bot@127.0.0.1 JOIN #lobby")
    clock.advance(60)  # let the registration burst drain
    sent(transport)
    return clock, client, transport


def test_command_in_channel_replies_in_channel():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    feed(client, ":alice!a@h PRIVMSG #lobby :!roll 2d6")
    assert sent(transport) == ["PRIVMSG #lobby :alice rolled 4 (2d6)"]


def test_command_in_private_needs_no_prefix_and_replies_privately():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    feed(client, ":alice!a@h PRIVMSG sample :roll", ":alice!a@h PRIVMSG sample :!ROLL 1d4")
    assert sent(transport) == ["PRIVMSG alice :alice rolled 4 (no args)",
                               "PRIVMSG alice :alice rolled 4 (1d4)"]


def test_unprefixed_text_in_a_channel_is_not_a_command():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    feed(client, ":alice!a@h PRIVMSG #lobby :roll", ":alice!a@h PRIVMSG #lobby :!nosuch")
    assert sent(transport) == []


def test_coroutine_handlers_reply_and_failing_handlers_are_logged_not_fatal():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    feed(client, ":alice!a@h PRIVMSG #lobby :!broken", ":alice!a@h PRIVMSG #lobby :!later")
    assert sent(transport) == ["PRIVMSG #lobby :done later"]
    assert client.transport.connected


def test_message_handlers_see_who_said_what_with_tags_and_actions():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    feed(client,
         "@time=2026-11-25T00:00:00.000Z :alice!a@h PRIVMSG #lobby :well hello there",
         ":bob!b@h PRIVMSG sample :\x01ACTION waves\x01")
    assert bot.seen == [
        ("hello", "alice", "#lobby", "hello"),
        ("any", "alice", "#lobby", "well hello there", False,
         {"time": "2026-11-25T00:00:00.000Z"}),
        ("any", "bob", None, "waves", True, {}),
    ]


def test_on_join_fires_for_others_not_for_the_bot():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    feed(client, ":sample!bot@127.0.0.1 JOIN #other", ":carol!c@h JOIN #lobby")
    assert sent(transport) == ["PRIVMSG #lobby :hi carol"]
    assert bot.seen == [("join", "carol!c@h", "#lobby")]
    assert bot.joined_channels == {"#lobby", "#other"}


def test_long_reply_is_split_to_fit_the_relayed_line():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    text = "dé " * 399 + "dé"
    bot.say("#lobby", text)
    clock.advance(60)
    lines = sent(transport)
    assert len(lines) > 2
    source = "sample!bot@127.0.0.1"  # learned from our own JOIN
    for line in lines:
        relayed = f":{source} {line}\r\n".encode()
        assert len(relayed) <= MAX_LINE_BYTES
    assert len(f":{source} {lines[0]}\r\n".encode()) > MAX_LINE_BYTES - 4
    assert " ".join(line.split(" :", 1)[1] for line in lines) == text


def test_output_is_paced_and_pong_goes_first():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    for n in range(30):
        bot.say("#lobby", f"line {n}")
    feed(client, "PING :abc")
    first = sent(transport)
    assert len(first) == Sample.burst
    clock.advance(1 / Sample.rate)
    assert sent(transport) == ["PONG abc"]
    clock.pump([1 / Sample.rate] * 40)
    rest = sent(transport)
    assert first + rest == [f"PRIVMSG #lobby :line {n}" for n in range(30)]


def test_nick_taken_uses_another_then_reclaims_it_periodically():
    bot = Sample()
    clock, client, transport = connect(bot)
    feed(client, ":test.server CAP * LS :", ":test.server 433 * sample :Nickname is already in use")
    clock.advance(60)
    assert "NICK sample_" in sent(transport)
    feed(client, WELCOME.format(nick="sample_"))
    clock.advance(bot.nick_retry)
    assert "NICK sample" in sent(transport)
    feed(client, ":test.server 433 sample_ sample :Nickname is already in use")
    clock.advance(bot.nick_retry)
    assert "NICK sample" in sent(transport)
    feed(client, ":sample_!bot@h NICK sample")
    assert client.nickname == "sample"
    clock.advance(bot.nick_retry * 3)
    assert sent(transport) == []
    assert not clock.getDelayedCalls()


def test_nick_is_reclaimed_at_once_when_the_holder_quits_or_renames():
    for gone in (":sample!x@h QUIT :bye", ":sample!x@h NICK other"):
        bot = Sample()
        clock, client, transport = connect(bot)
        feed(client, ":test.server CAP * LS :", ":test.server 433 * sample :in use",
             WELCOME.format(nick="sample_"), ":sample_!bot@h JOIN #lobby")
        clock.advance(1)
        sent(transport)
        feed(client, gone)
        clock.advance(1)
        assert sent(transport) == ["NICK sample"]


def test_disconnect_forgets_the_client_and_stops_timers():
    bot = Sample()
    clock, client, transport = signed_on(bot)
    for n in range(30):
        bot.say("#lobby", f"line {n}")
    assert bot.client is client
    client.connectionLost(None)
    assert bot.client is None and bot.joined_channels == set()
    assert not clock.getDelayedCalls()
    bot.say("#lobby", "nobody hears this")  # logged and dropped, no error


def test_factory_uses_the_bot_defaults_unless_overridden():
    factory = BotFactory(Sample(), clock=task.Clock())
    assert (factory.nickname, factory.channels) == ("sample", ["#lobby"])
    factory = BotFactory(Sample(), nickname="other", channels=["#a", "#b"], clock=task.Clock())
    assert (factory.nickname, factory.channels) == ("other", ["#a", "#b"])


def test_command_names_are_one_word():
    with pytest.raises(ValueError):
        command("two words")

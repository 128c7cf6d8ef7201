"""Item 1: channel state on the bot, the real nick, the new events, a pluggable client class."""

from __future__ import annotations

import pytest_twisted

from twistedchat.bot import (
    Bot,
    BotClient,
    on_kick,
    on_message,
    on_mode,
    on_nick,
    on_notice,
    on_part,
    on_quit,
    on_topic,
)
from twistedchat.bot.state import ChannelTracker, parse_modes
from twistedchat.bot.testing import FakeServer, wait_until


class Watcher(Bot):
    nickname = "watcher"
    channels = ["#lobby"]

    def __init__(self):
        super().__init__()
        self.seen = []

    @on_part
    def parted(self, event):
        self.seen.append(("part", event.nick, event.channel, event.text))

    @on_quit
    def quitted(self, event):
        self.seen.append(("quit", event.nick, event.channels, event.text))

    @on_kick
    def kicked_someone(self, event):
        self.seen.append(("kick", event.nick, event.channel, event.target, event.text))

    @on_nick
    def renamed(self, event):
        self.seen.append(("nick", event.nick, event.new_nick, event.channels))

    @on_mode
    def moded(self, event):
        self.seen.append(("mode", event.nick, event.channel, event.modes))

    @on_topic
    def topiced(self, event):
        self.seen.append(("topic", event.nick, event.channel, event.text))

    @on_notice
    def noticed(self, event):
        self.seen.append(("notice", event.nick, event.channel, event.text))


def lobby(bot=None, **options):
    bot = bot or Watcher()
    server = FakeServer(bot, **options).register()
    server.join("#lobby", "alice", "bob", "carol", ops=["alice"], voiced=["bob"], topic="Welcome")
    server.sent()
    return bot, server


def test_members_ops_voiced_and_topic_come_from_names_and_332():
    bot, server = lobby()
    channel = bot.channel("#LOBBY")
    assert channel.members == {"watcher", "alice", "bob", "carol"}
    assert channel.ops == {"alice"}
    assert channel.voiced == {"bob"}
    assert channel.topic == "Welcome"


def test_joins_parts_kicks_quits_and_renames_keep_the_member_list_and_fire_events():
    bot, server = lobby()
    server.user_joins("dave", "#lobby")
    server.send(":bob!bob@users.test PART #lobby :lunch",
                ":alice!alice@users.test KICK #lobby carol :spam",
                ":dave!dave@users.test NICK David",
                ":David!dave@users.test QUIT :gone")
    assert bot.channel("#lobby").members == {"watcher", "alice"}
    assert bot.seen == [
        ("part", "bob", "#lobby", "lunch"),
        ("kick", "alice", "#lobby", "carol", "spam"),
        ("nick", "dave", "David", ["#lobby"]),
        ("quit", "David", ["#lobby"], "gone"),
    ]


def test_mode_changes_follow_prefix_and_chanmodes_and_fire_on_mode():
    bot, server = lobby()
    server.send(":alice!alice@users.test MODE #lobby +o-v+k+l bob bob secret 10")
    channel = bot.channel("#lobby")
    assert channel.ops == {"alice", "bob"} and channel.voiced == set()
    assert channel.modes == {"k": "secret", "l": "10"}
    assert bot.seen == [("mode", "alice", "#lobby",
                         [("+o", "bob"), ("-v", "bob"), ("+k", "secret"), ("+l", "10")])]


def test_topic_change_and_notices_fire_events():
    bot, server = lobby()
    server.send(":alice!alice@users.test TOPIC #lobby :New topic",
                ":bob!bob@users.test NOTICE #lobby :hear ye",
                ":bob!bob@users.test NOTICE watcher :psst",
                ":fake.server NOTICE watcher :server notices are not user notices")
    assert bot.channel("#lobby").topic == "New topic"
    assert bot.seen == [("topic", "alice", "#lobby", "New topic"),
                        ("notice", "bob", "#lobby", "hear ye"),
                        ("notice", "bob", None, "psst")]


def test_the_bot_leaving_drops_the_channel_state():
    bot, server = lobby()
    server.send(":watcher!watcher@users.test PART #lobby")
    assert bot.channel("#lobby") is None and bot.joined_channels == set()


def test_nick_is_the_real_nick_and_nickname_follows_the_override():
    bot = Watcher()
    server = FakeServer(bot, nick="other", channels=["#elsewhere"]).register("other_")
    assert bot.nickname == "other"  # --nick overrides the class value on the instance
    assert bot.channels == ["#elsewhere"] and Watcher.channels == ["#lobby"]
    assert bot.nick == "other_"
    server.send(":other_!w@h NICK other")
    assert bot.nick == "other"


def test_casemapping_folds_nicks_in_the_state():
    bot, server = lobby()
    server.user_joins("[Dan]", "#lobby")
    assert bot.state.person("{dan}").nick == "[Dan]"
    assert bot.state.has_mode_at_least("#LoBbY", "ALICE", "o")


def test_prefix_ranks_above_op_count_as_op():
    tracker = ChannelTracker("me")
    tracker.set_prefix([("q", "~"), ("a", "&"), ("o", "@"), ("h", "%"), ("v", "+")])
    tracker.joined("#c", "me!m@h")
    tracker.names("#c", [("~", "owner"), ("%", "half"), ("+", "voice")])
    assert tracker.has_mode_at_least("#c", "owner", "o")
    assert not tracker.has_mode_at_least("#c", "half", "o")
    assert tracker.has_mode_at_least("#c", "half", "v")
    assert not tracker.has_mode_at_least("#c", "voice", "o")


def test_parse_modes_tolerates_missing_arguments():
    assert parse_modes("+ob", ["alice"], (("o", "@"),), ("b", "k", "l", "imnst")) == [
        ("+o", "alice"), ("+b", None)]


def test_people_who_leave_every_shared_channel_are_forgotten():
    bot, server = lobby()
    server.send(":carol!carol@users.test PART #lobby")
    assert bot.state.person("carol") is None


class LoudClient(BotClient):
    """A client subclass a bot may name."""

    heard: list[str] = []

    def lineReceived(self, line):
        LoudClient.heard.append(line.decode() if isinstance(line, bytes) else line)
        super().lineReceived(line)


def test_the_client_class_is_pluggable():
    class Pluggable(Watcher):
        client_class = LoudClient

    LoudClient.heard = []
    bot = Pluggable()
    server = FakeServer(bot).register()
    assert isinstance(server.client, LoudClient)
    assert any(" 001 " in line for line in LoudClient.heard)


def test_hosts_come_from_userhost_in_names():
    bot = Watcher()
    server = FakeServer(bot).register()
    server.send(":watcher!w@h JOIN #lobby",
                ":fake.server 353 watcher = #lobby :watcher @alice!al@alice.example +bob!b@bob.example",
                ":fake.server 366 watcher #lobby :End of /NAMES list")
    assert bot.channel("#lobby").ops == {"alice"} and bot.channel("#lobby").voiced == {"bob"}
    assert bot.state.person("alice").host == "alice.example"
    assert bot.state.person("bob").source == "bob!b@bob.example"


def test_the_bot_never_hears_itself():
    class Echo(Watcher):
        @on_message()
        def echo(self, event):
            return event.text

    bot = Echo()
    server = FakeServer(bot, caps=("echo-message", "multi-prefix")).register()
    assert bot.client.enabled_caps == {"multi-prefix"}
    server.join("#lobby", "alice")
    server.sent()
    server.say("watcher", "#lobby", "my own line")
    assert server.sent() == []
    server.say("alice", "#lobby", "hi")
    assert server.sent() == ["PRIVMSG #lobby :hi"]


@pytest_twisted.ensureDeferred
async def test_channel_state_and_events_on_the_real_daemon(bot_runner, chat_user):
    alice = await chat_user("alice", "#lobby")  # first in: operator
    bot = Watcher()
    await bot_runner(bot)
    bob = await chat_user("bob", "#lobby")
    await wait_until(lambda: "bob" in bot.channel("#lobby").members, "bob is seen joining")
    assert bot.channel("#lobby").ops == {"alice"}
    alice.send("MODE #lobby +v bob", "TOPIC #lobby :fresh")
    await wait_until(lambda: bot.channel("#lobby").topic == "fresh", "the topic arrives")
    assert bot.channel("#lobby").voiced == {"bob"}
    source = bot.state.person("bob").source  # others see a cloak, never the address
    assert source.startswith("bob!~bob@") and source.endswith(".ip") and "127.0.0.1" not in source
    bob.send("NICK robert", "PART #lobby :later")
    await wait_until(lambda: "robert" not in bot.channel("#lobby").members
                     and "bob" not in bot.channel("#lobby").members, "robert leaves")
    alice.send("QUIT :done")
    await wait_until(lambda: bot.channel("#lobby").members == {"watcher"}, "everyone left")
    kinds = [seen[0] for seen in bot.seen]
    assert kinds == ["mode", "topic", "nick", "part", "quit"]
    assert bot.seen[2] == ("nick", "bob", "robert", ["#lobby"])

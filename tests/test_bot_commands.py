"""Item 6: help from docstrings and @example, aliases, addressing, event.argv and event.matches."""

from __future__ import annotations

from twistedchat.bot import Bot, command, example, on_message
from twistedchat.bot.testing import FakeServer


class Helper(Bot):
    nickname = "helper"
    channels = ["#lobby"]

    def __init__(self):
        super().__init__()
        self.seen = []

    @command("remind", aliases=["r"])
    @example("!remind 10m tea")
    @example('!remind 1h "call mum"')
    def remind(self, event):
        """Remind you of something later.

        More text that help does not show.
        """
        return f"argv={event.argv}"

    @command("plain")
    def plain(self, event):
        return "plain"

    @on_message(r"(\w+)\+\+")
    def karma(self, event):
        self.seen.append((event.command, [m.group(1) for m in event.matches]))


def lobby():
    bot = Helper()
    server = FakeServer(bot).register().join("#lobby", "alice")
    server.sent()
    return bot, server


def test_help_lists_commands_and_explains_one_from_its_docstring_and_examples():
    bot, server = lobby()
    server.say("alice", "#lobby", "!help")
    server.say("alice", "#lobby", "!help remind")
    server.say("alice", "#lobby", "!help !r")
    server.say("alice", "#lobby", "!help plain")
    server.say("alice", "#lobby", "!help nosuch")
    assert server.sent() == [
        "PRIVMSG #lobby :Commands: !plain, !remind. Say !help COMMAND for more.",
        'PRIVMSG #lobby :!remind: Remind you of something later. Also: !r. '
        'Example: !remind 10m tea | !remind 1h "call mum"',
        'PRIVMSG #lobby :!remind: Remind you of something later. Also: !r. '
        'Example: !remind 10m tea | !remind 1h "call mum"',
        "PRIVMSG #lobby :!plain: no description",
        "PRIVMSG #lobby :No command !nosuch. Say !help for the list.",
    ]


def test_a_bot_may_turn_help_off_or_define_its_own():
    class Quiet(Helper):
        help_command = False

    bot = Quiet()
    server = FakeServer(bot).register().join("#lobby", "alice")
    server.sent()
    server.say("alice", "#lobby", "!help")
    assert server.sent() == []


def test_aliases_and_addressing_by_nick_reach_the_command():
    bot, server = lobby()
    server.say("alice", "#lobby", "!r 5m tea")
    server.say("alice", "#lobby", "helper: remind 5m tea")
    server.say("alice", "#lobby", "HELPER, plain")
    server.say("alice", "#lobby", "someoneelse: plain")
    assert server.sent() == ["PRIVMSG #lobby :argv=['5m', 'tea']",
                             "PRIVMSG #lobby :argv=['5m', 'tea']",
                             "PRIVMSG #lobby :plain"]


def test_argv_groups_quoted_words_and_survives_a_lone_quote():
    bot, server = lobby()
    server.say("alice", "#lobby", '!remind 1h "call mum" now')
    server.say("alice", "#lobby", "!remind it's fine")
    assert server.sent() == ["PRIVMSG #lobby :argv=['1h', 'call mum', 'now']",
                             "PRIVMSG #lobby :argv=[\"it's\", 'fine']"]


def test_message_handlers_get_every_match_and_the_command_name():
    bot, server = lobby()
    server.say("alice", "#lobby", "bob++ and carol++ and dave++")
    server.say("alice", "#lobby", "!plain x++")
    assert bot.seen == [(None, ["bob", "carol", "dave"]), ("plain", ["x"])]


def test_matches_are_capped():
    bot, server = lobby()
    server.say("alice", "#lobby", " ".join(f"n{i}++" for i in range(150)))
    assert len(bot.seen[0][1]) == 100

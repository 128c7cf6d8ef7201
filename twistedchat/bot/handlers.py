"""The decorators that mark a bot's handlers, the :class:`Event` they get, and command lines.

A decorator only records what it means on the function (it returns the function itself), so
``@command``, ``@require``, ``@rate`` and ``@example`` stack in any order.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twistedchat.bot.core import Bot

HANDLERS_ATTRIBUTE = "_twistedchat_bot_handlers"
EXAMPLES_ATTRIBUTE = "_twistedchat_bot_examples"
#: Events a bot can subscribe to with ``@on_<name>`` beside messages and commands.
EVENT_NAMES = ("join", "part", "quit", "kick", "nick", "mode", "topic", "notice")
#: At most this many matches of an ``@on_message`` pattern are collected for ``event.matches``.
MAX_MATCHES = 100

Handler = Callable[..., Any]


def mark(function: Handler, kind: str, argument: Any) -> Handler:
    """Record on ``function`` that it handles ``kind`` (with ``argument``)."""
    marks = list(getattr(function, HANDLERS_ATTRIBUTE, []))
    marks.append((kind, argument))
    setattr(function, HANDLERS_ATTRIBUTE, marks)
    return function


def command(name: str, *, aliases: tuple[str, ...] | list[str] = ()) -> Callable[[Handler], Handler]:
    """Handle ``!name args`` (the bot's :attr:`Bot.prefix`) or ``botnick: name args`` in a channel,
    ``name args`` in private. ``aliases`` are other names for the same command.

    ``event.command`` is the name, ``event.args`` the rest of the line and ``event.argv`` its
    words (quotes group words). The first line of the docstring is the command's ``help``.
    """
    names = [name, *aliases]
    for one in names:
        if not one or any(c.isspace() for c in one):
            raise ValueError(f"a command name is one word, not {one!r}")
    return lambda function: mark(function, "command", tuple(n.lower() for n in names))


def on_message(pattern: str | re.Pattern[str] | None = None) -> Callable[[Handler], Handler]:
    """Handle every message (channel or private) whose text matches ``pattern`` (``re.search``).

    Without a pattern, every message. ``event.match`` is the first match object and
    ``event.matches`` all of them. Actions (``/me``) count as messages with ``event.action``
    true. When the line is also a command, ``event.command`` names it.
    """
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    return lambda function: mark(function, "message", compiled)


def _event_decorator(name: str, doc: str) -> Callable[[Handler], Handler]:
    def decorate(function: Handler) -> Handler:
        return mark(function, "event", name)

    decorate.__name__ = f"on_{name}"
    decorate.__doc__ = doc
    return decorate


on_join = _event_decorator("join", "Handle someone else joining one of the bot's channels.")
on_part = _event_decorator(
    "part", "Handle someone else leaving a channel (``event.text`` is the reason).")
on_quit = _event_decorator(
    "quit", "Handle someone quitting (``event.channels``: where they were; ``event.text``: why).")
on_kick = _event_decorator(
    "kick", "Handle a kick (``event.nick`` kicked ``event.target``; the bot itself too).")
on_nick = _event_decorator(
    "nick", "Handle someone renaming (``event.nick`` the old nick, ``event.new_nick`` the new).")
on_mode = _event_decorator(
    "mode", "Handle a channel mode change (``event.modes``: pairs like ``('+o', 'alice')``).")
on_topic = _event_decorator("topic", "Handle a topic change (``event.text`` is the new topic).")
on_notice = _event_decorator(
    "notice", "Handle a NOTICE from a user (channel or private; ``event.text``).")


def every(seconds: float, *, now: bool = False) -> Callable[[Handler], Handler]:
    """Call the method every ``seconds`` on the bot's clock while the bot runs (connected or not).

    The method takes no argument besides ``self``; ``now=True`` also calls it at start.
    """
    if not seconds > 0:
        raise ValueError(f"@every needs a positive interval, not {seconds!r}")
    return lambda function: mark(function, "every", (float(seconds), now))


def example(text: str) -> Callable[[Handler], Handler]:
    """An example use shown by ``help COMMAND`` (repeatable, shown in order)."""

    def decorate(function: Handler) -> Handler:
        examples = list(getattr(function, EXAMPLES_ATTRIBUTE, []))
        examples.insert(0, text)  # decorators apply bottom-up; keep the order as written
        setattr(function, EXAMPLES_ATTRIBUTE, examples)
        return function

    return decorate


@dataclass
class Event:
    """Something that happened: who (``nick``, full ``user`` prefix), where, and what."""

    bot: Bot
    nick: str
    user: str
    #: The channel, or None for a private message (and for quits and nick changes).
    channel: str | None
    #: The message, notice, new topic, or the reason of a part, quit or kick.
    text: str = ""
    command: str | None = None
    args: str = ""
    match: re.Match[str] | None = None
    action: bool = False
    #: IRCv3 message tags of the line (e.g. ``time`` with ``server-time``).
    tags: dict[str, str] = field(default_factory=dict)
    #: Every match of an ``@on_message`` pattern (at most :data:`MAX_MATCHES`).
    matches: list[re.Match[str]] = field(default_factory=list)
    #: The sender's account if the server says (``account-tag`` or what the bot tracked), else None.
    account: str | None = None
    #: A kick's victim.
    target: str | None = None
    #: A nick change's new nick.
    new_nick: str | None = None
    #: A mode change's changes: ``[("+o", "alice"), ("-m", None)]``.
    modes: list[tuple[str, str | None]] = field(default_factory=list)
    #: Where someone who quit or renamed was.
    channels: list[str] = field(default_factory=list)

    @property
    def private(self) -> bool:
        return self.channel is None

    @property
    def reply_target(self) -> str:
        """Where a reply goes: the channel, or the sender of a private message."""
        return self.channel or self.nick

    @property
    def argv(self) -> list[str]:
        """The command's arguments as words; quotes group words (``"a b" c`` -> ``['a b', 'c']``).

        A lone quote is taken literally rather than failing.
        """
        try:
            return shlex.split(self.args)
        except ValueError:
            return self.args.split()

    def reply(self, text: str, **options: Any) -> None:
        """Answer in the same channel, or privately to a private message."""
        self.bot.say(self.reply_target, text, **options)


def find_matches(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    """Up to :data:`MAX_MATCHES` non-overlapping matches of ``pattern`` in ``text``."""
    found = []
    for match in pattern.finditer(text):
        found.append(match)
        if len(found) >= MAX_MATCHES:
            break
    return found


def split_command(text: str, *, prefix: str, nick: str, private: bool,
                  fold: Callable[[str], str]) -> tuple[str, str] | None:
    """``"!roll 2d6"`` or ``"bot: roll 2d6"`` -> ``("roll", "2d6")``; None when not a command.

    In private the prefix is optional; in a channel the line starts with the prefix or is
    addressed to the bot (``nick: ``, ``nick, ``).
    """
    stripped = text.strip()
    if prefix and stripped.startswith(prefix):
        stripped = stripped[len(prefix):]
    else:
        head, separator, rest = stripped.partition(" ")
        if head[-1:] in (":", ",") and fold(head[:-1]) == fold(nick) and nick:
            stripped = rest.strip()
        elif not private:
            return None
    name, _, args = stripped.partition(" ")
    if not name:
        return None
    return name.lower(), args.strip()

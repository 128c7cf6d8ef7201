"""What a bot knows of its channels: members, their prefix modes and accounts, topics (no I/O).

A :class:`ChannelTracker` is fed the lines the bot receives (joins, parts, kicks, quits, nick and
mode changes, topics, NAMES, WHOX replies, ``account-tag``/``extended-join``/``account-notify``
data) and answers questions: who is in ``#lobby``, is ``alice`` an operator there, what is her
account. Names are compared under the casemapping the server announces (``CASEMAPPING``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from twistedchat.wire.names import casefold as rfc1459_casefold

#: Prefix modes when the server announces none: operator above voice.
DEFAULT_PREFIX: tuple[tuple[str, str], ...] = (("o", "@"), ("v", "+"))
#: Channel modes by kind when the server announces no CHANMODES (list, always-param, set-param, flag).
DEFAULT_CHANMODES = ("beI", "k", "l", "imnpst")

_STRICT = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\", "abcdefghijklmnopqrstuvwxyz{}|")


def casefolder(casemapping: str) -> Callable[[str], str]:
    """The fold function for a ``CASEMAPPING`` value (rfc1459, the default, strict-rfc1459, ascii)."""
    mapping = casemapping.lower()
    if mapping == "ascii":
        return lambda name: name.translate(_ASCII)
    if mapping == "strict-rfc1459":
        return lambda name: name.translate(_STRICT)
    return rfc1459_casefold


_ASCII = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass
class Person:
    """Someone the bot shares a channel with (``user``/``host`` once a line from them shows it)."""

    nick: str
    user: str = ""
    host: str = ""
    #: Their account, ``None`` while unknown or logged out.
    account: str | None = None

    @property
    def source(self) -> str:
        """``nick!user@host`` (with ``*`` for the parts not seen yet)."""
        return f"{self.nick}!{self.user or '*'}@{self.host or '*'}"


@dataclass
class Channel:
    """One of the bot's channels: members with their prefix modes (``o``, ``v``...), topic, modes."""

    name: str
    topic: str = ""
    topic_setter: str = ""
    #: folded nick -> the set of prefix modes that member holds
    modes_of: dict[str, set[str]] = field(default_factory=dict)
    #: folded nick -> display nick
    nicks: dict[str, str] = field(default_factory=dict)
    #: channel modes with their argument (``k``, ``l``) or None (flags)
    modes: dict[str, str | None] = field(default_factory=dict)
    #: prefix modes that count as "operator or above" (``o`` and higher ranks like ``q``/``a``)
    op_modes: frozenset[str] = frozenset("o")
    voice_modes: frozenset[str] = frozenset("ov")

    @property
    def members(self) -> set[str]:
        """Every member's nick."""
        return set(self.nicks.values())

    @property
    def ops(self) -> set[str]:
        """Nicks of operators (or higher prefixes)."""
        return {self.nicks[f] for f, modes in self.modes_of.items() if modes & self.op_modes}

    @property
    def voiced(self) -> set[str]:
        """Nicks with voice (``+v``), operators not counted."""
        return {self.nicks[f] for f, modes in self.modes_of.items() if "v" in modes}


class ChannelTracker:
    """Channel state kept from the lines a client receives; every method is plain and synchronous."""

    def __init__(self, own_nick: str = "") -> None:
        self.own_nick = own_nick
        self.fold: Callable[[str], str] = rfc1459_casefold
        self.prefix: tuple[tuple[str, str], ...] = DEFAULT_PREFIX
        self.chanmodes: tuple[str, str, str, str] = DEFAULT_CHANMODES
        self.channels: dict[str, Channel] = {}
        self.people: dict[str, Person] = {}

    # -- server features -------------------------------------------------------------------------

    def set_casemapping(self, casemapping: str) -> None:
        """The server's ``CASEMAPPING``: how names compare from now on."""
        self.fold = casefolder(casemapping)

    def set_prefix(self, pairs: Iterable[tuple[str, str]]) -> None:
        """The server's ``PREFIX`` as (mode, symbol) pairs, highest rank first."""
        self.prefix = tuple(pairs) or DEFAULT_PREFIX

    def set_chanmodes(self, groups: Iterable[str]) -> None:
        """The server's ``CHANMODES`` groups: list, always-parameter, set-parameter, flag modes."""
        parts = (list(groups) + ["", "", "", ""])[:4]
        self.chanmodes = (parts[0], parts[1], parts[2], parts[3])

    def _op_modes(self) -> frozenset[str]:
        modes = [mode for mode, _ in self.prefix]
        rank = modes.index("o") if "o" in modes else len(modes) - 1
        return frozenset(modes[: rank + 1])

    def _voice_modes(self) -> frozenset[str]:
        modes = [mode for mode, _ in self.prefix]
        rank = modes.index("v") if "v" in modes else len(modes) - 1
        return frozenset(modes[: rank + 1])

    # -- queries ---------------------------------------------------------------------------------

    def channel(self, name: str) -> Channel | None:
        """A tracked channel (one the bot is in), or None."""
        return self.channels.get(self.fold(name))

    def person(self, nick: str) -> Person | None:
        """Someone who shares a channel with the bot, or None."""
        return self.people.get(self.fold(nick))

    def is_me(self, nick: str) -> bool:
        """True if ``nick`` is the bot's own nick (under the casemapping)."""
        return self.fold(nick) == self.fold(self.own_nick)

    def has_mode_at_least(self, channel: str, nick: str, mode: str) -> bool:
        """True if ``nick`` holds ``mode`` or a prefix mode ranked above it in ``channel``."""
        found = self.channel(channel)
        if found is None:
            return False
        held = found.modes_of.get(self.fold(nick), set())
        wanted = found.op_modes if mode == "o" else found.voice_modes if mode == "v" else {mode}
        return bool(held & wanted)

    def channels_of(self, nick: str) -> list[str]:
        """Names of the tracked channels ``nick`` is in."""
        folded = self.fold(nick)
        return [c.name for c in self.channels.values() if folded in c.nicks]

    # -- updates ---------------------------------------------------------------------------------

    def seen(self, source: str, account: str | None = None) -> Person | None:
        """Learn ``user@host`` (and the account from an ``account`` tag) from a line's source."""
        nick, _, rest = source.partition("!")
        person = self.people.get(self.fold(nick))
        if person is None:
            return None
        if rest:
            user, _, host = rest.partition("@")
            person.user, person.host = user, host
        if account is not None:
            person.account = account or None
        return person

    def _add_member(self, channel: Channel, nick: str) -> Person:
        folded = self.fold(nick)
        channel.nicks[folded] = nick
        channel.modes_of.setdefault(folded, set())
        person = self.people.get(folded)
        if person is None:
            person = self.people[folded] = Person(nick)
        return person

    def joined(self, channel_name: str, source: str, account: str | None = None) -> None:
        """``source`` joined; with ``extended-join``, ``account`` is theirs (``*``: none)."""
        nick = source.split("!", 1)[0]
        if self.is_me(nick):
            channel = Channel(channel_name, op_modes=self._op_modes(),
                              voice_modes=self._voice_modes())
            self.channels[self.fold(channel_name)] = channel
        else:
            known = self.channel(channel_name)
            if known is None:
                return
            channel = known
        self._add_member(channel, nick)
        self.seen(source, None if account is None else ("" if account == "*" else account))

    def names(self, channel_name: str, entries: Iterable[tuple[str, str]]) -> None:
        """A whole NAMES list: (prefix symbols, nick or ``nick!user@host``) pairs."""
        channel = self.channel(channel_name)
        if channel is None:
            return
        by_symbol = {symbol: mode for mode, symbol in self.prefix}
        channel.nicks.clear()
        channel.modes_of.clear()
        for symbols, name in entries:
            nick = name.split("!", 1)[0]
            self._add_member(channel, nick)
            channel.modes_of[self.fold(nick)] = {by_symbol[s] for s in symbols if s in by_symbol}
            if "!" in name:
                self.seen(name)
        self._forget_strangers()

    def parted(self, channel_name: str, nick: str) -> None:
        """``nick`` left (PART or KICK); the bot itself leaving drops the channel."""
        if self.is_me(nick):
            self.channels.pop(self.fold(channel_name), None)
        else:
            channel = self.channel(channel_name)
            if channel is not None:
                folded = self.fold(nick)
                channel.nicks.pop(folded, None)
                channel.modes_of.pop(folded, None)
        self._forget_strangers()

    def quit(self, nick: str) -> list[str]:
        """``nick`` quit; returns the channels they were in."""
        channels = self.channels_of(nick)
        folded = self.fold(nick)
        for channel in self.channels.values():
            channel.nicks.pop(folded, None)
            channel.modes_of.pop(folded, None)
        self.people.pop(folded, None)
        return channels

    def renamed(self, old: str, new: str) -> list[str]:
        """``old`` is now ``new``; returns the channels they are in."""
        if self.is_me(old):
            self.own_nick = new
        old_folded, new_folded = self.fold(old), self.fold(new)
        channels = self.channels_of(old)
        for channel in self.channels.values():
            if old_folded in channel.nicks:
                del channel.nicks[old_folded]
                channel.nicks[new_folded] = new
                channel.modes_of[new_folded] = channel.modes_of.pop(old_folded, set())
        person = self.people.pop(old_folded, None)
        if person is not None:
            person.nick = new
            self.people[new_folded] = person
        return channels

    def topic(self, channel_name: str, text: str, setter: str = "") -> None:
        """The topic of ``channel_name`` is ``text`` (332 or a TOPIC change)."""
        channel = self.channel(channel_name)
        if channel is not None:
            channel.topic, channel.topic_setter = text, setter

    def mode(self, channel_name: str, modestring: str,
             args: Iterable[str]) -> list[tuple[str, str | None]]:
        """Apply a channel MODE line; returns the changes as (``+o``, argument) pairs."""
        changes = parse_modes(modestring, list(args), self.prefix, self.chanmodes)
        channel = self.channel(channel_name)
        if channel is None:
            return changes
        prefix_modes = {mode for mode, _ in self.prefix}
        for change, arg in changes:
            adding, mode = change[0] == "+", change[1]
            if mode in prefix_modes and arg is not None:
                held = channel.modes_of.get(self.fold(arg))
                if held is not None:
                    (held.add if adding else held.discard)(mode)
            elif mode not in self.chanmodes[0]:  # list modes (bans) are not kept
                if adding:
                    channel.modes[mode] = arg
                else:
                    channel.modes.pop(mode, None)
        return changes

    def account(self, nick: str, account: str | None) -> None:
        """``account-notify`` or WHOX: ``nick`` is logged in as ``account`` (None or ``*``: not)."""
        person = self.person(nick)
        if person is not None:
            person.account = None if account in (None, "", "*", "0") else account

    def who(self, nick: str, user: str, host: str, account: str | None = None) -> None:
        """A WHO/WHOX reply about ``nick``."""
        person = self.person(nick)
        if person is not None:
            person.user, person.host = user, host
            if account is not None:
                self.account(nick, account)

    def reset(self) -> None:
        """The connection is gone: nothing is known any more."""
        self.channels.clear()
        self.people.clear()

    def _forget_strangers(self) -> None:
        """Drop people who share no channel with the bot any more (the table stays bounded)."""
        present = {folded for channel in self.channels.values() for folded in channel.nicks}
        for folded in [f for f in self.people if f not in present]:
            del self.people[folded]


def parse_modes(modestring: str, args: list[str], prefix: Iterable[tuple[str, str]],
                chanmodes: tuple[str, str, str, str]) -> list[tuple[str, str | None]]:
    """``"+ov-k", ["a", "b", "key"]`` -> ``[("+o", "a"), ("+v", "b"), ("-k", "key")]``.

    Which modes take an argument follows the server's PREFIX and CHANMODES; a missing argument
    leaves the change without one instead of failing.
    """
    prefix_modes = "".join(mode for mode, _ in prefix)
    always = prefix_modes + chanmodes[0] + chanmodes[1]
    when_set = chanmodes[2]
    sign = "+"
    changes: list[tuple[str, str | None]] = []
    queue = list(args)
    for char in modestring:
        if char in "+-":
            sign = char
            continue
        takes = char in always or (sign == "+" and char in when_set)
        arg = queue.pop(0) if takes and queue else None
        changes.append((sign + char, arg))
    return changes

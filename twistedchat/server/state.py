"""Chat state: users, channels, membership and modes. Plain Python, no I/O.

Names are compared under the ``rfc1459`` casemapping that ISUPPORT announces.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from twistedchat.wire.names import (  # noqa: F401 (re-exported for the server's modules)
    CASEMAPPING,
    CHANNELLEN,
    CHANTYPES,
    NICKLEN,
    casefold,
    is_channel_name,
    mask_matches,
    normalize_mask,
    valid_channel_name,
    valid_nick,
)

#: Lengths in bytes of UTF-8, small enough that the longest relayed or echoed line fits in 512
#: (``:nick!~user@host TOPIC #channel :`` alone can take about 120 bytes).
TOPICLEN = 300
KICKLEN = 300
AWAYLEN = 300
REALLEN = 100
KEYLEN = 32
#: Longest ban mask kept (``nick!user@host`` is at most about 110 bytes here).
BANLEN = 150
CHANLIMIT = 100
MAXLIST = 100
MAXTARGETS = 4
MODES_PER_COMMAND = 6
WHOWAS_KEEP = 1000

#: Channel modes by ISUPPORT CHANMODES type: A (list), B (always a parameter), C (parameter when
#: set), D (flag). Membership prefixes are separate (PREFIX).
LIST_MODES = "b"
PARAM_MODES = "k"
SET_PARAM_MODES = "l"
FLAG_MODES = "imnst"
PREFIX_MODES = "ov"
PREFIX_SYMBOLS = {"o": "@", "v": "+"}
USER_MODES = "io"

#: A member's prefix modes (as kept in ``Channel.members``) -> its symbols, all or the highest.
MULTI_PREFIX: dict[str, str] = {"": "", "o": "@", "v": "+", "ov": "@+"}
HIGHEST_PREFIX: dict[str, str] = {modes: symbols[:1] for modes, symbols in MULTI_PREFIX.items()}


class Variant(enum.IntFlag):
    """Which encoding of relayed lines a user gets, from the capabilities it enabled."""

    PLAIN = 0
    SERVER_TIME = 1
    MESSAGE_TAGS = 2

    @classmethod
    def for_caps(cls, caps: Iterable[str]) -> Variant:
        """The variant for a set of enabled capabilities."""
        variant = cls.PLAIN
        if "server-time" in caps:
            variant |= cls.SERVER_TIME
        if "message-tags" in caps:
            variant |= cls.MESSAGE_TAGS
        return variant


class Link(Protocol):
    """What the server needs of a user's connection: write out its queued bytes, or cut it."""

    def transmit(self, data: bytes) -> None:
        """Write ``data`` (encoded lines) to the connection."""

    def abort(self, why: str) -> None:
        """Drop the connection at once, logging ``why``."""


class User:
    """One connected client, registered or not, as the chat state knows it."""

    __slots__ = (
        "nick",
        "folded",
        "username",
        "realname",
        "host",
        "modes",
        "away",
        "channels",
        "caps",
        "registered",
        "cap_negotiating",
        "password",
        "signon",
        "last_message",
        "last_seen",
        "ping_pending",
        "variant",
        "outbox",
        "wake",
        "close",
        "link",
        "invites",
    )

    def __init__(
        self,
        host: str,
        wake: Callable[[User], None],
        close: Callable[[], None],
        now: float = 0.0,
        link: Link | None = None,
    ) -> None:
        self.nick = "*"
        self.folded = ""
        self.username = ""
        self.realname = ""
        self.host = host
        self.modes: set[str] = set()
        self.away: str | None = None
        self.channels: dict[str, Channel] = {}
        self.caps: frozenset[str] = frozenset()
        self.registered = False
        self.cap_negotiating = False
        self.password: str | None = None
        self.signon = now
        self.last_message = now
        self.last_seen = now
        self.ping_pending = False
        #: Which encoding of relayed lines this user gets (kept from its capabilities).
        self.variant = Variant.PLAIN
        #: Encoded lines waiting to be written; whoever owns the connection empties it.
        self.outbox: list[bytes] = []
        #: Called with this user when its outbox goes from empty to non-empty.
        self.wake = wake
        #: Ask the connection to close once the outbox is written.
        self.close = close
        #: The connection that carries this user's lines.
        self.link = link
        #: Channels this user was invited to (folded name -> that channel's creation time), oldest
        #: first; cleared by a nick change, gone with the user, at most ``CHANLIMIT``.
        self.invites: dict[str, float] = {}

    def send(self, data: bytes) -> None:
        """Queue one encoded line for this user."""
        if not self.outbox:
            self.wake(self)
        self.outbox.append(data)

    @property
    def source(self) -> str:
        """``nick!user@host``, the prefix of what this user says."""
        return f"{self.nick}!{self.username}@{self.host}"

    @property
    def is_oper(self) -> bool:
        return "o" in self.modes

    def __repr__(self) -> str:
        return f"<User {self.nick}>"


class Channel:
    """A channel: its members with their prefix modes, topic, modes, bans and invitations."""

    __slots__ = (
        "name",
        "folded",
        "members",
        "topic",
        "topic_setter",
        "topic_time",
        "created",
        "modes",
        "key",
        "limit",
        "bans",
        "_names",
    )

    def __init__(self, name: str, now: float = 0.0) -> None:
        self.name = name
        self.folded = casefold(name)
        #: member -> its prefix modes, a subset of ``PREFIX_MODES`` ("o", "v", "ov")
        self.members: dict[User, str] = {}
        self.topic = ""
        self.topic_setter = ""
        self.topic_time = 0.0
        self.created = now
        self.modes: set[str] = {"n", "t"}
        self.key: str | None = None
        self.limit: int | None = None
        #: mask -> (set by, time)
        self.bans: dict[str, tuple[str, float]] = {}
        #: The member list as NAMES shows it to members (highest prefix, nicks), kept while valid.
        self._names: str | None = None

    def names_text(self) -> str:
        """``@op +voiced plain ...``: the NAMES list a member sees, without capabilities."""
        if self._names is None:
            self._names = " ".join(
                HIGHEST_PREFIX[modes] + member.nick for member, modes in self.members.items()
            )
        return self._names

    def set_prefixes(self, member: User, modes: str) -> None:
        """Give a member its prefix modes (a subset of ``PREFIX_MODES``, in that order)."""
        self.members[member] = modes
        self._names = None

    def forget_names(self) -> None:
        self._names = None

    def is_op(self, user: User) -> bool:
        return "o" in self.members.get(user, "")

    def can_speak(self, user: User) -> bool:
        """Whether ``user`` may send to this channel under +n, +m and bans (members or not)."""
        prefixes = self.members.get(user)
        if prefixes is None:
            modes = self.modes
            return "n" not in modes and "m" not in modes and not self.is_banned(user)
        if prefixes:
            return True
        if "m" in self.modes:
            return False
        return not self.is_banned(user)

    def is_banned(self, user: User) -> bool:
        if not self.bans:
            return False
        source = user.source
        return any(mask_matches(mask, source) for mask in self.bans)

    def prefix_of(self, user: User, multi: bool = False) -> str:
        """The member's prefix symbols: the highest one, or all of them with multi-prefix."""
        return (MULTI_PREFIX if multi else HIGHEST_PREFIX)[self.members.get(user, "")]

    def mode_string(self, show_key: bool) -> tuple[str, ...]:
        """The ``+modes`` string and its parameters, for RPL_CHANNELMODEIS."""
        flags = "".join(sorted(self.modes))
        params: list[str] = []
        if self.key is not None:
            flags += "k"
            params.append(self.key if show_key else "*")
        if self.limit is not None:
            flags += "l"
            params.append(str(self.limit))
        return ("+" + flags, *params)

    def __repr__(self) -> str:
        return f"<Channel {self.name} ({len(self.members)})>"


class WhowasEntry(NamedTuple):
    """Who had a nickname, and until when."""

    nick: str
    username: str
    host: str
    realname: str
    until: float


class ChatState:
    """All users and channels, keyed by casefolded name."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.connections: set[User] = set()
        self.whowas: deque[WhowasEntry] = deque(maxlen=WHOWAS_KEEP)
        #: Counts kept as users come, go and change modes, so LUSERS never scans everyone.
        self.registered_count = 0
        self.invisible_count = 0
        self.oper_count = 0

    def mark_registered(self, user: User) -> None:
        """Registration completed: the user now holds its nickname (the caller checked it is free)."""
        user.registered = True
        self.registered_count += 1
        self.users[user.folded] = user

    def set_user_mode(self, user: User, mode: str, on: bool) -> bool:
        """Turn a user mode (``i`` or ``o``) on or off; False if it already was so."""
        if on == (mode in user.modes):
            return False
        step = 1 if on else -1
        (user.modes.add if on else user.modes.discard)(mode)
        if user.registered:
            if mode == "i":
                self.invisible_count += step
            elif mode == "o":
                self.oper_count += step
        return True

    def find_user(self, nick: str) -> User | None:
        return self.users.get(casefold(nick))

    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(casefold(name))

    def add_connection(self, user: User) -> None:
        self.connections.add(user)

    def set_nick(self, user: User, nick: str, now: float = 0.0) -> None:
        """Give ``user`` the nickname (the caller checked that it is valid and free).

        A connection still registering only names the nick it wants: it holds it once
        registration completes (as Ergo does), so a client that never sends the right PASS can
        keep no nickname from anyone. A nick change drops the user's pending invitations.
        """
        if user.registered:
            if self.users.get(user.folded) is user:
                del self.users[user.folded]
                self.remember(user, now)
            user.invites.clear()
        user.nick = nick
        user.folded = casefold(nick)
        if user.registered:
            self.users[user.folded] = user
            for channel in user.channels.values():
                channel.forget_names()

    def invite(self, user: User, channel: Channel) -> None:
        """Remember that ``user`` may join ``channel`` past +i (the oldest is dropped past the limit)."""
        invites = user.invites
        invites.pop(channel.folded, None)
        if len(invites) >= CHANLIMIT:
            del invites[next(iter(invites))]
        invites[channel.folded] = channel.created

    def is_invited(self, user: User, channel: Channel) -> bool:
        """Whether ``user`` holds an invitation to this channel (not to an older one of its name)."""
        return user.invites.get(channel.folded) == channel.created

    def nick_in_use(self, nick: str, by: User | None = None) -> bool:
        holder = self.users.get(casefold(nick))
        return holder is not None and holder is not by

    def join(self, user: User, name: str, now: float) -> Channel:
        """Add ``user`` to the channel, creating it (with ``user`` as operator) if new."""
        folded = casefold(name)
        channel = self.channels.get(folded)
        if channel is None:
            channel = self.channels[folded] = Channel(name, now)
            channel.members[user] = "o"
        else:
            channel.members[user] = ""
            if channel._names is not None:
                channel._names = f"{channel._names} {user.nick}" if channel._names else user.nick
        user.channels[folded] = channel
        user.invites.pop(folded, None)
        return channel

    def part(self, user: User, channel: Channel) -> None:
        """Remove ``user`` from the channel; an empty channel ceases to exist."""
        channel.members.pop(user, None)
        channel.forget_names()
        user.channels.pop(channel.folded, None)
        if not channel.members:
            self.channels.pop(channel.folded, None)

    def remove(self, user: User, now: float = 0.0) -> None:
        """Forget a user who disconnected: its nick and every membership."""
        for channel in list(user.channels.values()):
            self.part(user, channel)
        if user.folded and self.users.get(user.folded) is user:
            del self.users[user.folded]
            if user.registered:
                self.remember(user, now)
        if user in self.connections and user.registered:
            self.registered_count -= 1
            self.invisible_count -= "i" in user.modes
            self.oper_count -= "o" in user.modes
        self.connections.discard(user)

    def remember(self, user: User, now: float) -> None:
        """Keep who had a nickname, for WHOWAS (the newest ``WHOWAS_KEEP`` entries)."""
        entry = WhowasEntry(user.nick, user.username, user.host, user.realname, now)
        self.whowas.appendleft(entry)

    def whowas_of(self, nick: str) -> list[WhowasEntry]:
        folded = casefold(nick)
        return [entry for entry in self.whowas if casefold(entry.nick) == folded]

    def neighbours(self, user: User) -> set[User]:
        """Everyone who shares at least one channel with ``user`` (not ``user`` itself)."""
        seen: set[User] = set()
        for channel in user.channels.values():
            seen.update(channel.members)
        seen.discard(user)
        return seen

    def shares_channel(self, one: User, other: User) -> bool:
        return any(other in channel.members for channel in one.channels.values())

    def registered_users(self) -> Iterable[User]:
        return (u for u in self.users.values() if u.registered)

"""Chat state: users, the channels they are in, membership, nicknames, MONITOR and WHOWAS. No I/O.

Names are compared under the ``rfc1459`` casemapping that ISUPPORT announces.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from twistedchat.server.channel import Channel
from twistedchat.server.limits import (
    AWAYLEN,
    BANLEN,
    CHANLIMIT,
    FLAG_MODES,
    HIGHEST_PREFIX,
    KEYLEN,
    KICKLEN,
    LIST_MODES,
    MAXLIST,
    MAXTARGETS,
    METADATA_MAX_KEY_BYTES,
    METADATA_MAX_KEYS,
    METADATA_MAX_SUBS,
    METADATA_MAX_VALUE_BYTES,
    MODES_PER_COMMAND,
    MONITOR_LIMIT,
    MULTI_PREFIX,
    MUTE_PREFIX,
    PARAM_MODES,
    PREFIX_MODES,
    PREFIX_SYMBOLS,
    READ_MARKERS_KEEP,
    REALLEN,
    SET_PARAM_MODES,
    TOPICLEN,
    USER_MODES,
    WHOWAS_KEEP,
)
from twistedchat.server.owner_data import (
    MemoryMetadata,
    MemoryReadMarkers,
    MetadataStore,
    ReadMarkerStore,
)
from twistedchat.wire.names import (
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

#: What the server's modules import from here: the state's own classes, and (re-exported) the
#: limits, the channel, the per-owner stores and the name rules.
__all__ = [
    "AWAYLEN", "BANLEN", "CASEMAPPING", "CHANLIMIT", "CHANNELLEN", "CHANTYPES", "Channel",
    "ChatState", "FLAG_MODES", "HIGHEST_PREFIX", "KEYLEN", "KICKLEN", "LIST_MODES", "Link",
    "MAXLIST", "MAXTARGETS", "METADATA_MAX_KEYS", "METADATA_MAX_KEY_BYTES", "METADATA_MAX_SUBS",
    "METADATA_MAX_VALUE_BYTES", "MODES_PER_COMMAND", "MONITOR_LIMIT", "MULTI_PREFIX",
    "MUTE_PREFIX", "MemoryMetadata", "MemoryReadMarkers", "MetadataStore", "NICKLEN",
    "PARAM_MODES", "PREFIX_MODES", "PREFIX_SYMBOLS", "READ_MARKERS_KEEP", "REALLEN",
    "ReadMarkerStore", "SET_PARAM_MODES", "TOPICLEN", "USER_MODES", "User", "Variant",
    "WHOWAS_KEEP", "WhowasEntry", "casefold", "is_channel_name", "mask_matches", "normalize_mask",
    "valid_channel_name", "valid_nick",
]

class Variant(enum.IntFlag):
    """Which encoding of relayed lines a user gets, from the capabilities it enabled."""

    PLAIN = 0
    SERVER_TIME = 1
    MESSAGE_TAGS = 2
    ACCOUNT_TAG = 4

    @classmethod
    def for_caps(cls, caps: Iterable[str]) -> Variant:
        """The variant for a set of enabled capabilities."""
        variant = cls.PLAIN
        if "server-time" in caps:
            variant |= cls.SERVER_TIME
        if "message-tags" in caps:
            variant |= cls.MESSAGE_TAGS
        if "account-tag" in caps:
            variant |= cls.ACCOUNT_TAG
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
        "real_host",
        "privileges",
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
        "account",
        "monitoring",
        "metadata_subs",
        "connection_id",
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
        #: The host other users see (a cloak of ``real_host`` when cloaking is on).
        self.host = host
        #: The address the connection really comes from (shown to itself and to operators only).
        self.real_host = host
        #: What this user may do as an IRC operator (``OPER_PERMISSIONS``), once it is one.
        self.privileges: frozenset[str] = frozenset()
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
        #: The account this connection is logged in to (None until accounts exist and one logs in).
        self.account: str | None = None
        #: Nicknames this connection MONITORs, folded -> as given (the other half of
        #: ``ChatState.watchers``); at most MONITOR_LIMIT.
        self.monitoring: dict[str, str] = {}
        #: ``draft/metadata-2`` keys this connection subscribed to (at most METADATA_MAX_SUBS).
        self.metadata_subs: set[str] = set()
        #: A number unique to this connection in this run (keys what lives only as long as it).
        self.connection_id = 0

    def send(self, data: bytes) -> None:
        """Queue one encoded line for this user."""
        if not self.outbox:
            self.wake(self)
        self.outbox.append(data)

    @property
    def source(self) -> str:
        """``nick!user@host``, the prefix of what this user says."""
        return f"{self.nick}!{self.username}@{self.host}"

    def ban_sources(self) -> tuple[str, ...]:
        """What channel ban masks match: ``nick!user@cloak`` and, if it differs, the real host."""
        if self.host == self.real_host:
            return (self.source,)
        return (self.source, f"{self.nick}!{self.username}@{self.real_host}")

    @property
    def is_oper(self) -> bool:
        return "o" in self.modes

    @property
    def is_bot(self) -> bool:
        return "B" in self.modes

    @property
    def owner(self) -> str:
        """Whose metadata and read markers these are: the account, else this connection alone."""
        if self.account is not None:
            return "account:" + casefold(self.account)
        return f"connection:{self.connection_id}"

    def __repr__(self) -> str:
        return f"<User {self.nick}>"



class WhowasEntry(NamedTuple):
    """Who had a nickname, and until when."""

    nick: str
    username: str
    host: str
    realname: str
    until: float
    #: the address it really came from (WHOWAS shows it to operators only)
    real_host: str = ""
    #: the server it was on, when not this one (another node of a cluster)
    server: str = ""



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
        #: MONITOR's reverse index: folded nickname -> the connections watching it.
        self.watchers: dict[str, set[User]] = {}
        #: Users with user mode +w, who get WALLOPS (kept, so WALLOPS never scans everyone).
        self.wallops: set[User] = set()
        #: Folded account name -> its connections (empty until accounts exist).
        self.sessions: dict[str, set[User]] = {}
        #: Pseudo-users the daemon answers for itself (NickServ and ChanServ, once a store is
        #: attached), folded nick -> a User with no connection: never in ``users``, channels or
        #: LUSERS' counts, but present to ISON, USERHOST, WHO and MONITOR (``find_present``).
        self.services: dict[str, User] = {}
        #: Metadata and read markers, in memory until a storage layer is plugged in here.
        self.metadata: MetadataStore = MemoryMetadata()
        self.read_markers: ReadMarkerStore = MemoryReadMarkers()
        self._connection_ids = 0

    def mark_registered(self, user: User) -> None:
        """Registration completed: the user now holds its nickname (the caller checked it is free)."""
        user.registered = True
        self.registered_count += 1
        self.users[user.folded] = user

    def set_user_mode(self, user: User, mode: str, on: bool) -> bool:
        """Turn a user mode (one of USER_MODES) on or off; False if it already was so."""
        if on == (mode in user.modes):
            return False
        step = 1 if on else -1
        (user.modes.add if on else user.modes.discard)(mode)
        if user.registered:
            if mode == "i":
                self.invisible_count += step
            elif mode == "o":
                self.oper_count += step
        if mode == "w":
            (self.wallops.add if on else self.wallops.discard)(user)
        return True

    def set_account(self, user: User, account: str | None) -> None:
        """Log ``user`` in to ``account`` (or out, with None), keeping the account index."""
        if user.account is not None:
            folded = casefold(user.account)
            sessions = self.sessions.get(folded)
            if sessions is not None:
                sessions.discard(user)
                if not sessions:
                    del self.sessions[folded]
        user.account = account
        if account is not None:
            self.sessions.setdefault(casefold(account), set()).add(user)

    def other_sessions(self, user: User) -> list[User]:
        """The other connections logged in to ``user``'s account (none without an account)."""
        if user.account is None:
            return []
        return [s for s in self.sessions.get(casefold(user.account), ()) if s is not user]

    def monitor(self, user: User, nick: str) -> None:
        """``user`` watches ``nick`` (the caller checked MONITOR_LIMIT)."""
        folded = casefold(nick)
        user.monitoring[folded] = nick
        self.watchers.setdefault(folded, set()).add(user)

    def unmonitor(self, user: User, folded: str) -> None:
        """``user`` stops watching the folded nickname."""
        user.monitoring.pop(folded, None)
        watching = self.watchers.get(folded)
        if watching is not None:
            watching.discard(user)
            if not watching:
                del self.watchers[folded]

    def clear_monitor(self, user: User) -> None:
        """``user`` watches nobody any more (a cost of its own list, never of everyone's)."""
        for folded in list(user.monitoring):
            self.unmonitor(user, folded)

    def find_user(self, nick: str) -> User | None:
        return self.users.get(casefold(nick))

    def find_present(self, nick: str) -> User | None:
        """Who answers to ``nick`` now: a registered user, or a service pseudo-user."""
        folded = casefold(nick)
        found = self.users.get(folded)
        if found is not None and found.registered:
            return found
        return self.services.get(folded)

    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(casefold(name))

    def add_connection(self, user: User) -> None:
        self._connection_ids += 1
        user.connection_id = self._connection_ids
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
        if not channel.members and self.channels.get(channel.folded) is channel:
            del self.channels[channel.folded]
            self.metadata.forget(channel.owner)

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
        self.clear_monitor(user)
        self.wallops.discard(user)
        user.metadata_subs.clear()
        if not self.other_sessions(user):
            self.metadata.forget(user.owner)
            self.read_markers.forget(user.owner)
        self.set_account(user, None)

    def remember(self, user: User, now: float) -> None:
        """Keep who had a nickname, for WHOWAS (the newest ``WHOWAS_KEEP`` entries)."""
        entry = WhowasEntry(user.nick, user.username, user.host, user.realname, now,
                            user.real_host)
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

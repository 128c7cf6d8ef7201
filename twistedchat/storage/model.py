"""The records the stores keep (accounts, registered channels, history lines) and their errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from twistedchat.wire.names import casefold

#: Most entries a registered channel's access list or ban list may hold.
MAX_ACCESS_ENTRIES = 100
MAX_BANS = 100
#: Most nicks one account may own (its own name included).
MAX_NICKS_PER_ACCOUNT = 5
#: Access levels on a registered channel's access list: op or voice.
ACCESS_LEVELS = ("o", "v")
#: Longest description (ChanServ SET DESCRIPTION) a registered channel keeps, in UTF-8 bytes.
MAX_DESCRIPTION_BYTES = 300


class StoreError(Exception):
    """A storage request that cannot be met; the message is fit to show a user or an admin."""


class AccountExists(StoreError):
    """The account name (or a nick someone owns) is taken."""


class NoSuchAccount(StoreError):
    """No account has that name."""


class NickOwned(StoreError):
    """The nick belongs to another account."""


class ChannelAlreadyRegistered(StoreError):
    """The channel is registered already."""


class ChannelNotRegistered(StoreError):
    """The channel is not registered."""


class ListFull(StoreError):
    """A per-account or per-channel list reached its limit."""


class UnknownMessageId(StoreError):
    """A ``msgid=`` selector names no stored message of that conversation."""


class StoreUrlError(StoreError, ValueError):
    """A ``--db`` URL this server cannot open."""


class SchemaTooNew(StoreError):
    """The database was written by a newer twistedchat than this one."""


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """SCRAM-SHA-256 stored credentials (RFC 5802/7677): enough to verify, not to log in."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


@dataclass(frozen=True, slots=True)
class Account:
    """A registered account: its display name, password verifiers and when it was made."""

    name: str
    password_hash: str
    scram: ScramCredentials
    created: float
    email: str | None = None

    @property
    def key(self) -> str:
        """The casefolded name every lookup uses."""
        return casefold(self.name)


@dataclass(frozen=True, slots=True)
class Ban:
    """One entry of a channel's ban list."""

    mask: str
    set_by: str
    set_at: float


@dataclass(frozen=True, slots=True)
class RegisteredChannel:
    """What a registered channel keeps across restarts.

    ``access`` maps casefolded account names to a level in ``ACCESS_LEVELS``; ``modes`` holds the
    flag modes without parameters (key and limit are their own fields). The founder's settings
    (ChanServ SET): ``description``; ``keep_topic`` (the topic comes back when the channel is
    recreated); ``mlock_on``/``mlock_off``, flag modes kept set/unset whatever the channel's
    operators do; ``restricted`` (only the founder and the access list may join).
    """

    name: str
    founder: str
    registered: float
    topic: str = ""
    topic_setter: str = ""
    topic_time: float = 0.0
    modes: str = "nt"
    key: str | None = None
    limit: int | None = None
    bans: tuple[Ban, ...] = ()
    access: dict[str, str] = field(default_factory=dict)
    description: str = ""
    keep_topic: bool = True
    mlock_on: str = ""
    mlock_off: str = ""
    restricted: bool = False

    @property
    def folded(self) -> str:
        return casefold(self.name)


class HistoryLine(NamedTuple):
    """One stored PRIVMSG or NOTICE (a NamedTuple: a query builds hundreds, cheaply).

    ``conversation`` is the key history is asked by: ``channel_conversation(name)`` or
    ``direct_conversation(a, b)``; ``parties`` names the two accounts of a private conversation
    (casefolded), None for a channel. ``time`` is in seconds since the epoch, kept to the millisecond.
    ``msgid`` must be unique: a second line with a stored msgid is not stored.
    """

    msgid: str
    time: float
    conversation: str
    target: str
    sender: str
    command: str
    text: str
    account: str | None = None
    parties: tuple[str, str] | None = None
    #: the client-only tags the line was relayed with (``+draft/reply`` …), replayed with it
    client_tags: dict[str, str] | None = None


def channel_conversation(channel: str) -> str:
    """The history key of a channel."""
    return casefold(channel)


def direct_conversation(one: str, other: str) -> str:
    """The history key of the private conversation between two accounts (in either order).

    A space can appear in neither a nick nor a channel name, so the key collides with no channel.
    """
    low, high = sorted((casefold(one), casefold(other)))
    return f"{low} {high}"


def direct_parties(one: str, other: str) -> tuple[str, str]:
    """The ``parties`` of a private line, in the order ``direct_conversation`` uses."""
    low, high = sorted((casefold(one), casefold(other)))
    return (low, high)

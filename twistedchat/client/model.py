"""The session's data: lines, members, conversations, and the events a session emits.

Plain dataclasses, no I/O; :mod:`twistedchat.client.session` keeps them up to date and
re-exports them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from twistedchat.client.commands import is_channel_name
from twistedchat.wire.names import casefold

#: Lines kept per conversation; older ones are dropped.
DEFAULT_SCROLLBACK = 2000
#: The name of the conversation that holds server notices, MOTD and replies.
SERVER = "*server*"
#: Membership prefix symbols from highest to lowest rank, until the server tells us its own.
DEFAULT_PREFIXES = "@+"

class Kind(Enum):
    """What a line in a conversation is; the view styles events more quietly than messages."""

    MESSAGE = "message"
    ACTION = "action"
    NOTICE = "notice"
    JOIN = "join"
    PART = "part"
    QUIT = "quit"
    NICK = "nick"
    TOPIC = "topic"
    KICK = "kick"
    MODE = "mode"
    INFO = "info"
    ERROR = "error"
    #: the marker between history fetched from the server (above) and what came live (below)
    HISTORY = "history"

    @property
    def is_event(self) -> bool:
        return self not in (Kind.MESSAGE, Kind.ACTION, Kind.NOTICE)


@dataclass(slots=True)
class Line:
    """One line of a conversation."""

    time: datetime
    kind: Kind
    text: str
    nick: str = ""
    own: bool = False
    mention: bool = False
    #: the server's ``msgid`` tag (history is matched against it)
    msgid: str = ""


@dataclass(slots=True)
class Member:
    nick: str
    prefix: str = ""
    away: bool = False


@dataclass(eq=False)
class Conversation:
    """A channel, a private conversation with one nick, or the server's own messages."""

    name: str
    scrollback: int = DEFAULT_SCROLLBACK
    lines: deque[Line] = field(init=False)
    members: dict[str, Member] = field(default_factory=dict)
    topic: str = ""
    unread: int = 0
    mentions: int = 0
    joined: bool = False
    #: the first line that came while the user looked elsewhere (the view marks it "new")
    first_unread: Line | None = None
    #: the user left this conversation: the next line that comes starts the unread part
    watching_for_unread: bool = False
    muted: bool = False
    #: the server's read marker (``draft/read-marker``): lines up to this time were read
    read_marker: datetime | None = None
    #: a CHATHISTORY request is on its way ("latest" or "before"), or ""
    history_request: str = ""
    #: the server has no older history than what we hold
    history_exhausted: bool = False

    def __post_init__(self) -> None:
        self.lines = deque(maxlen=self.scrollback)

    @property
    def is_channel(self) -> bool:
        return is_channel_name(self.name)

    @property
    def is_server(self) -> bool:
        return self.name == SERVER

    @property
    def is_query(self) -> bool:
        return not (self.is_channel or self.is_server)

    def has_member(self, nick: str) -> bool:
        return casefold(nick) in self.members

    def sorted_members(self, ranks: str = DEFAULT_PREFIXES) -> list[Member]:
        """Members by rank (``@`` before ``+`` before none), then by name ignoring case."""

        def key(member: Member) -> tuple[int, str]:
            rank = min((ranks.index(c) for c in member.prefix if c in ranks), default=len(ranks))
            return rank, casefold(member.nick)

        return sorted(self.members.values(), key=key)


# -- events the view subscribes to -------------------------------------------------------------


@dataclass(slots=True)
class Event:
    """Base of everything a :class:`Session` tells its subscribers."""


@dataclass(slots=True)
class ConversationOpened(Event):
    conversation: Conversation


@dataclass(slots=True)
class ConversationClosed(Event):
    conversation: Conversation


@dataclass(slots=True)
class ConversationRenamed(Event):
    """A private conversation follows its partner's new nick."""

    conversation: Conversation
    old_name: str


@dataclass(slots=True)
class LineAdded(Event):
    conversation: Conversation
    line: Line


@dataclass(slots=True)
class MembersChanged(Event):
    conversation: Conversation


@dataclass(slots=True)
class TopicChanged(Event):
    conversation: Conversation


@dataclass(slots=True)
class CountersChanged(Event):
    """The unread or mention count of a conversation changed."""

    conversation: Conversation


@dataclass(slots=True)
class Activated(Event):
    """This conversation is now the one the user looks at (the view follows)."""

    conversation: Conversation


@dataclass(slots=True)
class NickChanged(Event):
    nick: str


@dataclass(slots=True)
class StatusChanged(Event):
    """The connection's state, in words for the status bar."""

    text: str
    connected: bool


@dataclass(slots=True)
class ServerInfoChanged(Event):
    """The network's name or its membership prefixes are now known."""


@dataclass(slots=True)
class Attention(Event):
    """Someone mentioned us or wrote to us privately: worth a desktop notification."""

    conversation: Conversation
    line: Line


@dataclass(slots=True)
class QuitRequested(Event):
    """The user typed ``/quit``."""

    reason: str


@dataclass(slots=True)
class ReconnectRequested(Event):
    """The user typed ``/reconnect``."""


@dataclass(slots=True)
class PendingChanged(Event):
    """Lines typed in this conversation are waiting for the server's echo (or no longer are)."""

    conversation: Conversation


@dataclass(slots=True)
class ConversationCleared(Event):
    """``/clear``: the conversation's lines are gone (the view empties too)."""

    conversation: Conversation


@dataclass(slots=True)
class HistoryRestored(Event):
    """Older lines (from the logs or the server) joined this conversation's lines.

    With ``older``, those lines were put before all the others (the view adds them at the top);
    without, the conversation is drawn again."""

    conversation: Conversation
    older: list[Line] = field(default_factory=list)


@dataclass(slots=True)
class ReadMarkerMoved(Event):
    """The server's read marker moved: the "new messages" line is drawn again where it goes."""

    conversation: Conversation


@dataclass(slots=True)
class ChannelListChanged(Event):
    """``/list`` answers arrived (``done``: the list is complete)."""

    done: bool




@dataclass(slots=True)
class PersonChanged(Event):
    """What we know of ``nick`` changed (online, away, bot, display name, avatar, colour)."""

    nick: str


@dataclass(slots=True)
class IgnoreListChanged(Event):
    """``/ignore`` or ``/unignore`` changed the ignore list (the app remembers it)."""

    masks: list[str]

"""A chat session as a person sees it: conversations, members, topics, unread counts, events.

This is the model the desktop client renders. It does no I/O and knows nothing of Qt: the network
client (:mod:`twistedchat.client.link`) calls its ``on_*`` methods as lines arrive, and a view
subscribes to the :class:`Event` s it emits. What the user types goes through
:meth:`Session.handle_input`, which updates the model and returns the protocol lines to send.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from twistedchat.client.commands import USAGE, Command, CommandError, is_channel_name, parse_input
from twistedchat.wire.fitting import source_estimate, split_text, text_room
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


@dataclass(slots=True)
class Member:
    nick: str
    prefix: str = ""


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


class Session:
    """Everything one connection's user sees, kept up to date from protocol callbacks."""

    def __init__(
        self,
        nick: str,
        *,
        scrollback: int = DEFAULT_SCROLLBACK,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.nick = nick
        self.scrollback = scrollback
        self.clock = clock
        self.prefixes = DEFAULT_PREFIXES
        self.connected = False
        self.network = ""
        self.status = "Not connected"
        self.conversations: dict[str, Conversation] = {}
        self.active: Conversation | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._mention_re = self._compile_mention(nick)
        self.server = self.open(SERVER)

    # -- subscribers and conversations ---------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.remove(callback)

    def emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def find(self, name: str) -> Conversation | None:
        return self.conversations.get(casefold(name))

    def open(self, name: str) -> Conversation:
        """The conversation called ``name``, opened (and announced) if it is new."""
        key = casefold(name)
        conversation = self.conversations.get(key)
        if conversation is None:
            conversation = Conversation(name, scrollback=self.scrollback)
            self.conversations[key] = conversation
            self.emit(ConversationOpened(conversation))
        return conversation

    def close(self, name: str) -> None:
        """Forget a conversation (the server one stays)."""
        conversation = self.find(name)
        if conversation is None or conversation.is_server:
            return
        del self.conversations[casefold(name)]
        if self.active is conversation:
            self.active = None
        self.emit(ConversationClosed(conversation))

    def activate(self, conversation: Conversation | None) -> None:
        """The user is looking at ``conversation``: its counters go back to zero."""
        if conversation is not self.active:
            self.active = conversation
            if conversation is not None:
                self.emit(Activated(conversation))
        if conversation is not None and (conversation.unread or conversation.mentions):
            conversation.unread = conversation.mentions = 0
            self.emit(CountersChanged(conversation))

    def add_line(self, conversation: Conversation, line: Line) -> None:
        conversation.lines.append(line)
        self.emit(LineAdded(conversation, line))
        counts = not line.own and not line.kind.is_event and line.kind is not Kind.INFO
        if conversation is not self.active and (counts or line.kind is Kind.ERROR):
            conversation.unread += 1
            if line.mention or (conversation.is_query and counts):
                conversation.mentions += 1
            self.emit(CountersChanged(conversation))
        if not line.own and (line.mention or (conversation.is_query and not line.kind.is_event)):
            self.emit(Attention(conversation, line))

    def _line(self, kind: Kind, text: str, nick: str = "", *, own: bool = False,
              time: datetime | None = None, mention: bool = False) -> Line:
        return Line(time or self.clock(), kind, text, nick, own, mention)

    def info(self, text: str, conversation: Conversation | None = None,
             kind: Kind = Kind.INFO) -> None:
        """A line of our own making (replies, errors) in ``conversation`` or the server one."""
        self.add_line(conversation or self.server, self._line(kind, text))

    def error(self, text: str, conversation: Conversation | None = None) -> None:
        self.info(text, conversation or self.active or self.server, Kind.ERROR)

    # -- our own state -------------------------------------------------------------------------

    @staticmethod
    def _compile_mention(nick: str) -> re.Pattern[str]:
        return re.compile(r"(?<![\w\[\]\\`^{|}-])" + re.escape(nick) + r"(?![\w\[\]\\`^{|}-])",
                          re.IGNORECASE)

    def mentions_me(self, text: str) -> bool:
        return self._mention_re.search(text) is not None

    def is_me(self, nick: str) -> bool:
        return casefold(nick) == casefold(self.nick)

    def set_status(self, text: str, connected: bool) -> None:
        self.status = text
        self.connected = connected
        self.emit(StatusChanged(text, connected))

    def on_connection_lost(self, reason: str) -> None:
        """The link is down: channels are left until we are back."""
        for conversation in self.conversations.values():
            if conversation.is_channel and conversation.joined:
                conversation.joined = False
                conversation.members.clear()
                self.emit(MembersChanged(conversation))
                self.info(f"Disconnected: {reason}", conversation, Kind.ERROR)
        self.info(f"Disconnected: {reason}", kind=Kind.ERROR)

    def on_registered(self, nick: str) -> None:
        self._set_nick(nick)
        self.info(f"Connected as {nick}")

    def on_server_info(self, network: str, prefixes: str) -> None:
        """The server told us its network name and membership prefixes (ISUPPORT)."""
        changed = (network or self.network, prefixes or self.prefixes) != (
            self.network, self.prefixes)
        self.network = network or self.network
        self.prefixes = prefixes or self.prefixes
        if changed:
            self.emit(ServerInfoChanged())

    def _set_nick(self, nick: str) -> None:
        if nick != self.nick:
            self.nick = nick
            self._mention_re = self._compile_mention(nick)
            self.emit(NickChanged(nick))

    # -- what the server tells us --------------------------------------------------------------

    def on_message(self, sender: str, target: str, text: str, kind: Kind = Kind.MESSAGE,
                   time: datetime | None = None) -> None:
        """A PRIVMSG, NOTICE or ``/me`` from ``sender`` (a nick, or a server name) to ``target``."""
        own = self.is_me(sender)
        if is_channel_name(target):
            conversation = self.open(target)
        elif own:
            conversation = self.open(target)
        elif kind is Kind.NOTICE and ("." in sender or not sender):
            conversation = self.server  # server notices
        elif kind is Kind.NOTICE and self.find(sender) is None:
            conversation = self.active or self.server  # a service's notice needs no new tab
        else:
            conversation = self.open(sender)
        mention = not own and conversation.is_channel and self.mentions_me(text)
        self.add_line(conversation, self._line(kind, text, sender, own=own, time=time,
                                               mention=mention))

    def on_join(self, channel: str, nick: str) -> None:
        conversation = self.open(channel)
        if self.is_me(nick):
            conversation.joined = True
            conversation.members.clear()
            if self.active is None or self.active.is_server:
                self.activate(conversation)
            self.add_line(conversation, self._line(Kind.JOIN, f"You joined {channel}", nick))
        else:
            self.add_line(conversation, self._line(Kind.JOIN, f"{nick} joined {channel}", nick))
        conversation.members[casefold(nick)] = Member(nick)
        self.emit(MembersChanged(conversation))

    def on_part(self, channel: str, nick: str, reason: str = "") -> None:
        conversation = self.find(channel)
        if conversation is None:
            return
        suffix = f" ({reason})" if reason else ""
        if self.is_me(nick):
            conversation.joined = False
            conversation.members.clear()
            self.add_line(conversation, self._line(Kind.PART, f"You left {channel}{suffix}", nick))
        else:
            conversation.members.pop(casefold(nick), None)
            self.add_line(conversation, self._line(Kind.PART, f"{nick} left{suffix}", nick))
        self.emit(MembersChanged(conversation))

    def on_kick(self, channel: str, nick: str, by: str, reason: str = "") -> None:
        conversation = self.find(channel)
        if conversation is None:
            return
        suffix = f" ({reason})" if reason else ""
        if self.is_me(nick):
            conversation.joined = False
            conversation.members.clear()
            text = f"You were kicked from {channel} by {by}{suffix}"
            self.add_line(conversation, self._line(Kind.KICK, text, by))
        else:
            conversation.members.pop(casefold(nick), None)
            self.add_line(conversation, self._line(Kind.KICK, f"{by} kicked {nick}{suffix}", by))
        self.emit(MembersChanged(conversation))

    def _conversations_with(self, nick: str) -> list[Conversation]:
        key = casefold(nick)
        return [c for c in self.conversations.values()
                if key in c.members or (c.is_query and casefold(c.name) == key)]

    def on_quit(self, nick: str, reason: str = "") -> None:
        suffix = f" ({reason})" if reason else ""
        for conversation in self._conversations_with(nick):
            conversation.members.pop(casefold(nick), None)
            self.add_line(conversation, self._line(Kind.QUIT, f"{nick} quit{suffix}", nick))
            if conversation.is_channel:
                self.emit(MembersChanged(conversation))

    def on_nick(self, old: str, new: str) -> None:
        own = self.is_me(old)
        if own:
            self._set_nick(new)
        text = f"You are now known as {new}" if own else f"{old} is now known as {new}"
        for conversation in self._conversations_with(old):
            member = conversation.members.pop(casefold(old), None)
            if member is not None:
                conversation.members[casefold(new)] = Member(new, member.prefix)
                self.emit(MembersChanged(conversation))
            self.add_line(conversation, self._line(Kind.NICK, text, old))
            if conversation.is_query and not own:
                self._rename(conversation, new)
        if own:
            self.info(text)

    def _rename(self, conversation: Conversation, name: str) -> None:
        """A private conversation follows its partner's new nick."""
        old_name = conversation.name
        self.conversations.pop(casefold(old_name), None)
        existing = self.conversations.get(casefold(name))
        if existing is not None and existing is not conversation:
            # merge into one conversation, in time order (sorted() is stable for equal times)
            conversation.lines = deque(
                sorted([*existing.lines, *conversation.lines], key=lambda line: line.time),
                maxlen=self.scrollback)
            self.close(existing.name)
        conversation.name = name
        self.conversations[casefold(name)] = conversation
        self.emit(ConversationRenamed(conversation, old_name))

    def on_topic(self, channel: str, topic: str, by: str | None = None) -> None:
        """The topic is ``topic``; ``by`` is who changed it just now (None when we joined)."""
        conversation = self.open(channel)
        conversation.topic = topic
        self.emit(TopicChanged(conversation))
        if by is not None:
            text = f"{by} changed the topic to: {topic}" if topic else f"{by} cleared the topic"
            self.add_line(conversation, self._line(Kind.TOPIC, text, by))
        elif topic:
            self.add_line(conversation, self._line(Kind.TOPIC, f"Topic: {topic}"))

    def on_names(self, channel: str, members: list[tuple[str, str]]) -> None:
        """The whole member list: (prefix symbols, nick) pairs."""
        conversation = self.open(channel)
        conversation.members = {casefold(nick): Member(nick, marks) for marks, nick in members}
        self.emit(MembersChanged(conversation))

    def on_member_mode(self, channel: str, by: str, nick: str, symbol: str, on: bool) -> None:
        """``by`` gave (or took) ``nick`` the prefix ``symbol`` (``@`` or ``+``) in ``channel``."""
        conversation = self.find(channel)
        if conversation is None:
            return
        member = conversation.members.get(casefold(nick))
        if member is not None:
            marks = set(member.prefix)
            (marks.add if on else marks.discard)(symbol)
            member.prefix = "".join(c for c in self.prefixes if c in marks)
            self.emit(MembersChanged(conversation))

    def on_mode(self, target: str, by: str, change: str) -> None:
        """A mode change, shown as an event in the channel (or the server conversation)."""
        conversation = self.find(target) if is_channel_name(target) else None
        self.add_line(conversation or self.server,
                      self._line(Kind.MODE, f"{by} sets mode {change}", by))

    # -- what the user types -------------------------------------------------------------------

    def handle_input(self, text: str, conversation: Conversation | None = None) -> list[str]:
        """Act on what the user typed in ``conversation``; returns the protocol lines to send.

        Plain text is said to the conversation; ``/commands`` are parsed by
        :func:`twistedchat.client.commands.parse_input`. Usage errors become lines in the conversation.
        """
        conversation = conversation or self.active or self.server
        try:
            command = parse_input(text, None if conversation.is_server else conversation.name)
        except CommandError as error:
            self.error(str(error), conversation)
            return []
        if command is None:
            return []
        return self.execute(command, conversation)

    def execute(self, command: Command, conversation: Conversation) -> list[str]:
        name, args = command.name, command.args
        if name in ("say", "me", "msg", "notice"):
            target, text = args
            return self._say(name, target, text)
        if name == "query":
            query = self.open(args[0])
            self.activate(query)
            return self._say("say", args[0], args[1]) if args[1] else []
        if name == "close":
            if conversation.is_channel and conversation.joined:
                return [f"PART {conversation.name}"]
            self.close(conversation.name)
            return []
        if name == "quit":
            self.emit(QuitRequested(args[0]))
            return []
        if name == "help":
            for usage in USAGE.values():
                self.info(usage, conversation)
            return []
        if name == "join":
            for channel in args[0].split(","):
                self.activate(self.open(channel))
        if name in ("join", "part", "nick", "topic", "away", "whois", "raw"):
            return [command.line]
        raise AssertionError(f"unhandled command {name}")  # pragma: no cover

    def _say(self, how: str, target: str, text: str) -> list[str]:
        if not self.connected:
            self.error("Not connected: the message was not sent", self.find(target))
            return []
        verb = "NOTICE" if how == "notice" else "PRIVMSG"
        kind = {"me": Kind.ACTION, "notice": Kind.NOTICE}.get(how, Kind.MESSAGE)
        # the server relays us as nick!~ident@host: reserve its longest ident (USERLEN 10)
        room = text_room(source_estimate(self.nick, "u" * 10), verb, target)
        if kind is Kind.ACTION:
            room -= len("\x01ACTION \x01")
        lines: list[str] = []
        for piece in split_text(text, room):
            payload = f"\x01ACTION {piece}\x01" if kind is Kind.ACTION else piece
            lines.append(f"{verb} {target} :{payload}")
            self.on_message(self.nick, target, piece, kind)
        return lines

"""Who is in which conversation: joins, parts, kicks, quits, nick changes, NAMES and member modes.

A mixin of :class:`twistedchat.client.session.Session`, without I/O: the network client calls these
``on_*`` methods as the server tells them, and they keep each conversation's members and lines.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twistedchat.client.commands import is_channel_name
from twistedchat.client.model import (
    Conversation,
    ConversationRenamed,
    Kind,
    Member,
    MembersChanged,
    TopicChanged,
)
from twistedchat.client.people import People
from twistedchat.wire.names import casefold


class MembershipParts:
    """The members of a session's conversations, kept from the server's membership events."""

    conversations: dict[str, Conversation]
    active: Conversation | None
    server: Conversation
    in_view: bool
    scrollback: int
    prefixes: str
    names_asked: set[str]
    people: People
    open: Any
    find: Any
    close: Any
    activate: Any
    add_line: Any
    _line: Any
    info: Any
    emit: Any
    is_me: Any
    _set_nick: Any
    on_person_away: Any

    def on_join(self, channel: str, nick: str) -> None:
        conversation = self.open(channel)
        if self.is_me(nick):
            conversation.joined = True
            conversation.members.clear()
            if conversation.topic:  # the server tells the topic after the join, if there is one
                conversation.topic = ""
                self.emit(TopicChanged(conversation))
            if self.in_view and (self.active is None or self.active.is_server):
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
        self._member_left(conversation, nick, Kind.PART, nick,
                          f"You left {channel}{suffix}", f"{nick} left{suffix}")

    def on_kick(self, channel: str, nick: str, by: str, reason: str = "") -> None:
        conversation = self.find(channel)
        if conversation is None:
            return
        suffix = f" ({reason})" if reason else ""
        self._member_left(conversation, nick, Kind.KICK, by,
                          f"You were kicked from {channel} by {by}{suffix}",
                          f"{by} kicked {nick}{suffix}")

    def _member_left(self, conversation: Conversation, nick: str, kind: Kind, source: str,
                     text_for_me: str, text_for_others: str) -> None:
        """``nick`` is no longer in the channel (PART or KICK): the members and the line shown."""
        if self.is_me(nick):
            conversation.joined = False
            conversation.members.clear()
            self.add_line(conversation, self._line(kind, text_for_me, source))
        else:
            conversation.members.pop(casefold(nick), None)
            self.add_line(conversation, self._line(kind, text_for_others, source))
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
        else:
            self.people.rename(old, new)
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

    def on_names(self, channel: str, members: list[tuple[str, str]]) -> None:
        """The whole member list: (prefix symbols, nick) pairs.

        A channel we are in gets its member list replaced; the list of one we are not in, or one
        the user asked for with ``/names``, is shown as a line where the user looks.
        """
        conversation = self.find(channel)
        asked = casefold(channel) in self.names_asked
        self.names_asked.discard(casefold(channel))
        if conversation is not None and conversation.joined:
            conversation.members = {casefold(nick): Member(nick, marks) for marks, nick in members}
            self.emit(MembersChanged(conversation))
        if asked or conversation is None or not conversation.joined:
            names = " ".join(marks[:1] + nick for marks, nick in members)
            if channel == "*" or not is_channel_name(channel):
                text = f"Users: {names}" if names else "No users"
            else:
                count = len(members)
                text = f"{channel} ({count} {'member' if count == 1 else 'members'}): {names}"
            self.info(text, self.active or self.server)

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

    def on_away(self, nick: str, away: bool) -> None:
        """``away-notify``: ``nick`` went away or came back (greyed in member lists)."""
        key = casefold(nick)
        if self.people.get(nick) is not None or self.find(nick) is not None:
            self.on_person_away(nick, away)
        for conversation in self.conversations.values():
            member = conversation.members.get(key)
            if member is not None and member.away != away:
                member.away = away
                self.emit(MembersChanged(conversation))

"""What the middle of the window says about the current conversation: the topic bar, the lines
still waiting for the server, the status bar and the title; and what Tab completes from.

A mixin of :class:`qtclient.window.MainWindow` (it uses the window's widgets and networks).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from qtclient.render import formatted, linkify, pending_html, tooltip
from twistedchat.client.session import Conversation, Session

#: Longest topic drawn in the topic bar (a server may send kilobytes).
MAX_TOPIC_SHOWN = 400


class CentreParts:
    """The topic, pending lines, status and title of :class:`MainWindow`."""

    if TYPE_CHECKING:  # WindowNetworks' property: the current network's session

        @property
        def session(self) -> Session: ...

    topic: Any
    pending: Any
    status_label: Any
    conversations: Any
    colours: Any
    network: Any
    current: Any
    display_name: Any
    setWindowTitle: Any
    _conversation_of: Any
    avatars: Any
    _members_dirty: Any
    _schedule_flush: Any

    def _show_topic(self, conversation: Conversation) -> None:
        if conversation.is_channel:
            topic = conversation.topic
            if len(topic) > MAX_TOPIC_SHOWN:  # the whole topic is in the tooltip
                topic = topic[:MAX_TOPIC_SHOWN] + "…"
            text = formatted(topic, self.colours) if topic else "<i>No topic (set one with /topic)</i>"
            if not conversation.joined:
                text += " <i>(you are not in this channel)</i>"
        elif conversation.is_query:
            text = self._query_heading(conversation)
        else:
            address = self.network(conversation).link.address
            text = f"{linkify(self.display_name(conversation))} at {address}"
        self.topic.setText(text)
        self.topic.setToolTip(tooltip(conversation.topic) if conversation.is_channel else "")

    def _query_heading(self, conversation: Conversation) -> str:
        """"Private conversation with Ada (ada) — online", with a bot badge and the avatar."""
        person = self.network(conversation).session.people.get(conversation.name)
        if person is None:
            return f"Private conversation with {linkify(conversation.name)}"
        text = f"Private conversation with {html.escape(person.label())}"
        state = person.state()
        if state:
            colour = {"online": "#27ae60", "away": "#e67e22"}.get(state, self.colours.event)
            text += f' — <span style="color:{colour}">● {state}</span>'
        if person.bot:
            text += " <i>(bot)</i>"
        avatar = self.avatars.image_html(person.avatar) if person.avatar else ""
        return avatar + text

    def _person_changed(self, nick: str, session: Session) -> None:
        """Someone's state, name or avatar changed: the heading and member list follow."""
        current = self.current()
        if current is None or self.network(current).session is not session:
            return
        if current.is_query and session.people.get(current.name) is session.people.get(nick):
            self._show_topic(current)
        elif current.is_channel and current.has_member(nick):
            self._members_dirty.add(id(current))
            self._schedule_flush()

    def _avatar_ready(self, url: str) -> None:
        current = self.current()
        if current is not None and current.is_query:
            self._show_topic(current)

    def _show_pending(self, conversation: Conversation) -> None:
        session = self.network(conversation).session
        waiting = session.pending_in(conversation)
        fragments = [pending_html(p.target, p.text, session.nick,
                                  p.conversation.name.casefold() == p.target.casefold(),
                                  self.colours) for p in waiting[-5:]]
        if len(waiting) > 5:
            fragments.insert(0, f"<i>… {len(waiting) - 5} more waiting</i>")
        self.pending.setText("<br>".join(fragments))
        self.pending.setVisible(bool(fragments))

    def _show_status(self, session: Session) -> None:
        self.status_label.setText(session.status)
        self.status_label.setStyleSheet("" if session.connected else "color: #e74c3c")

    def _update_title(self) -> None:
        current = self.current()
        place = self.display_name(current or self.session.server)
        self.setWindowTitle(f"{place} — {self.session.nick} — twistedchat")

    def _completion_nicks(self) -> list[str]:
        current = self.current()
        if current is None:
            return []
        nicks = [member.nick for member in current.members.values()]
        if current.is_query:
            nicks.append(current.name)
        return [nick for nick in nicks if not self.session.is_me(nick)]

    def _completion_channels(self) -> list[str]:
        return [c.name for c in self.session.conversations.values() if c.is_channel]

    def conversation_groups(self) -> list[list[str]]:
        """The names in the list, network by network (the server conversation first)."""
        groups: dict[int, list[str]] = {}
        for row in range(self.conversations.count()):
            conversation = self._conversation_of(self.conversations.item(row))
            if conversation is not None:
                key = id(self.network(conversation))
                groups.setdefault(key, []).append(self.display_name(conversation))
        return list(groups.values())


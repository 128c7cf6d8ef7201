"""Drawing session lines into the message views: queued, then rendered a chunk per event-loop turn.

A mixin of :class:`qtclient.window.MainWindow`: a burst of thousands of lines costs a few layouts,
and the window keeps answering while it is drawn.
"""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QTimer

from qtclient.messages import MessageView
from qtclient.qt import present
from qtclient.render import line_html
from twistedchat.client.people import People
from twistedchat.client.session import Conversation, Line, LineAdded, Session

#: Most lines added to the views in one event-loop turn: a huge burst is shown over a few turns,
#: so the window never stops answering for long.
FLUSH_CHUNK = 200


class WindowDrawing:
    """The line queue of :class:`MainWindow` and the drawing of its views."""

    views: dict[int, MessageView]
    colours: Any
    preferences: Any
    conversations: Any
    member_pane: Any
    networks: list[Any]
    session: Any
    network: Any
    current: Any
    _pending: dict[int, list[Line]]
    _members_dirty: set[int]
    _flush_scheduled: bool
    _update_item: Any
    _update_title: Any
    _show_topic: Any

    def _render(self, line: Line, people: People | None = None) -> str:
        person = people.get(line.nick) if people is not None and line.nick else None
        return line_html(line, self.colours, self.preferences.time_format, person)

    def _draw(self, key: int, view: MessageView, lines: list[Line]) -> None:
        """Append ``lines`` to ``view``, the "new messages" line before the first unread one."""
        conversation = self.conversations.conversation_of_key(key)
        people = self.network(conversation).session.people if conversation is not None else None
        marker = conversation.first_unread if conversation is not None else None
        fragments: list[str] = []
        for line in lines:
            if line is marker:
                view.append_lines(fragments)
                fragments = []
                view.mark_new_lines()
            fragments.append(self._render(line, people))
        view.append_lines(fragments)

    def _line_added(self, event: LineAdded) -> None:
        view = self.views.get(id(event.conversation))
        if view is not None and event.line is event.conversation.first_unread:
            self.flush()  # the marker goes right before this line
            view.mark_new_lines()
        self._queue_lines(event.conversation, [event.line])

    def _queue_lines(self, conversation: Conversation, lines: list[Line]) -> None:
        """Lines are drawn once per event-loop turn (rendered then too), so a burst costs a few
        layouts, not thousands, and taking lines in stays cheap."""
        self._pending.setdefault(id(conversation), []).extend(lines)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            QTimer.singleShot(0, self._flush)

    def _flush(self, budget: int | None = None) -> None:
        """Show queued lines, at most ``budget`` of them (the rest wait for the next turn)."""
        self._flush_scheduled = False
        budget = FLUSH_CHUNK if budget is None else budget
        pending, self._pending = self._pending, {}
        for key, lines in pending.items():
            view = self.views.get(key)
            lines = lines[-present(view.document()).maximumBlockCount():] if view else []
            if budget < len(lines):
                self._pending[key] = lines[budget:]
                lines = lines[:budget]
            budget -= len(lines)
            if view is not None and lines:
                self._draw(key, view, lines)
        if self._pending:
            self._schedule_flush()
        dirty, self._members_dirty = self._members_dirty, set()
        for key in dirty:
            conversation = self.conversations.conversation_of_key(key)
            if conversation is not None:
                self._update_item(conversation)  # joined or left
        current = self.current()
        if current is not None and id(current) in dirty:
            self.member_pane.show_members(current, self.session.prefixes, self.session.people)
            self._show_topic(current)
        for network in self.networks:
            if network.logger is not None:
                network.logger.flush()

    def flush(self) -> None:
        """Show everything queued now (tests and benchmarks call this)."""
        self._flush(budget=sum(map(len, self._pending.values())))

    def redraw(self, conversation: Conversation) -> None:
        """Draw a conversation's view again from the model (merged, cleared, restored, restyled,
        history fetched): emptied now, filled like a burst, a chunk per event-loop turn."""
        view = self.views.get(id(conversation))
        if view is None:
            return
        view.redraw([])
        self._pending[id(conversation)] = list(conversation.lines)
        self._schedule_flush()
        self._update_item(conversation)
        self._update_title()

    def _prepend(self, conversation: Conversation, lines: list[Line], session: Session) -> None:
        """Older history goes on top of the view (a page of lines, not a redraw)."""
        view = self.views.get(id(conversation))
        if view is not None:
            view.prepend_lines([self._render(line, session.people) for line in lines],
                               len(conversation.lines))

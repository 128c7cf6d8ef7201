"""The main window: a view over a :class:`twistedchat.client.session.Session`, composed of parts.

Left, the conversations (:mod:`qtclient.panes`); in the middle, the topic, the messages
(:mod:`qtclient.messages`), the lines waiting for the server, the search bar and the input line
(:mod:`qtclient.inputline`); right, the members. Everything shown comes from session events
(drawn a chunk per event-loop turn: :mod:`qtclient.drawing`); everything typed goes to
:meth:`SessionLink.send_input`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QCloseEvent, QDesktopServices
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
)

from qtclient import keys
from qtclient.actions import WindowActions
from qtclient.avatars import AvatarCache
from qtclient.centre import CentreParts
from qtclient.channel_list import ChannelListWindow
from qtclient.drawing import WindowDrawing
from qtclient.inputline import InputLine
from qtclient.look import WindowLook
from qtclient.messages import MessageView
from qtclient.networks import Network, WindowNetworks
from qtclient.notify import Notifier
from qtclient.panes import ConversationList, MemberPane, column
from qtclient.preferences import Preferences
from qtclient.qt import present
from qtclient.search import SearchBar
from qtclient.theme import colours_for
from twistedchat.client.link import SessionLink
from twistedchat.client.session import (
    Activated,
    Attention,
    ChannelListChanged,
    Conversation,
    ConversationCleared,
    ConversationClosed,
    ConversationOpened,
    ConversationRenamed,
    CountersChanged,
    Event,
    HistoryRestored,
    Line,
    LineAdded,
    MembersChanged,
    NickChanged,
    PendingChanged,
    PersonChanged,
    QuitRequested,
    ReadMarkerMoved,
    ServerInfoChanged,
    Session,
    StatusChanged,
    TopicChanged,
)


class MainWindow(WindowNetworks, WindowActions, WindowLook, CentreParts, WindowDrawing,
                 QMainWindow):
    """The chat window: one or more networks' sessions, their conversations grouped in the list."""

    def __init__(self, session: Session, link: SessionLink, notifier: Notifier | None = None,
                 preferences: Preferences | None = None,
                 on_preferences: Callable[[Preferences], None] | None = None,
                 logger: Any = None) -> None:
        super().__init__()
        self.networks: list[Network] = []
        self._network_of: dict[int, Network] = {}
        self.notifier = notifier or Notifier(self)
        self.preferences = preferences or Preferences()
        self.on_preferences = on_preferences
        self.open_servers: Callable[[], Any] | None = None
        self.closing_callback: Callable[[], object] | None = None
        self.views: dict[int, MessageView] = {}
        self.colours = colours_for(self.palette())
        self.avatars = AvatarCache(link.reactor, self._avatar_ready)
        self.channel_list: ChannelListWindow | None = None
        self.paste_box: Any = None
        self._pending: dict[int, list[Line]] = {}
        self._members_dirty: set[int] = set()
        self._flush_scheduled = False
        self._restyling = False
        self.resize(1000, 640)

        self.conversations = ConversationList(self.run, self.toggle_mute)
        self.conversations.currentItemChanged.connect(self._conversation_selected)
        self.topic = QLabel()
        self.topic.setObjectName("topic")
        self.topic.setWordWrap(True)
        self.topic.setTextFormat(Qt.TextFormat.RichText)
        self.topic.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.topic.linkActivated.connect(lambda url: QDesktopServices.openUrl(url))
        self.stack = QStackedWidget()
        self.pending = QLabel()
        self.pending.setObjectName("pending")
        self.pending.hide()
        self.member_pane = MemberPane(self.run, self.open_query)
        self.members = self.member_pane.list
        self.member_count = self.member_pane.heading
        self.input = InputLine(self._completion_nicks, self._completion_channels)
        self.input.returnPressed.connect(self.send)
        self.input.paste_requested.connect(self.ask_paste)
        self.input.page_requested.connect(self._page)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.search = SearchBar(self.current_view)

        heading = QLabel("Conversations")
        heading.setObjectName("heading")
        row = QHBoxLayout()
        row.setContentsMargins(6, 0, 6, 0)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        splitter = QSplitter()
        self.splitter = splitter
        splitter.addWidget(column(heading, self.conversations))
        splitter.addWidget(column(self.topic, self.stack, self.pending, self.search, row,
                                  spacing=4, bottom=6))
        splitter.addWidget(self.member_pane)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([170, 680, 150])
        self.setCentralWidget(splitter)
        keys.install(self)
        self.status_label = QLabel(session.status)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # reasons come from servers
        present(self.statusBar()).addWidget(self.status_label, 1)
        self.add_network(session, link, logger)
        self.apply_preferences(self.preferences)
        self._select(session.server)
        self._flush()
        self.input.setFocus()

    # -- session events ------------------------------------------------------------------------

    def on_event(self, event: Event, network: Network | None = None) -> None:
        network = network or self.networks[0]
        session = network.session
        if isinstance(event, LineAdded):
            self._line_added(event)
        elif isinstance(event, Activated):
            if network is self.network():  # another network's activity never moves the view
                self._select(event.conversation)
        elif isinstance(event, ConversationOpened):
            self._add_conversation(event.conversation, network)
        elif isinstance(event, ConversationClosed):
            self._remove_conversation(event.conversation)
        elif isinstance(event, ConversationRenamed):
            self.redraw(event.conversation)
        elif isinstance(event, HistoryRestored) and event.older:
            self._prepend(event.conversation, event.older, session)
        elif isinstance(event, (ConversationCleared, HistoryRestored, ReadMarkerMoved)):
            self.redraw(event.conversation)
        elif isinstance(event, MembersChanged):
            self._members_dirty.add(id(event.conversation))  # drawn once per turn
            self._schedule_flush()
        elif isinstance(event, CountersChanged):
            self._update_item(event.conversation)
        elif isinstance(event, TopicChanged):
            if event.conversation is self.current():
                self._show_topic(event.conversation)
        elif isinstance(event, ServerInfoChanged):
            self._update_item(session.server)
            current = self.current()
            if current is not None:
                self._show_topic(current)
            self._update_title()
        elif isinstance(event, StatusChanged):
            if network is self.network():
                self._show_status(session)
            self._update_title()
        elif isinstance(event, NickChanged):
            self._update_title()
        elif isinstance(event, PendingChanged):
            if event.conversation is self.current():
                self._show_pending(event.conversation)
        elif isinstance(event, ChannelListChanged):
            self._show_channel_list(session, event.done)
        elif isinstance(event, Attention):
            self._attention(event)
        elif isinstance(event, PersonChanged):
            self._person_changed(event.nick, session)
        elif isinstance(event, QuitRequested):
            if len(self.networks) == 1:
                self.close()  # the link has sent QUIT with the user's reason
            else:
                self.remove_network(network)

    # -- conversations -------------------------------------------------------------------------

    def current(self) -> Conversation | None:
        return self.conversations.conversation_of(self.conversations.currentItem())

    def current_view(self) -> MessageView | None:
        current = self.current()
        return self.views.get(id(current)) if current is not None else None

    def _conversation_of(self, item: Any) -> Conversation | None:
        return self.conversations.conversation_of(item)

    def _item(self, conversation: Conversation) -> Any:
        return self.conversations.item_of(conversation)

    def _add_conversation(self, conversation: Conversation, network: Network) -> None:
        self._network_of[id(conversation)] = network
        if id(conversation) not in self.views:
            view = MessageView(network.session.scrollback, self._type_into_input)
            view.set_indent_sample(self._time_sample())
            view.marker_colour = self.colours.error
            view.on_top = lambda: network.link.fetch_older(conversation)
            self.views[id(conversation)] = view
            self.stack.addWidget(view)
            self._queue_lines(conversation, list(conversation.lines))
        self.conversations.add(conversation, id(network))
        self._update_item(conversation)
        if conversation is network.session.active:
            self._select(conversation)

    def _remove_conversation(self, conversation: Conversation) -> None:
        self.conversations.remove(conversation)
        self._network_of.pop(id(conversation), None)
        view = self.views.pop(id(conversation), None)
        if view is not None:
            self.stack.removeWidget(view)
            view.deleteLater()

    def display_name(self, conversation: Conversation) -> str:
        """The server conversation is called after its network (or address), never ``*server*``."""
        if conversation.is_server:
            network = self.network(conversation)
            return network.session.network or network.link.address
        return conversation.name

    def _update_item(self, conversation: Conversation) -> None:
        self.conversations.show_state(conversation, self.display_name(conversation))

    def _select(self, conversation: Conversation) -> None:
        item = self._item(conversation)
        if item is not None and self.conversations.currentItem() is not item:
            self.conversations.setCurrentItem(item)

    def _conversation_selected(self, item: Any, _previous: object) -> None:
        conversation = self._conversation_of(item)
        if conversation is None:
            return
        shown = self.network(conversation)
        for network in self.networks:
            if network is not shown and network.session.in_view:
                network.session.look_away()
        shown.session.activate(conversation)
        self.stack.setCurrentWidget(self.views[id(conversation)])
        self._show_status(self.network(conversation).session)
        self._show_topic(conversation)
        self.member_pane.show_members(conversation, self.session.prefixes,
                                      self.session.people)
        self._show_pending(conversation)
        self._update_item(conversation)
        self._update_title()
        self.input.setFocus()

    # -- actions -------------------------------------------------------------------------------

    def send(self) -> None:
        """Enter or Send: carry out the typed line in the current conversation."""
        text = self.input.take()
        if text.strip():
            self.link.send_input(text, self.current())
            self._follow_active()

    def _follow_active(self) -> None:
        if not self.networks:
            return
        active = self.session.active
        if active is not None and active is not self.current():
            self._select(active)

    def _attention(self, event: Attention) -> None:
        if not self.preferences.notifications:
            return
        if self.isActiveWindow() and event.conversation is self.current():
            return
        where = event.conversation.name
        title = f"{event.line.nick} in {where}" if event.conversation.is_channel else \
            f"Message from {event.line.nick}"
        self.notifier.notify(title, event.line.text)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Closing the window quits the chat (QUIT is sent by whoever handles the callback)."""
        for network in self.networks:
            if network.handler is not None:
                network.session.unsubscribe(network.handler)
                network.handler = None
        if self.closing_callback is not None:
            self.closing_callback()
        if event is not None:
            event.accept()

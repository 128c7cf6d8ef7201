"""The main window: a view over a :class:`twistedchat.client.session.Session`.

Left, the conversations with unread and mention counters; in the middle, the topic bar, the
messages and the input line; right, the member list. Everything shown comes from session events;
everything typed goes to :meth:`SessionLink.send_input`.
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import QEvent, Qt, QTimer
from PyQt6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QFont,
    QKeyEvent,
    QKeySequence,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
)
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from qtclient.notify import Notifier
from qtclient.render import line_html
from twistedchat.client.input_aids import InputHistory, NickCompleter
from twistedchat.client.link import SessionLink
from twistedchat.client.session import (
    SERVER,
    Activated,
    Attention,
    Conversation,
    ConversationClosed,
    ConversationOpened,
    ConversationRenamed,
    CountersChanged,
    Event,
    LineAdded,
    MembersChanged,
    NickChanged,
    QuitRequested,
    ServerInfoChanged,
    Session,
    StatusChanged,
    TopicChanged,
)
from twistedchat.wire.names import casefold

KEY = Qt.ItemDataRole.UserRole
LINE_FORMAT = QTextBlockFormat()
LINE_FORMAT.setLineHeight(  # PyQt6's stub wants an int here but types the enum's .value as the enum
    125, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)  # type: ignore[arg-type]
STYLE = """
QListWidget { border: none; background: #f4f6f7; }
QListWidget::item { padding: 4px 8px; }
QListWidget::item:selected { background: #d6eaf8; color: black; }
QTextBrowser { border: none; background: white; }
QLineEdit#topic { border: none; border-bottom: 1px solid #d5d8dc; padding: 7px 8px;
                  background: white; font-weight: bold; }
QLabel#heading { color: #7f8c8d; padding: 6px 8px 2px 8px; background: #f4f6f7; }
"""


def column(*parts: QWidget | QHBoxLayout, spacing: int = 0, bottom: int = 0) -> QWidget:
    """A widget stacking ``parts`` top to bottom; the second one takes the spare height."""
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, bottom)
    layout.setSpacing(spacing)
    for index, part in enumerate(parts):
        if isinstance(part, QHBoxLayout):
            layout.addLayout(part)
        else:
            layout.addWidget(part, 1 if index == 1 else 0)
    return holder


class InputLine(QLineEdit):
    """The line you type in: Up/Down recall what you sent, Tab completes nicks."""

    def __init__(self, nicks: Callable[[], list[str]]) -> None:
        super().__init__()
        self.history = InputHistory()
        self.completer_ = NickCompleter()
        self._nicks = nicks
        self.setPlaceholderText("Type a message, or /help")

    def event(self, event: QEvent | None) -> bool:
        # Tab would move the focus before keyPressEvent sees it.
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Tab:
                text, cursor = self.completer_.complete(self.text(), self.cursorPosition(),
                                                        self._nicks())
                self.setText(text)
                self.setCursorPosition(cursor)
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        assert event is not None, "Qt always passes the event"
        key = event.key()
        if key == Qt.Key.Key_Up:
            self.setText(self.history.previous(self.text()))
        elif key == Qt.Key.Key_Down:
            self.setText(self.history.next())
        else:
            self.completer_.reset()
            super().keyPressEvent(event)

    def take(self) -> str:
        """The typed line, remembered in the history and cleared from the field."""
        text = self.text()
        self.history.add(text)
        self.clear()
        return text


class MessageView(QTextBrowser):
    """One conversation's lines, capped at the session's scrollback."""

    def __init__(self, scrollback: int) -> None:
        super().__init__()
        self.setOpenLinks(False)  # a click opens the browser; the view itself never navigates
        self.anchorClicked.connect(lambda url: QDesktopServices.openUrl(url))
        document = self.document()
        assert document is not None, "a QTextBrowser owns a document"
        document.setMaximumBlockCount(scrollback)
        document.setDocumentMargin(8)

    def append_lines(self, fragments: list[str]) -> None:
        """Add lines at the end in one edit; keep following the end if the user was there."""
        bar, document = self.verticalScrollBar(), self.document()
        assert bar is not None and document is not None, "a QTextBrowser owns both"
        at_end = bar.value() >= bar.maximum() - 4
        cursor = QTextCursor(document)
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        first = document.isEmpty()
        for fragment in fragments:
            if not first:
                cursor.insertBlock(LINE_FORMAT, QTextCharFormat())
            cursor.insertHtml(fragment)
            if first:
                cursor.setBlockFormat(LINE_FORMAT)
                first = False
        cursor.endEditBlock()
        if at_end:
            bar.setValue(bar.maximum())


class MainWindow(QMainWindow):
    """The chat window for one session."""

    def __init__(self, session: Session, link: SessionLink,
                 notifier: Notifier | None = None) -> None:
        super().__init__()
        self.session = session
        self.link = link
        self.notifier = notifier or Notifier(self)
        self.closing_callback: Callable[[], object] | None = None
        self.views: dict[int, MessageView] = {}
        self._pending: dict[int, list[str]] = {}
        self._members_dirty: set[int] = set()
        self._flush_scheduled = False
        self.resize(1000, 640)

        self.conversations = QListWidget()
        self.conversations.setMinimumWidth(140)
        self.conversations.currentItemChanged.connect(self._conversation_selected)
        self.setStyleSheet(STYLE)
        self.topic = QLineEdit()
        self.topic.setObjectName("topic")
        self.topic.setReadOnly(True)
        self.topic.setPlaceholderText("No topic")
        self.stack = QStackedWidget()
        self.members = QListWidget()
        self.members.setMinimumWidth(120)
        self.members.itemDoubleClicked.connect(self._member_double_clicked)
        self.member_count = QLabel()
        self.member_count.setObjectName("heading")
        self.input = InputLine(self._completion_nicks)
        self.input.returnPressed.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)

        heading = QLabel("Conversations")
        heading.setObjectName("heading")
        row = QHBoxLayout()
        row.setContentsMargins(6, 0, 6, 0)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        left = column(heading, self.conversations)
        centre = column(self.topic, self.stack, row, spacing=4, bottom=6)
        right = column(self.member_count, self.members)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(centre)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([170, 680, 150])
        self.setCentralWidget(splitter)
        self._make_menu()
        self.status_label = QLabel(session.status)
        status_bar = self.statusBar()
        assert status_bar is not None, "a QMainWindow makes its status bar on demand"
        status_bar.addWidget(self.status_label, 1)

        for conversation in list(session.conversations.values()):
            self._add_conversation(conversation)
            self._queue_lines(conversation, [line_html(line) for line in conversation.lines])
        session.subscribe(self.on_event)
        self._select(session.server)
        self._flush()
        self.input.setFocus()

    # -- session events ------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, LineAdded):
            self._queue_lines(event.conversation, [line_html(event.line)])
        elif isinstance(event, Activated):
            self._select(event.conversation)
        elif isinstance(event, ConversationOpened):
            self._add_conversation(event.conversation)
        elif isinstance(event, ConversationClosed):
            self._remove_conversation(event.conversation)
        elif isinstance(event, ConversationRenamed):
            self._rename_conversation(event.conversation, event.old_name)
        elif isinstance(event, MembersChanged):
            self._members_dirty.add(id(event.conversation))
            self._schedule_flush()
        elif isinstance(event, CountersChanged):
            self._update_item(event.conversation)
        elif isinstance(event, TopicChanged):
            if event.conversation is self.current():
                self._show_topic(event.conversation)
        elif isinstance(event, ServerInfoChanged):
            self._update_item(self.session.server)
            current = self.current()
            if current is not None:
                self._show_topic(current)
        elif isinstance(event, StatusChanged):
            self.status_label.setText(event.text)
            self.status_label.setStyleSheet("" if event.connected else "color: #c0392b")
            self._update_title()
        elif isinstance(event, NickChanged):
            self._update_title()
        elif isinstance(event, Attention):
            self._attention(event)
        elif isinstance(event, QuitRequested):
            self.close()  # the link has sent QUIT with the user's reason

    def _queue_lines(self, conversation: Conversation, fragments: list[str]) -> None:
        """Lines are added once per event-loop turn, so a burst costs one layout, not thousands."""
        self._pending.setdefault(id(conversation), []).extend(fragments)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            QTimer.singleShot(0, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for key, fragments in pending.items():
            view = self.views.get(key)
            if view is not None and fragments:
                view.append_lines(fragments[-self.session.scrollback:])
        dirty, self._members_dirty = self._members_dirty, set()
        current = self.current()
        if current is not None and id(current) in dirty:
            self._show_members(current)

    def flush(self) -> None:
        """Show everything queued now (tests and benchmarks call this)."""
        self._flush()

    # -- conversations -------------------------------------------------------------------------

    def current(self) -> Conversation | None:
        item = self.conversations.currentItem()
        return self._conversation_of(item) if item is not None else None

    def _conversation_of(self, item: QListWidgetItem) -> Conversation | None:
        return self.session.find(item.data(KEY))

    def _item(self, conversation: Conversation) -> QListWidgetItem | None:
        for row in range(self.conversations.count()):
            item = self.conversations.item(row)
            if item is not None and item.data(KEY) == casefold(conversation.name):
                return item
        return None

    def _add_conversation(self, conversation: Conversation) -> None:
        if id(conversation) not in self.views:
            view = MessageView(self.session.scrollback)
            self.views[id(conversation)] = view
            self.stack.addWidget(view)
        item = QListWidgetItem()
        item.setData(KEY, casefold(conversation.name))
        self.conversations.addItem(item)
        self._update_item(conversation)
        if conversation is self.session.active:
            self._select(conversation)

    def _remove_conversation(self, conversation: Conversation) -> None:
        item = self._item(conversation)
        if item is not None:
            self.conversations.takeItem(self.conversations.row(item))
        view = self.views.pop(id(conversation), None)
        if view is not None:
            self.stack.removeWidget(view)
            view.deleteLater()

    def _rename_conversation(self, conversation: Conversation, old_name: str) -> None:
        for row in range(self.conversations.count()):
            item = self.conversations.item(row)
            if item is not None and item.data(KEY) == casefold(old_name):
                item.setData(KEY, casefold(conversation.name))
        view = self.views.get(id(conversation))
        if view is not None:  # it may have taken in the lines of a conversation it merged with
            view.clear()
            self._pending.pop(id(conversation), None)
            self._queue_lines(conversation, [line_html(line) for line in conversation.lines])
        self._update_item(conversation)
        self._update_title()

    def _label(self, conversation: Conversation) -> str:
        name = (self.session.network or self.link.address) if conversation.is_server \
            else conversation.name
        if conversation.mentions:
            return f"{name}  ({conversation.unread}, @{conversation.mentions})"
        if conversation.unread:
            return f"{name}  ({conversation.unread})"
        return name

    def _update_item(self, conversation: Conversation) -> None:
        item = self._item(conversation)
        if item is None:
            return
        item.setText(self._label(conversation))
        font = QFont(item.font())
        font.setBold(bool(conversation.unread))
        item.setFont(font)
        item.setForeground(Qt.GlobalColor.darkRed if conversation.mentions
                           else self.palette().text().color())

    def _select(self, conversation: Conversation) -> None:
        item = self._item(conversation)
        if item is not None and self.conversations.currentItem() is not item:
            self.conversations.setCurrentItem(item)

    def _make_menu(self) -> None:
        """The Chat menu; its shortcuts work from anywhere in the window."""
        menu_bar = self.menuBar()
        assert menu_bar is not None, "a QMainWindow makes its menu bar on demand"
        menu = menu_bar.addMenu("&Chat")
        assert menu is not None, "addMenu with a title always makes one"
        actions = [
            ("&Join a channel…", "Ctrl+J", lambda: self._prefill("/join #")),
            ("&Close conversation", "Ctrl+W", lambda: self._run("/close")),
            ("&Next conversation", "Ctrl+PgDown", lambda: self._step(1)),
            ("&Previous conversation", "Ctrl+PgUp", lambda: self._step(-1)),
            ("&Quit", "Ctrl+Q", self.close),
        ]
        for text, keys, slot in actions:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            menu.addAction(action)

    def _prefill(self, text: str) -> None:
        self.input.setText(text)
        self.input.setFocus()

    def _run(self, command: str) -> None:
        self.link.send_input(command, self.current())

    def _step(self, delta: int) -> None:
        count = self.conversations.count()
        if count:
            row = (self.conversations.currentRow() + delta) % count
            self.conversations.setCurrentRow(row)

    def show_conversation(self, name: str) -> None:
        conversation = self.session.find(name)
        if conversation is not None:
            self._select(conversation)

    def _conversation_selected(self, item: QListWidgetItem | None, _previous: object) -> None:
        conversation = self._conversation_of(item) if item is not None else None
        if conversation is None:
            return
        self.session.activate(conversation)
        self.stack.setCurrentWidget(self.views[id(conversation)])
        self._show_topic(conversation)
        self._show_members(conversation)
        self._update_item(conversation)
        self._update_title()
        self.input.setFocus()

    def _show_topic(self, conversation: Conversation) -> None:
        if conversation.is_channel:
            self.topic.setText(conversation.topic)
            self.topic.setPlaceholderText("No topic (set one with /topic)")
        elif conversation.is_query:
            self.topic.setText(f"Private conversation with {conversation.name}")
        else:
            self.topic.setText(f"{self.session.network or 'Server'} at {self.link.address}")
        self.topic.setCursorPosition(0)
        self.topic.setToolTip(self.topic.text())

    def _show_members(self, conversation: Conversation) -> None:
        self.members.clear()
        members = conversation.sorted_members(self.session.prefixes)
        for member in members:
            item = QListWidgetItem(member.prefix[:1] + member.nick)
            item.setData(KEY, member.nick)
            self.members.addItem(item)
        visible = conversation.is_channel
        self.members.setVisible(visible)
        self.member_count.setVisible(visible)
        self.member_count.setText(f"{len(members)} members" if visible else "")

    def _update_title(self) -> None:
        current = self.current()
        place = current.name if current is not None and not current.is_server else SERVER
        self.setWindowTitle(f"{place} — {self.session.nick} — twistedchat")

    def _member_double_clicked(self, item: QListWidgetItem) -> None:
        nick = item.data(KEY)
        self.session.activate(self.session.open(nick))
        self.show_conversation(nick)

    def _completion_nicks(self) -> list[str]:
        current = self.current()
        if current is None:
            return []
        nicks = [member.nick for member in current.members.values()]
        if current.is_query:
            nicks.append(current.name)
        return [nick for nick in nicks if not self.session.is_me(nick)]

    # -- actions -------------------------------------------------------------------------------

    def send(self) -> None:
        """Enter or Send: carry out the typed line in the current conversation."""
        text = self.input.take()
        if text.strip():
            self.link.send_input(text, self.current())
            active = self.session.active
            if active is not None and active is not self.current():
                self._select(active)

    def _attention(self, event: Attention) -> None:
        if self.isActiveWindow() and event.conversation is self.current():
            return
        where = event.conversation.name
        title = f"{event.line.nick} in {where}" if event.conversation.is_channel else \
            f"Message from {event.line.nick}"
        self.notifier.notify(title, event.line.text)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        """Closing the window quits the chat (QUIT is sent by whoever handles the callback)."""
        self.session.unsubscribe(self.on_event)
        if self.closing_callback is not None:
            self.closing_callback()
        if event is not None:
            event.accept()


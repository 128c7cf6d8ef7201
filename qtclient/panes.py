"""The side panes: the conversation list (left) and the member list (right), with their menus.

Long names are elided (never a horizontal scrollbar) and shown whole in a tooltip; a channel we
are not in is drawn greyed and in italics; away members are greyed.
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import QModelIndex, QPoint, Qt
from PyQt6.QtGui import QColor, QFont, QPainter, QPalette
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from qtclient.menus import build_menu, conversation_commands, member_commands
from qtclient.qt import present
from qtclient.render import tooltip
from twistedchat.client.people import People
from twistedchat.client.session import Conversation

KEY = Qt.ItemDataRole.UserRole
#: Side panes may shrink this far with the window.
MIN_PANE_WIDTH = 60


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


def side_list() -> QListWidget:
    """A list that elides long names instead of scrolling sideways, and shrinks with the window."""
    widget = QListWidget()
    widget.setMinimumWidth(MIN_PANE_WIDTH)
    widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    widget.setTextElideMode(Qt.TextElideMode.ElideRight)
    widget.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    return widget


def quiet_colour(palette: QPalette) -> QColor:
    """Greyed text: halfway between the text and its background, readable but quieter."""
    text, base = palette.color(QPalette.ColorRole.Text), palette.color(QPalette.ColorRole.Base)
    return QColor((text.red() + base.red()) // 2, (text.green() + base.green()) // 2,
                  (text.blue() + base.blue()) // 2)


def members_label(count: int) -> str:
    return f"{count} {'member' if count == 1 else 'members'}"


GROUP = Qt.ItemDataRole.UserRole + 1
#: How far a network's channels and private conversations sit right of its server entry.
GROUP_INDENT = 12


class GroupIndent(QStyledItemDelegate):
    """Draws a network's conversations indented under its server entry, like a tree."""

    def __init__(self, is_server: Callable[[QModelIndex], bool], parent: QWidget) -> None:
        super().__init__(parent)
        self._is_server = is_server

    def paint(self, painter: QPainter | None, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if not self._is_server(index):
            option = QStyleOptionViewItem(option)
            option.rect = option.rect.adjusted(GROUP_INDENT, 0, 0, 0)
        super().paint(painter, option, index)


class ConversationList(QListWidget):
    """Conversations with counters, states and a menu; each network's grouped under its server
    conversation, in the order they opened."""

    def __init__(self, run: Callable[[str], None], mute: Callable[[Conversation], None]) -> None:
        super().__init__()
        self._conversations: dict[int, Conversation] = {}
        self._run = run
        self._mute = mute
        self.mention_colour = QColor("#c0392b")
        self.setMinimumWidth(MIN_PANE_WIDTH)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu_at)
        self.setItemDelegate(GroupIndent(self._index_is_server, self))

    def _index_is_server(self, index: QModelIndex) -> bool:
        conversation = self._conversations.get(index.data(KEY))
        return conversation is None or conversation.is_server

    def conversation_of(self, item: QListWidgetItem | None) -> Conversation | None:
        return self._conversations.get(item.data(KEY)) if item is not None else None

    def conversation_of_key(self, key: int) -> Conversation | None:
        return self._conversations.get(key)

    def item_of(self, conversation: Conversation) -> QListWidgetItem | None:
        key = id(conversation)
        for row in range(self.count()):
            item = self.item(row)
            if item is not None and item.data(KEY) == key:
                return item
        return None

    def add(self, conversation: Conversation, group: int = 0) -> QListWidgetItem:
        """A new entry at the end of its network's ``group``."""
        item = QListWidgetItem()
        item.setData(KEY, id(conversation))
        item.setData(GROUP, group)
        self._conversations[id(conversation)] = conversation
        rows = [row for row in range(self.count()) if present(self.item(row)).data(GROUP) == group]
        self.insertItem(rows[-1] + 1 if rows else self.count(), item)
        return item

    def remove(self, conversation: Conversation) -> None:
        item = self.item_of(conversation)
        if item is not None:
            self.takeItem(self.row(item))
        self._conversations.pop(id(conversation), None)

    def show_state(self, conversation: Conversation, name: str) -> None:
        """The label (name and counters), bold when unread, greyed when the channel is left."""
        item = self.item_of(conversation)
        if item is None:
            return
        if conversation.mentions:
            label = f"{name}  ({conversation.unread}, @{conversation.mentions})"
        elif conversation.unread:
            label = f"{name}  ({conversation.unread})"
        else:
            label = name
        item.setText(label)
        left = conversation.is_channel and not conversation.joined
        item.setToolTip(tooltip(f"{name} (not joined: right-click to rejoin)" if left else name))
        font = QFont(item.font())
        font.setBold(bool(conversation.unread))
        font.setItalic(left or conversation.muted)
        item.setFont(font)
        palette = self.palette()
        if left or conversation.muted:
            colour = quiet_colour(palette)
        elif conversation.mentions:
            colour = self.mention_colour
        else:
            colour = palette.color(palette.ColorRole.Text)
        item.setForeground(colour)

    def menu_for(self, conversation: Conversation) -> QMenu:
        """The right-click menu of ``conversation`` (its entries run as commands there)."""

        def run(command: str) -> None:
            if command == "mute":
                self._mute(conversation)
            else:
                self._run(command)

        return build_menu(self, conversation_commands(conversation), run)

    def _menu_at(self, point: QPoint) -> None:
        item = self.itemAt(point)
        conversation = self.conversation_of(item)
        if conversation is not None:
            self.setCurrentItem(item)
            self.menu_for(conversation).popup(present(self.viewport()).mapToGlobal(point))


class MemberPane(QWidget):
    """The heading ("3 members") and the member list; hidden where there are no members."""

    def __init__(self, run: Callable[[str], None], query: Callable[[str], None]) -> None:
        super().__init__()
        self.heading = QLabel()
        self.heading.setObjectName("heading")
        self.list = side_list()
        self.list.itemDoubleClicked.connect(lambda item: query(item.data(KEY)))
        self.list.customContextMenuRequested.connect(self._menu_at)
        self._run = run
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.heading)
        layout.addWidget(self.list, 1)
        self.setMinimumWidth(MIN_PANE_WIDTH)

    def show_members(self, conversation: Conversation, prefixes: str,
                     people: People | None = None) -> None:
        """The member list: prefixes, away members greyed, bots marked, display names in tooltips."""
        self.list.clear()
        if not conversation.is_channel:
            self.hide()
            return
        self.show()
        members = conversation.sorted_members(prefixes)
        away_colour = quiet_colour(self.palette())
        for member in members:
            person = people.get(member.nick) if people is not None else None
            bot = " [bot]" if person is not None and person.bot else ""
            item = QListWidgetItem(member.prefix[:1] + member.nick + bot)
            item.setData(KEY, member.nick)
            label = person.label() if person is not None else member.nick
            item.setToolTip(tooltip(label + (" (away)" if member.away else "") + bot))
            if member.away:
                item.setForeground(away_colour)
            self.list.addItem(item)
        if conversation.joined:
            self.heading.setText(members_label(len(members)))
        else:
            self.heading.setText("Not in this channel")

    def menu_for(self, nick: str) -> QMenu:
        return build_menu(self, member_commands(nick), self._run)

    def _menu_at(self, point: QPoint) -> None:
        item = self.list.itemAt(point)
        if item is not None:
            self.menu_for(item.data(KEY)).popup(present(self.list.viewport()).mapToGlobal(point))

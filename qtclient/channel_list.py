"""The channel list window for ``/list``: channels, member counts and topics; double-click joins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from qtclient.qt import present
from twistedchat.client.formatting import strip


class ChannelListWindow(QDialog):
    """Shows :attr:`Session.channel_list` with a filter; ``join(name)`` on double-click or Enter."""

    def __init__(self, parent: QWidget, join: Callable[[str], None]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Channels")
        self.resize(560, 420)
        self._join = join
        #: the session whose list is shown (the window joins on that network)
        self.session: Any = None
        self._entries: list[tuple[str, int, str]] = []
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name or topic")
        self.filter.textChanged.connect(lambda _text: self._fill())
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Channel", "Users", "Topic"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        present(self.table.verticalHeader()).hide()
        present(self.table.horizontalHeader()).setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.table.cellActivated.connect(self._activated)
        self.table.cellDoubleClicked.connect(self._activated)
        self.status = QLabel("Asking the server…")
        layout = QVBoxLayout(self)
        for widget in (self.filter, self.table, self.status):
            layout.addWidget(widget)

    def show_entries(self, entries: list[tuple[str, int, str]], done: bool) -> None:
        """The list so far; the table is filled once it is complete (one fill, not one per line)."""
        count = len(entries)
        if not done:
            self.status.setText(f"{count} so far…")
            return
        self._entries = list(entries)
        self._fill()
        self.status.setText(f"{count} {'channel' if count == 1 else 'channels'}")

    def _fill(self) -> None:
        wanted = self.filter.text().casefold()
        rows = [e for e in self._entries
                if wanted in e[0].casefold() or wanted in strip(e[2]).casefold()]
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for row, (name, users, topic) in enumerate(rows):
            count = QTableWidgetItem()
            count.setData(Qt.ItemDataRole.DisplayRole, users)
            for column, item in enumerate((QTableWidgetItem(name), count,
                                           QTableWidgetItem(strip(topic)))):
                self.table.setItem(row, column, item)
        self.table.setSortingEnabled(True)
        self.table.sortItems(1, Qt.SortOrder.DescendingOrder)  # the busiest channels first

    def names(self) -> list[str]:
        return [present(self.table.item(row, 0)).text() for row in range(self.table.rowCount())]

    def _activated(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self._join(item.text())

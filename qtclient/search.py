"""Ctrl+F: find text in the current conversation's scrollback, newest match first."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QKeyEvent, QTextCursor, QTextDocument
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QTextBrowser, QWidget


class SearchBar(QWidget):
    """A find field over the message view: Enter finds the previous (older) match, Shift+Enter the
    next one, Escape closes."""

    def __init__(self, view: Callable[[], QTextBrowser | None]) -> None:
        super().__init__()
        self._view = view
        self.field = QLineEdit()
        self.field.setPlaceholderText("Find in this conversation")
        self.field.returnPressed.connect(lambda: self.find(backward=True))
        self.field.textChanged.connect(self._restart)
        self.status = QLabel()
        older = QPushButton("Older")
        older.clicked.connect(lambda: self.find(backward=True))
        newer = QPushButton("Newer")
        newer.clicked.connect(lambda: self.find(backward=False))
        close = QPushButton("Close")
        close.clicked.connect(self.close_bar)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        for widget in (self.field, self.status, older, newer, close):
            row.addWidget(widget, 1 if widget is self.field else 0)
        self.hide()

    def open_bar(self) -> None:
        self.show()
        self.field.setFocus()
        self.field.selectAll()

    def close_bar(self) -> None:
        self.hide()
        self.status.clear()

    def _restart(self, _text: str) -> None:
        view = self._view()
        if view is not None:
            cursor = view.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            view.setTextCursor(cursor)
        self.find(backward=True)

    # QWidget.find (a widget by its window id) is unrelated; this is the search bar's own.
    def find(self, backward: bool = True) -> bool:  # type: ignore[override]
        """Select the next match before (or after) the current one; wraps around once."""
        view, text = self._view(), self.field.text()
        if view is None or not text:
            self.status.clear()
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        found = view.find(text, flags)
        if not found:  # wrap around
            cursor = view.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End if backward
                                else QTextCursor.MoveOperation.Start)
            view.setTextCursor(cursor)
            found = view.find(text, flags)
        self.status.setText("" if found else "Not found")
        return found

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        assert event is not None, "Qt always passes the event"
        if event.key() == Qt.Key.Key_Escape:
            self.close_bar()
        else:
            super().keyPressEvent(event)

"""The line you type in: history, Tab completion, formatting keys, PgUp/PgDn and multi-line paste.

Up/Down recall what you sent; Tab completes nicks, ``#channels`` and ``/commands``; Ctrl+B, Ctrl+I,
Ctrl+U, Ctrl+K and Ctrl+O type mIRC bold, italic, underline, colour and reset; PgUp/PgDn scroll the
messages; a paste of several lines is handed to :attr:`InputLine.paste_requested` (the window asks
before sending it) instead of being squeezed into one line.
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import QEvent, Qt, pyqtSignal
from PyQt6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PyQt6.QtWidgets import QLineEdit

from qtclient.qt import present
from twistedchat.client.commands import ALIASES, USAGE
from twistedchat.client.formatting import TYPING_CODES
from twistedchat.client.input_aids import InputHistory, NickCompleter

Names = Callable[[], list[str]]


class InputLine(QLineEdit):
    """The input line; the window gives it where nicks and channels come from."""

    paste_requested = pyqtSignal(list)
    page_requested = pyqtSignal(bool)  # True: down

    def __init__(self, nicks: Names, channels: Names | None = None) -> None:
        super().__init__()
        self.history = InputHistory()
        self.completer_ = NickCompleter()
        self._nicks = nicks
        self._channels = channels or (lambda: [])
        self._commands = sorted({*USAGE, *ALIASES})
        self.setPlaceholderText("Type a message, or /help   (Ctrl+B bold, Ctrl+K colour)")

    def event(self, event: QEvent | None) -> bool:
        # Tab would move the focus before keyPressEvent sees it.
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Tab and not event.modifiers():
                text, cursor = self.completer_.complete(
                    self.text(), self.cursorPosition(), self._nicks(), self._channels(),
                    self._commands)
                self.setText(text)
                self.setCursorPosition(cursor)
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        assert event is not None, "Qt always passes the event"
        key = event.key()
        control = event.modifiers() == Qt.KeyboardModifier.ControlModifier
        letter = QKeySequence(key).toString()
        if key == Qt.Key.Key_Up:
            self.setText(self.history.previous(self.text()))
        elif key == Qt.Key.Key_Down:
            self.setText(self.history.next())
        elif key in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown) and not event.modifiers():
            self.page_requested.emit(key == Qt.Key.Key_PageDown)
        elif event.matches(QKeySequence.StandardKey.Paste):
            self.paste_text(present(QGuiApplication.clipboard()).text())
        elif control and letter in TYPING_CODES:
            self.insert(TYPING_CODES[letter])
        else:
            self.completer_.reset()
            super().keyPressEvent(event)

    def paste_text(self, text: str) -> None:
        """Paste ``text``: one line goes in the field, several go to :attr:`paste_requested`."""
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        if len(lines) <= 1:
            self.insert(lines[0] if lines else "")
            return
        first = self.text() + lines[0]
        self.clear()
        self.paste_requested.emit([first, *lines[1:]])

    def take(self) -> str:
        """The typed line, remembered in the history and cleared from the field."""
        text = self.text()
        self.history.add(text)
        self.clear()
        return text

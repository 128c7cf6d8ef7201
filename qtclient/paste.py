"""Asking before a multi-line paste is sent as many messages (Enter confirms: Send is the default)."""

from __future__ import annotations

import html
from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox, QWidget

#: Lines quoted in the question, so the user sees what is about to go.
PREVIEW_LINES = 3


def confirm_paste(parent: QWidget, lines: list[str], target: str,
                  send: Callable[[list[str]], None]) -> QMessageBox:
    """Open (not block on) a question: send ``lines`` to ``target``? ``send`` runs on yes."""
    box = QMessageBox(parent)
    box.setWindowTitle("Send a paste")
    box.setIcon(QMessageBox.Icon.Question)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(f"Send {len(lines)} lines to {target}?")
    preview = "<br>".join(html.escape(line[:80]) for line in lines[:PREVIEW_LINES])
    more = len(lines) - PREVIEW_LINES
    box.setInformativeText(f"<p>{preview}" + (f"<br>… and {more} more" if more > 0 else "")
                           + "</p><p>They go out a few a second, in order.</p>")
    send_button = box.addButton(f"Send {len(lines)} lines", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(send_button)
    box.setEscapeButton(QMessageBox.StandardButton.Cancel)

    def answered(button: object) -> None:
        if button is send_button:
            send(lines)

    box.buttonClicked.connect(answered)
    box.open()
    return box

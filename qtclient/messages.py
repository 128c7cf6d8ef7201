"""One conversation's message view: lines with a hanging indent, the "new" marker, the cue below.

Typing while the view has the focus goes to the input line (a click to select text loses nothing);
the "new messages below" button shows while lines arrived out of sight and scrolls down when
clicked. Reaching the top (scrolling, or the wheel at the top) calls ``on_top``: older history.
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import (
    QDesktopServices,
    QFontMetrics,
    QKeyEvent,
    QResizeEvent,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QWheelEvent,
)
from PyQt6.QtWidgets import QPushButton, QTextBrowser

from qtclient.qt import present

#: Line spacing of the message view, in percent.
LINE_HEIGHT = 125
#: The marker drawn before the first line that came while the user looked elsewhere.
MARKER_TEXT = "new messages"


class MessageView(QTextBrowser):
    """One conversation's lines, capped at the session's scrollback."""

    def __init__(self, scrollback: int, type_into: Callable[[QKeyEvent], None] | None = None
                 ) -> None:
        super().__init__()
        self.setOpenLinks(False)  # a click opens the browser; the view itself never navigates
        self.anchorClicked.connect(lambda url: QDesktopServices.openUrl(url))
        present(self.document()).setMaximumBlockCount(scrollback)
        present(self.document()).setDocumentMargin(8)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.type_into = type_into
        self.indent_sample = "00:00"
        self.marker_colour = "#c0392b"
        self.cue = QPushButton("↓ New messages below", self.viewport())
        self.cue.setObjectName("cue")
        self.cue.hide()
        self.cue.clicked.connect(self.scroll_to_end)
        present(self.verticalScrollBar()).valueChanged.connect(self._scrolled)
        self._marker_wanted = False
        #: called when the user reaches the top (the window fetches older history)
        self.on_top: Callable[[], None] | None = None

    # -- lines -----------------------------------------------------------------------------------

    def block_format(self) -> QTextBlockFormat:
        """Wrapped lines continue under the text, not under the time (a hanging indent)."""
        indent = QFontMetrics(self.font()).horizontalAdvance(self.indent_sample + "\u00a0 ")
        block = QTextBlockFormat()
        # PyQt6's stub wants an int here but types the enum's .value as the enum
        block.setLineHeight(LINE_HEIGHT, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)  # type: ignore[arg-type]
        block.setLeftMargin(indent)
        block.setTextIndent(-indent)
        return block

    def at_end(self) -> bool:
        bar = present(self.verticalScrollBar())
        return bar.value() >= bar.maximum() - 4

    def append_lines(self, fragments: list[str]) -> None:
        """Add lines at the end in one edit; keep following the end if the user was there."""
        at_end = self.at_end()
        block = self.block_format()
        cursor = QTextCursor(present(self.document()))
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        first = present(self.document()).isEmpty()
        for fragment in fragments:
            if self._marker_wanted:
                self._marker_wanted = False
                self._insert(cursor, block, first, self._marker_html())
                first = False
            self._insert(cursor, block, first, fragment)
            first = False
        cursor.endEditBlock()
        if at_end:
            self.scroll_to_end()
        elif fragments and present(self.verticalScrollBar()).maximum() > 0:
            self._place_cue()
            self.cue.show()

    def prepend_lines(self, fragments: list[str], keep: int) -> None:
        """Add older lines at the top in one edit (the view holds up to ``keep`` lines now);
        what the user looks at stays in place."""
        document = present(self.document())
        document.setMaximumBlockCount(max(document.maximumBlockCount(), keep + 2))
        bar = present(self.verticalScrollBar())
        from_end = bar.maximum() - bar.value()
        block = self.block_format()
        cursor = QTextCursor(document)
        cursor.movePosition(QTextCursor.MoveOperation.Start)
        cursor.beginEditBlock()
        first = document.isEmpty()
        for fragment in fragments:
            cursor.insertHtml(fragment)
            cursor.setBlockFormat(block)
            cursor.insertBlock(block, QTextCharFormat())
        if first:  # nothing was there: no empty line at the end
            cursor.deletePreviousChar()
        cursor.endEditBlock()
        bar.setValue(bar.maximum() - from_end)

    @staticmethod
    def _insert(cursor: QTextCursor, block: QTextBlockFormat, first: bool, html: str) -> None:
        if not first:
            cursor.insertBlock(block, QTextCharFormat())
        cursor.insertHtml(html)
        if first:  # the document's first block: inserted HTML would reset an earlier format
            cursor.setBlockFormat(block)

    def _marker_html(self) -> str:
        return (f'<span style="color:{self.marker_colour}">──────── {MARKER_TEXT} ────────'
                "</span>")

    def mark_new_lines(self) -> None:
        """The next line appended is the first unread one: a marker goes before it."""
        self._marker_wanted = True

    def redraw(self, fragments: list[str], marker_before: int | None = None) -> None:
        """Show exactly ``fragments`` (a marker before index ``marker_before``, if given).

        Scrolled up, the view keeps its distance from the end (older lines come in above)."""
        bar = present(self.verticalScrollBar())
        from_end = None if self.at_end() else bar.maximum() - bar.value()
        self.clear()
        self._marker_wanted = False
        if marker_before is None:
            self.append_lines(fragments)
        else:
            self.append_lines(fragments[:marker_before])
            self._marker_wanted = True
            self.append_lines(fragments[marker_before:])
        if from_end is not None:
            bar.setValue(bar.maximum() - from_end)

    def set_indent_sample(self, sample: str) -> None:
        self.indent_sample = sample

    # -- scrolling, the cue and typing -------------------------------------------------------------

    def scroll_to_end(self) -> None:
        bar = present(self.verticalScrollBar())
        bar.setValue(bar.maximum())
        self.cue.hide()

    def page(self, down: bool) -> None:
        """PgUp/PgDn from the input line."""
        bar = present(self.verticalScrollBar())
        bar.setValue(bar.value() + (bar.pageStep() if down else -bar.pageStep()))

    def _scrolled(self, value: int) -> None:
        if self.at_end():
            self.cue.hide()
        if value == 0 and present(self.verticalScrollBar()).maximum() > 0:
            self._reached_top()

    def _reached_top(self) -> None:
        if self.on_top is not None:
            self.on_top()

    def wheelEvent(self, event: QWheelEvent | None) -> None:
        """The wheel turned up at the top (or with nothing to scroll) asks for older lines."""
        if event is not None and event.angleDelta().y() > 0 \
                and present(self.verticalScrollBar()).value() == 0:
            self._reached_top()
        super().wheelEvent(event)

    def _place_cue(self) -> None:
        self.cue.adjustSize()
        viewport = present(self.viewport()).rect()
        self.cue.move(viewport.width() - self.cue.width() - 12,
                      viewport.height() - self.cue.height() - 8)

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._place_cue()

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        """Copy and scrolling keys stay here; text typed goes to the input line."""
        assert event is not None, "Qt always passes the event"
        control = event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                       | Qt.KeyboardModifier.AltModifier)
        if self.type_into is not None and event.text().isprintable() and event.text() \
                and not control:
            self.type_into(event)
            return
        super().keyPressEvent(event)

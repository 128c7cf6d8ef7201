"""What makes an input line pleasant: history recall (Up/Down) and nick completion (Tab).

Plain Python over strings, so the Qt input widget stays a thin key handler.
"""

from __future__ import annotations

from collections.abc import Iterable

from twistedchat.wire.names import casefold

#: Sent lines kept for Up/Down recall.
HISTORY_SIZE = 200


class InputHistory:
    """Lines the user sent, recalled newest first; the unsent draft comes back after the newest."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self.size = size
        self.lines: list[str] = []
        self._position = 0
        self._draft = ""

    def add(self, line: str) -> None:
        if line and (not self.lines or self.lines[-1] != line):
            self.lines.append(line)
            del self.lines[: -self.size]
        self._position = len(self.lines)
        self._draft = ""

    def previous(self, current: str) -> str:
        """The line before the one shown (``current`` is kept as the draft when leaving it)."""
        if self._position == len(self.lines):
            self._draft = current
        if self._position > 0:
            self._position -= 1
        return self.lines[self._position] if self.lines else current

    def next(self) -> str:
        """The line after the one shown; past the newest, the draft."""
        if self._position < len(self.lines):
            self._position += 1
        return self.lines[self._position] if self._position < len(self.lines) else self._draft


class NickCompleter:
    """Tab completion of the word before the cursor; repeated Tabs cycle through the matches.

    At the start of the line a completed nick gets ``": "`` (the usual way to address someone).
    """

    def __init__(self) -> None:
        self._matches: list[str] = []
        self._index = 0
        self._start = 0
        self._last: tuple[str, int] | None = None

    def reset(self) -> None:
        self._last = None

    def complete(self, text: str, cursor: int, nicks: Iterable[str],
                 channels: Iterable[str] = (), commands: Iterable[str] = ()) -> tuple[str, int]:
        """(new text, new cursor) after one Tab; unchanged when nothing matches.

        A word starting with ``#`` completes from ``channels``; ``/`` at the start of the line
        from ``commands`` (names without the slash); any other word from ``nicks``.
        """
        if self._last == (text, cursor) and self._matches:
            self._index = (self._index + 1) % len(self._matches)
        else:
            start = cursor
            while start > 0 and not text[start - 1].isspace():
                start -= 1
            word = casefold(text[start:cursor])
            if not word:
                return text, cursor
            if word.startswith("/") and start == 0:
                names: Iterable[str] = ("/" + command for command in commands)
            elif word.startswith(("#", "&")):
                names = channels
            else:
                names = nicks
            self._matches = sorted({n for n in names if casefold(n).startswith(word)},
                                   key=casefold)
            if not self._matches:
                self._last = None
                return text, cursor
            self._index, self._start = 0, start
        nick = self._matches[self._index]
        tail = text[cursor:]
        addressed = self._start == 0 and not nick.startswith(("/", "#", "&"))
        separator = ":" if addressed else ""
        if tail.startswith(" "):
            skip = 1  # reuse the space already there; the cursor goes past it
        else:
            separator, skip = separator + " ", 0
        new_text = text[: self._start] + nick + separator + tail
        new_cursor = self._start + len(nick) + len(separator) + skip
        self._last = (new_text, new_cursor)
        return new_text, new_cursor

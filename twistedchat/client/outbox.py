"""Lines we sent that the server has not echoed yet (``echo-message``): pending, then said or refused.

Plain bookkeeping, no I/O: :class:`Outbox` keeps each pending line with the conversation it was
typed in; the echo confirms the oldest matching one, an error for its target refuses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twistedchat.wire.names import casefold

#: Most lines kept pending per connection; older ones are given up (a refusal we never heard).
MAX_PENDING = 1000


@dataclass(eq=False, slots=True)
class Pending:
    """One line on its way: shown greyed in ``conversation`` until the server echoes it."""

    conversation: Any  # a session Conversation (typed loosely: no import cycle)
    target: str
    kind: Any  # a session Kind
    text: str
    time: datetime


class Outbox:
    """Pending lines in the order they were sent."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self.limit = limit
        self._lines: list[Pending] = []

    def __iter__(self) -> Iterator[Pending]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, pending: Pending) -> Pending | None:
        """Queue ``pending``; returns the oldest line given up to stay under the limit, if any."""
        self._lines.append(pending)
        return self._lines.pop(0) if len(self._lines) > self.limit else None

    def confirm(self, target: str, kind: Any, text: str) -> Pending | None:
        """The pending line this echo confirms (taken out), or None.

        The same text to the same target, oldest first; else the oldest line of that kind to
        that target (a server may echo a line changed, e.g. with its colours stripped: echoes
        come back in the order the lines were sent).
        """
        key = casefold(target)
        fallback: int | None = None
        for index, pending in enumerate(self._lines):
            if casefold(pending.target) == key and pending.kind is kind:
                if pending.text == text:
                    return self._lines.pop(index)
                if fallback is None:
                    fallback = index
        return self._lines.pop(fallback) if fallback is not None else None

    def refuse(self, target: str) -> Pending | None:
        """The oldest pending line to ``target`` (taken out): the server refused it."""
        key = casefold(target)
        for index, pending in enumerate(self._lines):
            if casefold(pending.target) == key:
                return self._lines.pop(index)
        return None

    def in_conversation(self, conversation: Any) -> list[Pending]:
        return [pending for pending in self._lines if pending.conversation is conversation]

    def clear(self) -> list[Pending]:
        """Everything pending, taken out (the connection is gone)."""
        lines, self._lines = self._lines, []
        return lines

"""Who the user does not want to hear (the ignore list) and which words catch their eye (highlights).

Plain Python, no I/O; the session asks :class:`Filters` about every line it adds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from twistedchat.wire.names import mask_matches, normalize_mask

#: Most masks on the ignore list and most highlight words (each checked for every line).
MAX_IGNORES = 100
MAX_HIGHLIGHTS = 50
#: Characters a nick may contain, so a nick inside a longer nick is no mention.
_NICK_CHARS = r"\w\[\]\\`^{|}-"


class FilterError(ValueError):
    """A list is full or an entry is not valid; the message says which."""


class Filters:
    """The ignore masks and the words (besides our nick) that count as mentions."""

    def __init__(self) -> None:
        self.ignores: list[str] = []
        self.highlights: list[str] = []
        self._pattern = self._compile("", ())

    # -- ignore list -----------------------------------------------------------------------------

    def ignore(self, mask: str) -> str:
        """Add ``mask`` (a nick, or ``nick!user@host`` with ``*``); returns the mask stored."""
        full = normalize_mask(mask.strip())
        if not mask.strip() or " " in full:
            raise FilterError("Give a nick or a nick!user@host mask")
        if full in self.ignores:
            return full
        if len(self.ignores) >= MAX_IGNORES:
            raise FilterError(f"The ignore list is full ({MAX_IGNORES} masks)")
        self.ignores.append(full)
        return full

    def unignore(self, mask: str) -> bool:
        full = normalize_mask(mask.strip())
        if full in self.ignores:
            self.ignores.remove(full)
            return True
        return False

    def ignored(self, source: str) -> bool:
        """True if ``source`` (``nick!user@host``, or a bare nick) is on the ignore list."""
        if not self.ignores:
            return False
        full = source if "!" in source else f"{source}!*@*"
        return any(mask_matches(mask, full) or mask_matches(mask, source)
                   for mask in self.ignores)

    # -- mentions --------------------------------------------------------------------------------

    def set_highlights(self, nick: str, words: Iterable[str]) -> None:
        """The words that count as mentions besides ``nick``: the first :data:`MAX_HIGHLIGHTS`."""
        cleaned = [w.strip() for w in words if w.strip()][:MAX_HIGHLIGHTS]
        self.highlights = cleaned
        self._pattern = self._compile(nick, cleaned)

    def set_nick(self, nick: str) -> None:
        self._pattern = self._compile(nick, self.highlights)

    @staticmethod
    def _compile(nick: str, words: Iterable[str]) -> re.Pattern[str] | None:
        names = [re.escape(word) for word in (nick, *words) if word]
        if not names:
            return None
        return re.compile(rf"(?<![{_NICK_CHARS}])(?:{'|'.join(names)})(?![{_NICK_CHARS}])",
                          re.IGNORECASE)

    def mentions(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

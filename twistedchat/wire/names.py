"""Naming rules every side shares: the casemapping, valid nicks and channel names, masks."""

from __future__ import annotations

import re
from functools import lru_cache

CASEMAPPING = "rfc1459"
#: The channel prefix this server uses (ISUPPORT CHANTYPES).
CHANTYPES = "#"
#: Channel prefixes a client recognises on any server (``&`` is a server-local channel).
ANY_CHANTYPES = "#&"
NICKLEN = 30
CHANNELLEN = 50

_CASEFOLD = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^"
)
_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*\Z")
_CHANNEL_FORBIDDEN = re.compile(r"[\x00\x07\r\n ,:]")


def casefold(name: str) -> str:
    """Fold a nick or channel name under the rfc1459 casemapping."""
    return name.translate(_CASEFOLD)


def valid_nick(nick: str) -> bool:
    """True for a nickname this server accepts."""
    return 0 < len(nick) <= NICKLEN and _NICK_RE.match(nick) is not None


def is_channel_name(name: str, chantypes: str = ANY_CHANTYPES) -> bool:
    """True for a name that denotes a channel rather than a nick (its first character is a
    channel prefix: this server's ``CHANTYPES``, or by default any a client may meet)."""
    return name[:1] in chantypes and name != ""


def valid_channel_name(name: str) -> bool:
    """True for a channel name this server accepts: ``#``, then allowed characters, in all at
    most ``CHANNELLEN`` bytes of UTF-8."""
    return (
        1 < len(name) and len(name.encode("utf-8")) <= CHANNELLEN
        and is_channel_name(name, CHANTYPES)
        and _CHANNEL_FORBIDDEN.search(name) is None
    )


def normalize_mask(mask: str) -> str:
    """Complete a ban mask to ``nick!user@host`` form (``bob`` -> ``bob!*@*``)."""
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "!" not in mask:
        return f"*!{mask}"
    if "@" not in mask:
        return f"{mask}@*"
    return mask


class Mask:
    """A wildcard mask (``*`` any run, ``?`` one character) compiled for matching in linear time.

    The mask is cut at its stars into literal pieces; the first must start the name, the last must
    end it, and each piece between is found leftmost after the one before. That is the glob
    matcher that only ever backtracks to the last ``*`` (a leftmost match never needs undoing), so
    ``*a*a*a*a*b`` costs one scan per piece instead of the exponential search of a regex.
    """

    __slots__ = ("pieces", "exact", "shortest")

    def __init__(self, mask: str) -> None:
        parts = casefold(mask).split("*")
        self.exact = len(parts) == 1
        self.pieces = [_Piece(part) for part in parts]
        self.shortest = sum(len(part) for part in parts)

    def matches(self, folded: str) -> bool:
        """Whether an already casefolded name matches."""
        pieces = self.pieces
        size = len(folded)
        if self.exact:
            return size == self.shortest and pieces[0].at(folded, 0)
        if size < self.shortest:
            return False
        head, tail = pieces[0], pieces[-1]
        if not head.at(folded, 0) or not tail.at(folded, size - tail.size):
            return False
        pos, end = head.size, size - tail.size
        for piece in pieces[1:-1]:
            found = piece.find(folded, pos, end)
            if found < 0:
                return False
            pos = found + piece.size
        return True


class _Piece:
    """A star-free piece of a mask: a literal, or a fixed-width pattern when it has ``?``."""

    __slots__ = ("text", "pattern", "size")

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        self.pattern = (
            re.compile("".join("." if ch == "?" else re.escape(ch) for ch in text), re.DOTALL)
            if "?" in text
            else None
        )

    def at(self, name: str, pos: int) -> bool:
        """Whether the piece matches ``name`` at ``pos``."""
        if self.pattern is None:
            return name.startswith(self.text, pos)
        return self.pattern.match(name, pos) is not None

    def find(self, name: str, start: int, end: int) -> int:
        """Where the piece first matches wholly inside ``name[start:end]``, or -1."""
        if self.pattern is None:
            return name.find(self.text, start, end)
        found = self.pattern.search(name, start, end)
        return -1 if found is None else found.start()


@lru_cache(maxsize=4096)
def compile_mask(mask: str) -> Mask:
    """The compiled form of a mask (cached: ban lists and WHO reuse the same masks)."""
    return Mask(mask)


def mask_matches(mask: str, target: str) -> bool:
    """Match a wildcard mask (``*`` and ``?``) against a name, under the casemapping."""
    return compile_mask(mask).matches(casefold(target))

"""Naming rules every side shares: the casemapping, valid nicks and channel names, masks."""

from __future__ import annotations

import re
from functools import lru_cache

CASEMAPPING = "rfc1459"
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


def valid_channel_name(name: str) -> bool:
    """True for a channel name this server accepts (``#`` then 1..49 allowed characters)."""
    return (
        1 < len(name) <= CHANNELLEN
        and name[0] == "#"
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


@lru_cache(maxsize=4096)
def _mask_regex(mask: str) -> re.Pattern[str]:
    pattern = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in casefold(mask)
    )
    return re.compile(pattern + r"\Z", re.DOTALL)


def mask_matches(mask: str, target: str) -> bool:
    """Match a wildcard mask (``*`` and ``?``) against a name, under the casemapping."""
    return _mask_regex(mask).match(casefold(target)) is not None

"""Fitting text into IRC lines (counted in bytes of UTF-8), shared by the server, clients and bots."""

from __future__ import annotations

from dataclasses import replace

from twistedchat.wire.message import MAX_LINE_BYTES, Message

#: The longest host name a server may show in our prefix (RFC 1035), used until we learn ours.
MAX_HOST_BYTES = 63


def source_estimate(nick: str, username: str) -> str:
    """A worst-case ``nick!~user@host`` for ourselves, before the server has shown us our own."""
    return f"{nick}!~{username}@{'h' * MAX_HOST_BYTES}"


def text_room(source: str, command: str, target: str) -> int:
    """Bytes left for the text of ``:source COMMAND target :text`` within 512 bytes with CR LF."""
    overhead = len(f":{source} {command} {target} :\r\n".encode())
    return MAX_LINE_BYTES - overhead


def split_text(text: str, room: int) -> list[str]:
    """``text`` as lines of at most ``room`` bytes of UTF-8 each.

    Line breaks in ``text`` start new lines (blank lines are dropped); a long line is cut at its
    last space that fits, or inside a word when there is none, but never inside a character.
    """
    if room < 4:
        raise ValueError(f"no room for text ({room} bytes): the target or nick is too long")
    pieces: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        data = line.encode("utf-8")
        while len(data) > room:
            cut = utf8_cut(data, room)
            space = data.rfind(b" ", 0, cut + 1)
            if space > room // 2:
                pieces.append(data[:space].decode("utf-8"))
                data = data[space + 1 :]
            else:
                pieces.append(data[:cut].decode("utf-8"))
                data = data[cut:]
        if data.strip():
            pieces.append(data.decode("utf-8"))
    return pieces


def utf8_cut(data: bytes, room: int) -> int:
    """The longest prefix length of ``data`` (UTF-8) at most ``room`` that ends between characters."""
    if room >= len(data):
        return len(data)
    cut = max(room, 0)
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # data[cut] continues a character
        cut -= 1
    return cut


def fit_utf8(text: str, room: int) -> str:
    """``text`` cut to at most ``room`` bytes of UTF-8, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= room:
        return text
    return data[: utf8_cut(data, room)].decode("utf-8")


def fit_words(text: str, room: int) -> str:
    """A space-separated list cut to at most ``room`` bytes of UTF-8, between words."""
    data = text.encode("utf-8")
    if len(data) <= room:
        return text
    cut = data.rfind(b" ", 0, max(room, 0) + 1)
    return data[: max(cut, 0)].decode("utf-8")


def fit_message(message: Message) -> bytes:
    """``message`` encoded, its last parameter cut so the line fits in 512 bytes (CR LF included).

    The last resort behind every per-field limit: whatever a reply echoes, no line leaves the
    server longer than RFC 1459 allows (tags are not counted). Should cutting the last parameter
    to nothing not be enough, the longest middle parameters are shown as ``*``.
    """
    data = message.to_bytes()
    excess = len(data) - MAX_LINE_BYTES
    if excess <= 0 or not message.params:
        return data
    *middle, last = message.params
    size = len(last.encode("utf-8"))
    while size < excess and middle:
        longest = max(range(len(middle)), key=lambda i: len(middle[i].encode("utf-8")))
        saved = len(middle[longest].encode("utf-8")) - 1
        if saved <= 0:
            break
        middle[longest] = "*"
        excess -= saved
    cut = fit_utf8(last, size - excess - 1)  # -1: a ":" may be needed
    return replace(message, params=(*middle, cut)).to_bytes()


def chunks(text: str, room: int) -> list[str]:
    """Cut a space-separated list into pieces of at most ``room`` bytes, at spaces."""
    if not text.isascii():
        room //= 4  # a character is at most 4 bytes of UTF-8
    pieces: list[str] = []
    pos, end = 0, len(text)
    while end - pos > room:
        cut = text.rfind(" ", pos, pos + room + 1)
        if cut <= pos:
            cut = text.find(" ", pos + 1)
            if cut == -1:
                break
        pieces.append(text[pos:cut])
        pos = cut + 1
    if pos < end:
        pieces.append(text[pos:])
    return pieces

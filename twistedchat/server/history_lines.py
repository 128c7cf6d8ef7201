"""Stored history lines as a client gets them in a CHATHISTORY batch, each encoded once per tag
variant and kept for the next answer that holds it."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Container, Sequence

from twistedchat.server.relay import server_time
from twistedchat.storage.model import HistoryLine
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import MAX_LINE_BYTES, Message, escape_tag_value, format_tags

#: Tag variants: which of a stored line's tags the client asked for.
WITH_TIME = 1
WITH_MESSAGE_TAGS = 2
#: Encoded lines kept (about 350 bytes each with their keys, 7 MB in all): the newest lines of the
#: busiest conversations, which is what clients ask for when they join.
ENCODED_LINES_KEPT = 20_000


#: What a tag value must not hold as it is (message-tags escaping turns it into ``\\:``, ``\\s``...).
_NEEDS_ESCAPING = re.compile(r"[;\s\\]")


def tag_variant(caps: Container[str]) -> int:
    """The tag variant a client with ``caps`` gets history lines in."""
    return (WITH_TIME if "server-time" in caps else 0) | (
        WITH_MESSAGE_TAGS if "message-tags" in caps else 0
    )


def encode_after_batch_tag(line: HistoryLine, variant: int) -> bytes:
    """One stored line, less its leading ``@batch=<ref>``: ``;time=…;msgid=… :source …\\r\\n``
    (or `` :source …\\r\\n`` without tags), with the original source."""
    tags = ""
    if variant & WITH_TIME:
        tags = ";time=" + server_time(line.time)
    if variant & WITH_MESSAGE_TAGS:
        msgid = line.msgid
        tags += ";msgid=" + (escape_tag_value(msgid) if _NEEDS_ESCAPING.search(msgid) else msgid)
        if line.client_tags:
            tags += ";" + format_tags(line.client_tags)[1:]
    # Stored lines were relayed, so they fit as they were sent: format them directly (the tags
    # count at least one byte a character, so a line within this length fits for sure).
    data = f"{tags} :{line.sender} {line.command} {line.target} :{line.text}\r\n".encode()
    if len(data) - 1 - len(tags) <= MAX_LINE_BYTES:
        return data
    body = f":{line.sender} {line.command} {line.target} :{line.text}\r\n".encode()
    if len(body) > MAX_LINE_BYTES:
        body = fit_message(Message(line.command, (line.target, line.text), line.sender))
    return tags.encode() + b" " + body


class HistoryEncoder:
    """Encodes the lines of history batches, keeping each line's encoding (by ``msgid``, per tag
    variant) for the next answer: a stored line never changes, so neither does its encoding.

    At most ``kept`` encodings are kept in all; the oldest go first.
    """

    def __init__(self, kept: int = ENCODED_LINES_KEPT) -> None:
        self.kept = kept
        #: the encodings in the order they were made: (variant, msgid) -> bytes
        self._order: OrderedDict[tuple[int, str], None] = OrderedDict()
        #: per tag variant: msgid -> encoding
        self._encoded: dict[int, dict[str, bytes]] = {}

    def batch_lines(self, lines: Sequence[HistoryLine], variant: int, ref: str) -> bytes:
        """The lines, each tagged ``batch=ref`` first, as one block of bytes."""
        if not lines:
            return b""
        encoded = self._encoded.setdefault(variant, {})
        get = encoded.get
        parts = [get(line[0]) for line in lines]  # line[0]: the msgid (a NamedTuple's first)
        if None in parts:
            order = self._order
            for index, part in enumerate(parts):
                if part is None:
                    line = lines[index]
                    parts[index] = encoded[line.msgid] = encode_after_batch_tag(line, variant)
                    order[(variant, line.msgid)] = None
            while len(order) > self.kept:
                old_variant, old_msgid = order.popitem(last=False)[0]
                del self._encoded[old_variant][old_msgid]
        prefix = b"@batch=" + ref.encode()
        return prefix + prefix.join(parts)  # type: ignore[arg-type]  # no None left

    def __len__(self) -> int:
        return len(self._order)

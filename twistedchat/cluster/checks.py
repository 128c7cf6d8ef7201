"""What a node accepts from Redis: every event and record is checked field by field first.

A node applies what other nodes publish; whatever Redis hands it (a bug, a corrupted stream, a
foreign writer) must not break a line sent to a client, pass a limit, or raise. Each check below
raises :class:`BadEvent`; the node logs the event, counts it (``bad_events``) and drops it whole.
"""

from __future__ import annotations

from typing import Any

from twistedchat.server.commands.metadata import valid_key
from twistedchat.server.commands.registration import REASONLEN
from twistedchat.server.limits import (
    AWAYLEN,
    BANLEN,
    CHANLIMIT,
    FLAG_MODES,
    KEYLEN,
    LIST_MODES,
    MAXLIST,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_BYTES,
    PARAM_MODES,
    PREFIX_MODES,
    REALLEN,
    SET_PARAM_MODES,
    TOPICLEN,
    USER_MODES,
)
from twistedchat.wire.message import MAX_LINE_BYTES, valid_tag_key
from twistedchat.wire.names import valid_channel_name, valid_nick

#: Longest server name, account name, host and ``nick!user@host`` taken from another node.
NAME_BYTES = 255
#: Longest quit or kill reason taken from another node (room for "Killed (nick (reason))").
REASON_BYTES = REASONLEN + 128
_FORBIDDEN = frozenset("\r\n\0")
#: Most parameters, client tags and bytes of client tags a relayed line from another node has.
MAX_PARAMS = 15
MAX_TAGS = 32
MAX_TAG_BYTES = 4096
_CHANNEL_MODES = frozenset(LIST_MODES + PARAM_MODES + SET_PARAM_MODES + FLAG_MODES)
_PREFIXES = frozenset(PREFIX_MODES)


class BadEvent(ValueError):
    """An event from Redis that this node will not apply (logged and dropped)."""


def text(value: Any, limit: int, *, word: bool = False, empty: bool = True) -> str:
    """``value`` if it is a string that fits in ``limit`` UTF-8 bytes with no CR, LF or NUL
    (and, for a ``word``, no space), else :class:`BadEvent`."""
    if not isinstance(value, str) or len(value.encode("utf-8")) > limit:
        raise BadEvent(f"not a string of at most {limit} bytes: {value!r:.80}")
    if _FORBIDDEN.intersection(value) or (word and (" " in value or value.startswith(":"))):
        raise BadEvent(f"a forbidden character in {value!r:.80}")
    if not empty and not value:
        raise BadEvent("an empty value")
    return value


def valid_server_name(name: str) -> bool:
    """A server name another node gave (or its id implies): one word, at most NAME_BYTES."""
    try:
        text(name, NAME_BYTES, word=True, empty=False)
    except BadEvent:
        return False
    return True


def optional(value: Any, limit: int, *, word: bool = False) -> str | None:
    """None, or a non-empty :func:`text`."""
    return None if value is None else text(value, limit, word=word, empty=False)


def user_modes(value: Any) -> set[str]:
    """User mode letters, all known here."""
    letters = text(value, len(USER_MODES))
    if not set(letters) <= set(USER_MODES):
        raise BadEvent(f"unknown user modes {letters!r}")
    return set(letters)


def metadata_values(value: Any) -> dict[str, str]:
    """A user's metadata: at most the key limit, valid keys, values within the byte limit."""
    if not isinstance(value, dict) or len(value) > METADATA_MAX_KEYS:
        raise BadEvent("metadata is not a dict of at most the allowed keys")
    for key, item in value.items():
        if not valid_key(key):
            raise BadEvent(f"bad metadata key {key!r:.80}")
        text(item, METADATA_MAX_VALUE_BYTES)
    return dict(value)


def check_record(record: Any) -> None:
    """A remote user's record (introduction, burst) as :meth:`ClusterNode._ghost` reads it, or
    :class:`BadEvent`: nothing in it may break a line sent to a client, or exceed a limit."""
    if not isinstance(record, list) or len(record) < 8:
        raise BadEvent("a user record is not a list of 8 fields or more")
    nick, username, host, realname, signon, away, modes, memberships = record[:8]
    if not isinstance(nick, str) or not valid_nick(nick):
        raise BadEvent(f"not a nick: {nick!r:.80}")
    text(username, NAME_BYTES, word=True, empty=False)
    text(host, NAME_BYTES, word=True, empty=False)
    text(realname, REALLEN)
    number(signon)
    optional(away, AWAYLEN)
    user_modes(modes)
    if not isinstance(memberships, dict) or len(memberships) > CHANLIMIT:
        raise BadEvent("memberships are not a dict of at most CHANLIMIT channels")
    for name, prefixes in memberships.items():
        if not valid_channel_name(name) or not isinstance(prefixes, str) or not set(
                prefixes) <= set(PREFIX_MODES):
            raise BadEvent(f"a bad membership {name!r:.80}: {prefixes!r:.20}")


def number(value: Any) -> float:
    """A time or a count (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadEvent(f"not a number: {value!r:.80}")
    return value


def check_line(event: Any) -> None:
    """An ``L`` event (a relayed line) as :meth:`ClusterNode._apply_line` reads it, or
    :class:`BadEvent`: its source, command, parameters and tags make one well-formed line.

    Every node runs this on every line it applies, so the common case is a few C-level tests:
    the strings are joined once and searched for CR, LF and NUL at once. Lengths bound what is
    kept (the line is cut to 512 bytes when it is formatted)."""
    if type(event) is not list or not 9 <= len(event) <= 10:
        raise BadEvent("a relayed line is not a list of 9 or 10 fields")
    source, command, params, tags, msgid, now, extra = event[2:9]
    if type(params) is not list or not params or len(params) > MAX_PARAMS:
        raise BadEvent("parameters are not a list of 1 to 15")
    try:
        joined = "".join((source, command, *params, msgid or ""))
    except TypeError:
        raise BadEvent("a source, command, parameter or msgid that is not a string") from None
    if ("\r" in joined or "\n" in joined or "\0" in joined
            or len(joined) > MAX_PARAMS * MAX_LINE_BYTES):
        raise BadEvent(f"CR, LF or NUL in a relayed line, or too long: {joined!r:.80}")
    if not (len(command) <= 16 and command.isascii() and command.isalpha()
            and command.isupper()):
        raise BadEvent(f"not a command: {command!r:.80}")
    for word in (source, *params[:-1]):
        if not word or " " in word or word[0] == ":":
            raise BadEvent(f"not one word: {word!r:.80}")
    if msgid is not None and (" " in msgid or len(msgid) > NAME_BYTES):
        raise BadEvent(f"not a msgid: {msgid!r:.80}")
    if tags is not None:
        if type(tags) is not dict or len(tags) > MAX_TAGS:
            raise BadEvent("client tags are not a dict of at most 32")
        size = 0
        for key, value in tags.items():
            if not isinstance(key, str) or not valid_tag_key(key):
                raise BadEvent(f"not a tag key: {key!r:.80}")
            size += len(key) + len(text(value, MAX_TAG_BYTES).encode("utf-8")) + 2
        if size > MAX_TAG_BYTES:
            raise BadEvent("client tags too long")
    if type(now) is not float and type(now) is not int:
        raise BadEvent(f"not a time: {now!r:.80}")
    if extra is not None and (type(extra) is not str or not set(extra) <= _PREFIXES):
        raise BadEvent(f"not channel prefixes: {extra!r:.20}")
    if len(event) > 9:
        optional(event[9], NAME_BYTES, word=True)


def _check_list(entries: Any, what: str) -> None:
    """A channel's list (bans, exceptions, invite exceptions): at most MAXLIST
    ``[mask, setter, time]``."""
    if not isinstance(entries, list) or len(entries) > MAXLIST:
        raise BadEvent(f"{what} are not a list of at most MAXLIST")
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 3:
            raise BadEvent(f"one of the {what} is not [mask, setter, time]")
        text(entry[0], BANLEN, word=True, empty=False)
        text(entry[1], MAX_LINE_BYTES, word=True)
        number(entry[2])


def check_channel_record(record: Any) -> None:
    """A channel's record in a burst as the node reads it (its first nine fields, then its
    exception and invite exception lists when present), or :class:`BadEvent`."""
    if not isinstance(record, list) or len(record) < 9:
        raise BadEvent("a channel record is not a list of 9 fields or more")
    name, created, topic, setter, topic_time, modes, key, limit, bans = record[:9]
    if not isinstance(name, str) or not valid_channel_name(name):
        raise BadEvent(f"not a channel: {name!r:.80}")
    number(created)
    text(topic, TOPICLEN)
    text(setter, MAX_LINE_BYTES, word=True)
    number(topic_time)
    if not set(text(modes, len(_CHANNEL_MODES))) <= _CHANNEL_MODES:
        raise BadEvent(f"unknown channel modes {modes!r:.20}")
    optional(key, KEYLEN, word=True)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BadEvent(f"not a limit: {limit!r:.20}")
    _check_list(bans, "bans")
    for entries, what in zip(record[9:11], ("exceptions", "invite exceptions"), strict=False):
        _check_list(entries, what)

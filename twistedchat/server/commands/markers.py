"""Read markers (IRCv3 ``draft/read-marker``): MARKREAD, the last-read time per target.

Kept per account and target, so every connection of an account agrees (desktop and browser);
a connection without an account keeps its own, gone when it quits. At most READ_MARKERS_KEEP
targets per owner (the oldest forgotten first).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from twistedchat.server.commands.table import command
from twistedchat.server.relay import server_time
from twistedchat.server.state import User
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import Message
from twistedchat.wire.names import casefold, valid_channel_name, valid_nick

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

CAP = "draft/read-marker"
_TIMESTAMP = re.compile(
    r"timestamp=(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z\Z", re.ASCII
)


def parse_timestamp(param: str) -> str | None:
    """``timestamp=…`` as the canonical ``YYYY-MM-DDThh:mm:ss.sssZ``, or None if it is not one.

    Canonical stamps compare as strings in time order, so a marker only ever moves forward.
    """
    found = _TIMESTAMP.match(param)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction = found.groups()
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    millis = (fraction or "").ljust(3, "0")[:3]
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{millis}Z"


def send_read_marker(
    core: ServerCore, user: User, target: str, recipients: list[User] | None = None
) -> None:
    """``MARKREAD <target> timestamp=…`` (or ``*`` when none is kept) to ``user`` or others."""
    stamp = core.state.read_markers.get(user.owner, casefold(target))
    line = fit_message(Message(
        "MARKREAD", (target, f"timestamp={stamp}" if stamp else "*"), core.config.name
    ))
    for recipient in recipients if recipients is not None else [user]:
        recipient.send(line)


@command("MARKREAD")
def markread(core: ServerCore, user: User, msg: Message) -> None:
    """MARKREAD <target> [timestamp=<YYYY-MM-DDThh:mm:ss.sssZ>]"""
    if not msg.params or not msg.params[0]:
        core.fail(user, "MARKREAD", "NEED_MORE_PARAMS", "MARKREAD needs a target")
        return
    target = msg.params[0]
    if not (valid_nick(target) or valid_channel_name(target)):
        core.fail(user, "MARKREAD", "INVALID_PARAMS", target, "Not a nickname or channel")
        return
    if len(msg.params) < 2:
        send_read_marker(core, user, target)
        return
    stamp = parse_timestamp(msg.params[1])
    if stamp is None:
        core.fail(user, "MARKREAD", "INVALID_PARAMS", target, "Invalid timestamp")
        return
    stamp = min(stamp, server_time(core.clock()))  # never in the future (a marker only grows)
    store, folded = core.state.read_markers, casefold(target)
    current = store.get(user.owner, folded)
    if current is None or stamp > current:
        store.put(user.owner, folded, stamp)
        others = [s for s in core.state.other_sessions(user) if CAP in s.caps]
        if others:
            send_read_marker(core, user, target, others)
    send_read_marker(core, user, target)

"""The audit log: one twisted.logger event per admin-relevant thing (connect, quit, nick, oper, ban).

Each event is in the ``twistedchat.audit`` namespace with ``audit_event`` naming it and one field
per detail, and its text is ``audit EVENT key='value' ...``: stable for grep in the text log, and
every field apart in ``--log-format json``.
"""

from __future__ import annotations

from twisted.logger import Logger

log = Logger(namespace="twistedchat.audit")

#: The events, each with the fields it carries (a test checks every call uses these).
EVENTS: dict[str, tuple[str, ...]] = {
    "connect": ("address", "host"),
    "quit": ("nick", "address", "reason"),
    "nick": ("old", "new", "address"),
    "oper": ("nick", "address", "oper"),
    "oper-failed": ("nick", "address", "oper", "why"),
    "kill": ("by", "nick", "address", "reason"),
    "ban-set": ("by", "kind", "mask", "duration", "reason"),
    "ban-lifted": ("by", "kind", "mask"),
    "ban-expired": ("kind", "mask"),
    "ban-hit": ("kind", "mask", "address", "nick"),
    "flood-drop": ("nick", "address"),
    "sendq-drop": ("nick", "address", "unsent"),
    "throttled": ("address",),
    "webirc": ("gateway", "address", "host"),
    "rehash": ("by",),
    "die": ("by", "restart"),
}


def audit(event: str, **fields: object) -> None:
    """Log one audit event; ``fields`` are exactly the ones :data:`EVENTS` lists for it."""
    names = EVENTS[event]
    if set(fields) != set(names):
        raise ValueError(f"audit {event}: fields {sorted(fields)} are not {sorted(names)}")
    text = " ".join(f"{name}={{{name}!r}}" for name in names)
    log.info(f"audit {event} {text}", audit_event=event, **fields)

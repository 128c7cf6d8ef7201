"""Relaying one line to many users: encoded once per tag variant, then published on a bus.

:class:`RelayBus` is the one point every relayed line passes (JOIN, PRIVMSG, MODE, QUIT…). Its
default does today's local fan-out; history and a multi-process network subscribe to it later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import lru_cache

from twistedchat.server.channel import REMOTE_OUTBOX
from twistedchat.server.state import User, Variant
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import Message, format_tags


@lru_cache(maxsize=1024)
def _utc_second(second: int) -> str:
    """``YYYY-MM-DDThh:mm:ss`` of a whole UNIX second (cached: a history batch repeats them)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def server_time(now: float) -> str:
    """The IRCv3 server-time tag value for a UNIX time: milliseconds, truncated, as
    ``datetime.fromtimestamp`` rounds the fraction (half to even, to the microsecond)."""
    second = int(now)
    if second > now:  # before 1970: int() went up
        second -= 1
    micro = round((now - second) * 1_000_000)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    return f"{_utc_second(second)}.{micro // 1000:03d}Z"


class Relay:
    """One line to many users, encoded once per tag variant and reused for every recipient."""

    __slots__ = ("message", "body", "client_tags", "now", "msgid", "account", "_encoded")

    def __init__(
        self,
        message: Message,
        now: float,
        client_tags: dict[str, str] | None = None,
        msgid: str | None = None,
        account: str | None = None,
    ) -> None:
        self.message = message
        self.body = fit_message(message)
        self.client_tags = client_tags or {}
        self.now = now
        self.msgid = msgid
        #: the sender's account (``account-tag``), None when not logged in or not a user
        self.account = account
        self._encoded: list[bytes | None] = [self.body, None, None, None, None, None, None, None]

    def for_variant(self, variant: int) -> bytes:
        """The line as a user of this variant gets it (built on first use, then reused)."""
        line = self._encoded[variant]
        if line is None:
            tags: dict[str, str] = {}
            if variant & Variant.SERVER_TIME:
                tags["time"] = server_time(self.now)
            if variant & Variant.MESSAGE_TAGS:
                if self.msgid is not None:
                    tags["msgid"] = self.msgid
                tags.update(self.client_tags)
            if variant & Variant.ACCOUNT_TAG and self.account is not None:
                tags["account"] = self.account
            line = format_tags(tags).encode("utf-8") + b" " + self.body if tags else self.body
            self._encoded[variant] = line
        return line

    def send_to(self, users: Iterable[User], skip: User | None = None) -> None:
        """Queue the line for every user but ``skip``; the hot loop of every broadcast."""
        body = self.body
        encoded = self._encoded  # [variant] -> the line, or None until first needed
        for_variant = self.for_variant
        for user in users:
            if user is skip:
                continue
            outbox = user.outbox
            if not outbox:  # a remote user's outbox is always empty: checked only here
                if outbox is REMOTE_OUTBOX:
                    continue
                user.wake(user)
            variant = user.variant
            outbox.append((encoded[variant] or for_variant(variant)) if variant else body)


Subscriber = Callable[[Relay], None]


class RelayBus:
    """Where every relayed line goes: to the local recipients, then to each subscriber once.

    A subscriber (history, a cluster link) is called with the :class:`Relay` (its message, time,
    ``msgid`` and client tags) once per relayed line, never per recipient, after local delivery.
    """

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        #: Called once at the start of each turn's output flush, before any client's bytes are
        #: written: a cluster node publishes the turn's batch there, so the other nodes start
        #: their own fan-out while this one writes to its clients.
        self.before_output: list[Callable[[], None]] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` with every relayed line from now on."""
        self.subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop calling ``subscriber``."""
        self.subscribers.remove(subscriber)

    def publish(self, relay: Relay, recipients: Iterable[User], skip: User | None = None) -> None:
        """Deliver ``relay`` to the local recipients but ``skip``, then tell the subscribers."""
        relay.send_to(recipients, skip)
        if self.subscribers:
            for subscriber in self.subscribers:
                subscriber(relay)

"""Message history from the relay bus: every channel PRIVMSG/NOTICE, and private ones between accounts."""

from __future__ import annotations

from collections.abc import Callable

from twistedchat.server.relay import Relay
from twistedchat.storage.base import Store
from twistedchat.storage.model import (
    HistoryLine,
    channel_conversation,
    direct_conversation,
    direct_parties,
)
from twistedchat.wire.names import CHANTYPES, is_channel_name

STORED_COMMANDS = frozenset({"PRIVMSG", "NOTICE"})


class HistoryRecorder:
    """A ``RelayBus`` subscriber (``core.bus.subscribe(recorder)``) that appends history lines.

    ``account_of(nick)`` names the account a connected nick is logged in to (None: not logged in).
    Channel lines are stored whoever speaks; a private line only when both ends are logged in, under
    their two accounts, since private history is only ever returned to those accounts. CTCP
    requests other than ACTION (VERSION, PING…) are not conversation and are not stored.
    """

    def __init__(self, store: Store, account_of: Callable[[str], str | None]) -> None:
        self.store = store
        self.account_of = account_of

    def __call__(self, relay: Relay) -> None:
        message = relay.message
        if message.command not in STORED_COMMANDS or relay.msgid is None or len(message.params) < 2:
            return
        target, text = message.params[0], message.params[1]
        if text.startswith("\x01") and not text.startswith("\x01ACTION"):
            return
        sender = message.source or ""
        account = self.account_of(message.nick or "")
        if is_channel_name(target, CHANTYPES):
            conversation, parties = channel_conversation(target), None
        else:
            other = self.account_of(target)
            if account is None or other is None:
                return
            conversation, parties = direct_conversation(account, other), direct_parties(account, other)
        self.store.append_history(
            HistoryLine(
                relay.msgid, relay.now, conversation, target, sender, message.command, text,
                account, parties, dict(relay.client_tags) or None,
            )
        )

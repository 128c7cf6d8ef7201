"""Accounts, nick ownership, registered channels and message history, in memory, SQLite or PostgreSQL."""

from twistedchat.storage.base import Store
from twistedchat.storage.history import (
    ChathistoryError,
    ChathistoryRequest,
    HistoryQuery,
    Selector,
    TargetActivity,
    parse_chathistory,
)
from twistedchat.storage.model import (
    Account,
    Ban,
    HistoryLine,
    RegisteredChannel,
    StoreError,
    channel_conversation,
    direct_conversation,
    direct_parties,
)
from twistedchat.storage.url import DEFAULT_DB_URL, open_store, parse_store_url

__all__ = [
    "DEFAULT_DB_URL",
    "Account",
    "Ban",
    "ChathistoryError",
    "ChathistoryRequest",
    "HistoryLine",
    "HistoryQuery",
    "RegisteredChannel",
    "Selector",
    "Store",
    "StoreError",
    "TargetActivity",
    "channel_conversation",
    "direct_conversation",
    "direct_parties",
    "open_store",
    "parse_chathistory",
    "parse_store_url",
]

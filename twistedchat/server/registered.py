"""Between a live channel and its registration: what is saved, what is restored, who gets ops."""

from __future__ import annotations

from typing import Any

from twistedchat.server.state import Channel
from twistedchat.storage.model import Ban, RegisteredChannel


def saved_state(channel: Channel) -> dict[str, Any]:
    """The live channel's persistent state, as ``Store.update_channel`` takes it."""
    return {
        "topic": channel.topic,
        "topic_setter": channel.topic_setter,
        "topic_time": channel.topic_time,
        "modes": "".join(sorted(channel.modes)),
        "key": channel.key,
        "limit": channel.limit,
        "bans": [Ban(mask, setter, at) for mask, (setter, at) in channel.bans.items()],
    }


def restore(channel: Channel, registered: RegisteredChannel) -> None:
    """Give a (re)created channel its registered topic (unless KEEPTOPIC is off), modes (with
    the mode lock applied), key, limit and bans."""
    if registered.keep_topic:
        channel.topic = registered.topic
        channel.topic_setter = registered.topic_setter
        channel.topic_time = registered.topic_time
    channel.modes = (set(registered.modes) | set(registered.mlock_on)) - set(registered.mlock_off)
    channel.key = registered.key
    channel.limit = registered.limit
    channel.bans = {ban.mask: (ban.set_by, ban.set_at) for ban in registered.bans}
    channel.forget_names()


def prefixes_for(registered: RegisteredChannel, account: str | None) -> str:
    """The prefix modes an account gets on joining: "o" for the founder and access-list ops, "v"
    for voices, "" for anyone else (``account`` casefolded, None when not logged in)."""
    if account is None:
        return ""
    if account == registered.founder:
        return "o"
    return registered.access.get(account, "")

"""User and channel metadata (IRCv3 ``draft/metadata-2``): METADATA and its notifications.

Values live in ``ChatState.metadata`` (a :class:`~twistedchat.server.state.MetadataStore`),
keyed by owner: the account, else the connection (gone when it quits), or the channel (gone
when it empties, unless a storage layer keeps registered channels). Every list is bounded and
announced in the capability value: keys per target, bytes per value, subscriptions per
connection. Without ``batch`` (not offered yet) replies come unbatched, as the draft allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from twistedchat.server.commands.table import command
from twistedchat.server.state import (
    METADATA_MAX_KEY_BYTES,
    METADATA_MAX_KEYS,
    METADATA_MAX_SUBS,
    METADATA_MAX_VALUE_BYTES,
    Channel,
    User,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_message
from twistedchat.wire.message import MAX_LINE_BYTES, Message
from twistedchat.wire.names import CHANTYPES, is_channel_name

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

CAP = "draft/metadata-2"
#: The capability's value: the limits a client must know.
CAP_VALUE = (
    f"max-subs={METADATA_MAX_SUBS},max-keys={METADATA_MAX_KEYS},"
    f"max-value-bytes={METADATA_MAX_VALUE_BYTES}"
)
#: A channel bigger than this gets 774 (sync later) on JOIN instead of everyone's metadata.
SYNC_ON_JOIN_MEMBERS = 100
_KEY = re.compile(r"[a-z0-9_./-]+\Z", re.ASCII)


def valid_key(key: str) -> bool:
    """A metadata key: lowercase letters, digits and ``_./-``, at most METADATA_MAX_KEY_BYTES."""
    return len(key) <= METADATA_MAX_KEY_BYTES and _KEY.match(key) is not None


class Target(NamedTuple):
    """What a METADATA command is about: its shown name, its store owner, the object itself."""

    name: str
    owner: str
    user: User | None
    channel: Channel | None


def _target(core: ServerCore, user: User, name: str) -> Target | None:
    """The target, or None after ``FAIL METADATA INVALID_TARGET`` (absent, or a hidden channel)."""
    if name == "*":
        return Target(user.nick, user.owner, user, None)
    if is_channel_name(name, CHANTYPES):
        channel = core.state.find_channel(name)
        if channel is not None and ("s" not in channel.modes or user in channel.members):
            return Target(channel.name, channel.owner, None, channel)
    else:
        found = core.state.find_user(name)
        if found is not None and found.registered:
            return Target(found.nick, found.owner, found, None)
    core.fail(user, "METADATA", "INVALID_TARGET", name, "Invalid target")
    return None


def _may_edit(user: User, target: Target) -> bool:
    """A user edits its own metadata; a channel's is for its operators."""
    if target.channel is not None:
        return target.channel.is_op(user)
    return target.user is user


def _key_value(core: ServerCore, user: User, target: Target, key: str, value: str | None) -> None:
    """761 with the value, or without one (a key just deleted)."""
    params = (target.name, key, "*") + ((value,) if value is not None else ())
    core.reply(user, N.RPL_KEYVALUE, *params)


def notify(core: ServerCore, setter: User, target: Target, key: str, value: str | None) -> None:
    """``METADATA <target> <key> * [:value]`` to everyone following ``target`` and ``key``.

    A user's change goes to its channels, to those who MONITOR it (``extended-monitor``) and
    to its account's other connections; a channel's to its members. Only to connections with
    the capability that subscribed to ``key``, never back to the setter, encoded once. In a
    cluster the change goes to the other nodes too, which notify their own followers.
    """
    if core.cluster is not None:
        core.cluster.metadata_changed(setter, target, key, value)
    if target.channel is not None:
        followers: list[User] = list(target.channel.members)
    else:
        assert target.user is not None
        followers = core.interested(target.user, CAP) + core.state.other_sessions(target.user)
        if target.user is not setter:
            followers.append(target.user)
    recipients = [
        f for f in followers if f is not setter and CAP in f.caps and key in f.metadata_subs
    ]
    if recipients:
        params = (target.name, key, "*") + ((value,) if value is not None else ())
        core.relay(recipients, core.config.name, "METADATA", *params)


def _reply_keys(core: ServerCore, user: User, code: str, keys: list[str]) -> None:
    """770, 771 or 772 with one key per parameter (as Ergo and irctest have them), as many lines
    as the keys need: at most 12 keys and 512 bytes a line."""
    room = MAX_LINE_BYTES - len(f":{core.config.name} {code} {user.nick} :\r\n".encode())
    line: list[str] = []
    used = 0
    for key in keys:
        if line and (len(line) == 12 or used + len(key) + 1 > room):
            core.reply(user, code, *line)
            line, used = [], 0
        line.append(key)
        used += len(key) + 1
    if line:
        core.reply(user, code, *line)


def _get(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    if not args:
        core.need_more_params(user, "METADATA")
        return
    values = core.state.metadata.values(target.owner)
    for key in args:
        if not valid_key(key):
            core.fail(user, "METADATA", "KEY_INVALID", key, "Invalid key")
        elif key in values:
            _key_value(core, user, target, key, values[key])
        else:
            core.reply(user, N.RPL_KEYNOTSET, target.name, key, "Key not set")


def _list(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    for key, value in list(core.state.metadata.values(target.owner).items()):
        _key_value(core, user, target, key, value)


def _set(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    if not args or not args[0]:
        core.need_more_params(user, "METADATA")
        return
    key = args[0]
    if not valid_key(key):
        core.fail(user, "METADATA", "KEY_INVALID", key, "Invalid key")
        return
    if not _may_edit(user, target):
        core.fail(user, "METADATA", "KEY_NO_PERMISSION", target.name, key,
                  f"You may not set {key} on {target.name}")
        return
    store = core.state.metadata
    values = store.values(target.owner)
    if len(args) < 2:
        if key not in values:
            core.fail(user, "METADATA", "KEY_NOT_SET", target.name, key, "Key not set")
            return
        store.put(target.owner, key, None)
        core.reply(user, N.RPL_KEYNOTSET, target.name, key, "Key deleted")
        notify(core, user, target, key, None)
        return
    value = args[1]
    if len(value.encode("utf-8")) > METADATA_MAX_VALUE_BYTES:
        core.fail(user, "METADATA", "VALUE_INVALID",
                  f"Value is longer than {METADATA_MAX_VALUE_BYTES} bytes")
        return
    if key not in values and len(values) >= METADATA_MAX_KEYS:
        core.fail(user, "METADATA", "LIMIT_REACHED", target.name,
                  f"At most {METADATA_MAX_KEYS} keys")
        return
    changed = values.get(key) != value
    store.put(target.owner, key, value)
    _key_value(core, user, target, key, value)
    if changed:
        notify(core, user, target, key, value)


def _clear(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    if not _may_edit(user, target):
        core.fail(user, "METADATA", "KEY_NO_PERMISSION", target.name, "*",
                  f"You may not clear {target.name}")
        return
    store = core.state.metadata
    for key in list(store.values(target.owner)):
        store.put(target.owner, key, None)
        _key_value(core, user, target, key, None)
        notify(core, user, target, key, None)


def _sub(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    if not args:
        core.need_more_params(user, "METADATA")
        return
    subs = user.metadata_subs
    accepted: list[str] = []
    for key in args:
        if not valid_key(key):
            core.fail(user, "METADATA", "KEY_INVALID", key, "Invalid key")
            continue
        if key not in subs:
            if len(subs) >= METADATA_MAX_SUBS:
                core.fail(user, "METADATA", "TOO_MANY_SUBS", key,
                          f"At most {METADATA_MAX_SUBS} subscriptions")
                break
            subs.add(key)
        if key not in accepted:
            accepted.append(key)
    if accepted:
        _reply_keys(core, user, N.RPL_METADATASUBOK, accepted)


def _unsub(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    if not args:
        core.need_more_params(user, "METADATA")
        return
    dropped: list[str] = []
    for key in args:
        if not valid_key(key):
            core.fail(user, "METADATA", "KEY_INVALID", key, "Invalid key")
            continue
        user.metadata_subs.discard(key)
        if key not in dropped:
            dropped.append(key)
    if dropped:
        _reply_keys(core, user, N.RPL_METADATAUNSUBOK, dropped)


def _subs(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    if user.metadata_subs:
        _reply_keys(core, user, N.RPL_METADATASUBS, sorted(user.metadata_subs))


def _sync(core: ServerCore, user: User, target: Target, args: tuple[str, ...]) -> None:
    if target.channel is not None:
        send_channel_metadata(core, user, target.channel)
    else:
        _send_values(core, user, target.name, target.owner)


def _send_values(core: ServerCore, user: User, name: str, owner: str) -> None:
    """``METADATA`` lines with ``owner``'s values of the keys ``user`` subscribed to."""
    subs = user.metadata_subs
    for key, value in core.state.metadata.values(owner).items():
        if key in subs:
            user.send(fit_message(Message("METADATA", (name, key, "*", value), core.config.name)))


def send_user_metadata(core: ServerCore, user: User, other: User) -> None:
    """``other``'s metadata that ``user`` subscribed to, if ``user`` has the capability."""
    if CAP in user.caps and user.metadata_subs:
        _send_values(core, user, other.nick, other.owner)


def send_channel_metadata(core: ServerCore, user: User, channel: Channel) -> None:
    """The channel's subscribed metadata and its members' (bounded: members x MAX_KEYS)."""
    _send_values(core, user, channel.name, channel.owner)
    for member in list(channel.members):
        if member is not user:
            _send_values(core, user, member.nick, member.owner)


def metadata_on_join(core: ServerCore, user: User, channel: Channel) -> None:
    """After JOIN: the joiner learns the channel's and members' metadata (774 in a big
    channel: it asks with SYNC when it wants), and members learn the joiner's."""
    if CAP in user.caps and user.metadata_subs:
        if len(channel.members) > SYNC_ON_JOIN_MEMBERS:
            core.reply(user, N.RPL_METADATASYNCLATER, channel.name, "Sync later with SYNC")
        else:
            send_channel_metadata(core, user, channel)
    own = core.state.metadata.values(user.owner)
    if not own:
        return
    following = [
        m for m in channel.members if m is not user and CAP in m.caps and m.metadata_subs
    ]
    for key, value in list(own.items()):
        recipients = [m for m in following if key in m.metadata_subs]
        if recipients:
            core.relay(recipients, core.config.name, "METADATA", user.nick, key, "*", value)


Subcommand = Callable[["ServerCore", User, Target, tuple[str, ...]], None]
#: METADATA's subcommands; the ones about subscriptions take ``*`` as their target.
SUBCOMMANDS: dict[str, Subcommand] = {
    "GET": _get,
    "LIST": _list,
    "SET": _set,
    "CLEAR": _clear,
    "SUB": _sub,
    "UNSUB": _unsub,
    "SUBS": _subs,
    "SYNC": _sync,
}


@command("METADATA", min_params=2)
def metadata(core: ServerCore, user: User, msg: Message) -> None:
    """METADATA <target> <GET|LIST|SET|CLEAR|SUB|UNSUB|SUBS|SYNC> [<key> [<value>]...]"""
    subcommand = msg.params[1].upper()
    handler = SUBCOMMANDS.get(subcommand)
    if handler is None:
        core.fail(user, "METADATA", "SUBCOMMAND_INVALID", msg.params[1], "Invalid subcommand")
        return
    target = _target(core, user, msg.params[0])
    if target is not None:
        handler(core, user, target, msg.params[2:])

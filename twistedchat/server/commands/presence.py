"""Who is online and what they call themselves: MONITOR (with ``extended-monitor``), SETNAME."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twistedchat.server.commands.metadata import send_user_metadata
from twistedchat.server.commands.table import command
from twistedchat.server.state import MONITOR_LIMIT, REALLEN, User
from twistedchat.wire import numerics as N
from twistedchat.wire.message import Message
from twistedchat.wire.names import casefold, valid_nick

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore


@command("MONITOR", min_params=1)
def monitor(core: ServerCore, user: User, msg: Message) -> None:
    """MONITOR <+|-|C|L|S> [<nickname>{,<nickname>}]

    IRCv3 monitor: each nick watched is kept in ``ChatState.watchers`` (nick -> watchers), so a
    nick coming or going costs one dict lookup, never a scan; at most MONITOR_LIMIT per
    connection (ISUPPORT ``MONITOR``), the rest refused with 734; gone when the watcher quits.
    """
    action = msg.params[0].upper()
    nicks = [n for n in msg.params[1].split(",") if n] if len(msg.params) > 1 else []
    state = core.state
    if action in "+-" and not nicks:
        core.need_more_params(user, "MONITOR")
    elif action == "+":
        _monitor_add(core, user, nicks)
    elif action == "-":
        for nick in nicks:
            state.unmonitor(user, casefold(nick))
    elif action == "C":
        state.clear_monitor(user)
    elif action == "L":
        core.reply_list(user, N.RPL_MONLIST, list(user.monitoring.values()))
        core.reply(user, N.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif action == "S":
        _monitor_status(core, user, list(user.monitoring.values()))
    else:
        core.fail(user, "MONITOR", "INVALID_PARAMS", msg.params[0], "Unknown MONITOR subcommand")


def _monitor_add(core: ServerCore, user: User, nicks: list[str]) -> None:
    state = core.state
    added: list[str] = []
    refused: list[str] = []
    for index, nick in enumerate(nicks):
        if not valid_nick(nick):
            continue
        folded = casefold(nick)
        if folded not in user.monitoring:
            if len(user.monitoring) >= MONITOR_LIMIT:
                refused = nicks[index:]
                break
            state.monitor(user, nick)
        added.append(nick)
    _monitor_status(core, user, added)
    if "extended-monitor" in user.caps:
        for nick in added:  # metadata-2: the watched users' subscribed keys, as on a JOIN
            found = state.find_user(nick)
            if found is not None and found.registered:
                send_user_metadata(core, user, found)
    if refused:
        core.reply(user, N.ERR_MONLISTFULL, str(MONITOR_LIMIT), ",".join(refused),
                   "Monitor list is full.")


def _monitor_status(core: ServerCore, user: User, nicks: list[str]) -> None:
    """730 with the online ones (``nick!user@host``), 731 with the others."""
    online: list[str] = []
    offline: list[str] = []
    for nick in nicks:
        found = core.state.find_present(nick)
        if found is not None:
            online.append(found.source)
        else:
            offline.append(nick)
    if online:
        core.reply_list(user, N.RPL_MONONLINE, online)
    if offline:
        core.reply_list(user, N.RPL_MONOFFLINE, offline)


@command("SETNAME", min_params=1)
def setname(core: ServerCore, user: User, msg: Message) -> None:
    """SETNAME <realname>

    IRCv3 setname: a real name longer than NAMELEN bytes is refused, not cut. The change goes
    to the user (with the capability), its channels and, with ``extended-monitor``, those who
    MONITOR it, when they enabled ``setname``.
    """
    realname = msg.params[0]
    if len(realname.encode("utf-8")) > REALLEN:
        core.fail(user, "SETNAME", "INVALID_REALNAME", f"Real name is longer than {REALLEN} bytes")
        return
    user.realname = realname
    if core.cluster is not None:
        core.cluster.user_changed(user)
    if "setname" in user.caps:
        core.relay([user], user, "SETNAME", realname)
    core.announce(user, "setname", "SETNAME", realname)

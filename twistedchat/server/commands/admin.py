"""Server administration: KLINE/DLINE and their removal, STATS, REHASH, DIE/RESTART, SAJOIN, SAMODE.

Each needs an IRC operator (481 from the table) with the right permission of its oper class
(``ban``, ``rehash``, ``die``, ``override``; 481 naming it otherwise).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from twistedchat.server.audit import audit
from twistedchat.server.bans import DLINE, KLINE, BanError, ServerBan
from twistedchat.server.commands.channels import _join_one
from twistedchat.server.commands.modes import _channel_mode
from twistedchat.server.commands.registration import REASONLEN
from twistedchat.server.commands.table import command
from twistedchat.server.config import ConfigError
from twistedchat.server.state import User
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_utf8
from twistedchat.wire.message import Message, ascii_int

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

#: Longest ban, in minutes (a year); a longer one is refused rather than silently cut.
MAX_BAN_MINUTES = 525_600
#: STATS letters anyone may ask for; the others need an operator.
PUBLIC_STATS = "u"
LABELS = {KLINE: "K-line", DLINE: "D-line"}


def _ban_arguments(core: ServerCore, user: User, msg: Message) -> tuple[float, str, str] | None:
    """``[<minutes>] <mask> [<reason>]`` -> (seconds, mask, reason); None after an error reply."""
    params = list(msg.params)
    minutes = ascii_int(params[0]) if params[0].isdigit() else None
    if minutes is not None:
        params.pop(0)
        if minutes > MAX_BAN_MINUTES:
            core.notice(user, f"{msg.command}: at most {MAX_BAN_MINUTES} minutes (0: permanent)")
            return None
    if not params or not params[0]:
        core.need_more_params(user, msg.command)
        return None
    reason = fit_utf8(params[1], REASONLEN) if len(params) > 1 and params[1] else "No reason"
    return (minutes or 0) * 60.0, params[0], reason


def _set_ban(core: ServerCore, user: User, msg: Message, kind: str) -> None:
    if not core.permitted(user, "ban"):
        return
    arguments = _ban_arguments(core, user, msg)
    if arguments is None:
        return
    seconds, mask, reason = arguments
    target = core.state.find_user(mask) if "@" not in mask and "/" not in mask else None
    if target is not None and target.registered:  # a nick: ban where it comes from
        mask = f"*@{target.real_host}" if kind == KLINE else target.real_host
    try:
        ban = core.bans.add(kind, mask, reason, user.nick, core.clock(), seconds)
    except BanError as error:
        core.notice(user, f"{msg.command}: {error}")
        return
    except OSError as error:
        core.notice(user, f"{msg.command}: set, but the bans file could not be written: {error}")
        return
    if core.cluster is not None:
        core.cluster.ban_changed(ban)  # every node sets it and removes its own users it covers
    length = f"{int(seconds // 60)} minutes" if seconds else "permanent"
    audit("ban-set", by=user.nick, kind=kind, mask=ban.mask, duration=int(seconds),
          reason=ban.reason)
    removed = core.enforce_ban(ban)
    core.notice(user, f"{LABELS[kind]} for {ban.mask} ({length}): {ban.reason}; "
                      f"{removed} connection(s) removed")


def _lift_ban(core: ServerCore, user: User, msg: Message, kind: str) -> None:
    if not core.permitted(user, "ban"):
        return
    mask = msg.params[0]
    try:
        found = core.bans.remove(kind, mask)
    except BanError as error:
        core.notice(user, f"{msg.command}: {error}")
        return
    except OSError as error:
        core.notice(user, f"{msg.command}: lifted, but the bans file could not be written: "
                          f"{error}")
        return
    if found is None:
        core.notice(user, f"No {LABELS[kind]} for {mask}")
        return
    audit("ban-lifted", by=user.nick, kind=kind, mask=found.mask)
    if core.cluster is not None:
        core.cluster.ban_changed(found, lifted=True)
    core.notice(user, f"{LABELS[kind]} for {found.mask} lifted")


@command("KLINE", min_params=1, oper_only=True)
def kline(core: ServerCore, user: User, msg: Message) -> None:
    """KLINE [<minutes>] <user@host|nick> [<reason>]"""
    _set_ban(core, user, msg, KLINE)


@command("DLINE", min_params=1, oper_only=True)
def dline(core: ServerCore, user: User, msg: Message) -> None:
    """DLINE [<minutes>] <address|CIDR|nick> [<reason>]"""
    _set_ban(core, user, msg, DLINE)


@command("UNKLINE", min_params=1, oper_only=True)
def unkline(core: ServerCore, user: User, msg: Message) -> None:
    """UNKLINE <user@host>"""
    _lift_ban(core, user, msg, KLINE)


@command("UNDLINE", min_params=1, oper_only=True)
def undline(core: ServerCore, user: User, msg: Message) -> None:
    """UNDLINE <address|CIDR>"""
    _lift_ban(core, user, msg, DLINE)


def _ban_text(core: ServerCore, ban: ServerBan) -> str:
    left = ban.expires - core.clock()
    until = f"expires in {timedelta(seconds=int(left))}" if ban.expires else "permanent"
    return f"{ban.reason} (by {ban.set_by}, {until})"


@command("STATS", min_params=1)
def stats(core: ServerCore, user: User, msg: Message) -> None:
    """STATS <k|d|l|u>

    ``u`` (uptime) for anyone; for operators ``k`` (K-lines), ``d`` (D-lines) and ``l`` (each
    connection: where from, how long). The replies are bounded by the ban and connection limits.
    """
    letter = msg.params[0][:1]
    if letter not in PUBLIC_STATS and not user.is_oper:
        core.reply(user, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return
    now = core.clock()
    if letter == "u":
        up = timedelta(seconds=int(now - core.created))
        core.reply(user, N.RPL_STATSUPTIME, f"Server Up {up.days} days "
                   f"{up.seconds // 3600}:{up.seconds // 60 % 60:02}:{up.seconds % 60:02}")
    elif letter == "k":
        for ban in list(core.bans.klines.values()):
            if not ban.expired(now):
                name, _, host = ban.mask.partition("@")
                core.reply(user, N.RPL_STATSKLINE, "K", host, "*", name, _ban_text(core, ban))
    elif letter == "d":
        for _, ban in list(core.bans.dlines.values()):
            if not ban.expired(now):
                core.reply(user, N.RPL_STATSDLINE, "D", ban.mask, _ban_text(core, ban))
    elif letter == "l":
        for other in list(core.state.connections):
            where = f"{other.nick}[{other.username or '*'}@{other.real_host}]"
            core.reply(user, N.RPL_STATSLINKINFO, where, str(int(now - other.signon)),
                       f"idle {int(now - other.last_seen)}s")
    core.reply(user, N.RPL_ENDOFSTATS, letter or "*", "End of /STATS report")


@command("REHASH", oper_only=True)
def rehash(core: ServerCore, user: User, msg: Message) -> None:
    """REHASH

    Reloads the configuration as SIGHUP does (``ChatService.reload``); a file that does not
    load is refused with its reason and the running configuration kept.
    """
    if not core.permitted(user, "rehash"):
        return
    if core.admin is None:
        core.notice(user, "REHASH: no configuration to reload here")
        return
    audit("rehash", by=user.nick)
    source = core.config.config_file or "the command line"
    core.reply(user, N.RPL_REHASHING, source, "Rehashing")
    try:
        changed, kept = core.admin.reload()
    except ConfigError as error:
        core.notice(user, f"REHASH refused, the running configuration is kept: {error}")
        return
    core.notice(user, "REHASH: " + (", ".join(changed) if changed else "nothing changed")
                + (f"; needs a restart: {', '.join(kept)}" if kept else ""))


def _stop(core: ServerCore, user: User, msg: Message, restart: bool) -> None:
    if not core.permitted(user, "die"):
        return
    if core.admin is None:
        core.notice(user, f"{msg.command}: no service to stop here")
        return
    audit("die", by=user.nick, restart=restart)
    reason = msg.params[0] if msg.params and msg.params[0] else ""
    what = "restarting" if restart else "shutting down"
    core.admin.stop_server(f"Server {what} ({user.nick}{': ' + reason if reason else ''})"[:200],
                           restart)


@command("DIE", oper_only=True)
def die(core: ServerCore, user: User, msg: Message) -> None:
    """DIE [<reason>]"""
    _stop(core, user, msg, restart=False)


@command("RESTART", oper_only=True)
def restart(core: ServerCore, user: User, msg: Message) -> None:
    """RESTART [<reason>]"""
    _stop(core, user, msg, restart=True)


@command("SAJOIN", min_params=2, oper_only=True)
def sajoin(core: ServerCore, user: User, msg: Message) -> None:
    """SAJOIN <nick> <channel>

    Joins the user to the channel past its key, limit, +i and bans (the override permission).
    """
    if not core.permitted(user, "override"):
        return
    target = core.state.find_user(msg.params[0])
    if target is None or not target.registered:
        core.reply(user, N.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
        return
    name = msg.params[1].split(",")[0]
    cluster = core.cluster
    if cluster is not None:
        if cluster.is_remote(target):
            core.notice(user, f"SAJOIN: {target.nick} is on {cluster.server_of(target)}; "
                              "run SAJOIN there")
            return
        if not cluster.channel_claims.holds(target, [name], lambda: core.handle(user, msg),
                                            asker=user):
            return  # a channel it creates is claimed in Redis first (as a JOIN's); runs again
    core.notice(user, f"SAJOIN: {target.nick} to {msg.params[1]}")
    _join_one(core, target, name, None, override=True)


@command("SAMODE", min_params=2, oper_only=True)
def samode(core: ServerCore, user: User, msg: Message) -> None:
    """SAMODE <channel> <modestring> [<mode arguments>...]

    Changes a channel's modes without being its operator (the override permission).
    """
    if not core.permitted(user, "override"):
        return
    channel = core.state.find_channel(msg.params[0])
    if channel is None:
        core.no_such_channel(user, msg.params[0])
        return
    _channel_mode(core, user, channel, msg.params[1:], override=True)


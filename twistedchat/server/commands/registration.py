"""Registration and the connection's own upkeep: CAP, PASS, NICK, USER, PING, PONG, QUIT."""

from __future__ import annotations

import hmac
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from twistedchat import __version__
from twistedchat.server.audit import audit
from twistedchat.server.bans import parse_address
from twistedchat.server.commands.metadata import CAP_VALUE as METADATA_CAP_VALUE
from twistedchat.server.commands.table import command
from twistedchat.server.state import (
    FLAG_MODES,
    LIST_MODES,
    PARAM_MODES,
    PREFIX_MODES,
    REALLEN,
    SET_PARAM_MODES,
    USER_MODES,
    User,
    Variant,
)
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import fit_message, fit_utf8
from twistedchat.wire.message import Message, ascii_int
from twistedchat.wire.names import valid_nick

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

VERSION = f"twistedchat-{__version__}"
#: Longest PART or QUIT reason relayed, in bytes, so the relayed line fits in 512.
REASONLEN = 300

#: IRCv3 capabilities this server implements, with their CAP LS 302 values.
CAPABILITIES: dict[str, str] = {
    "away-notify": "",
    "batch": "",
    "draft/metadata-2": METADATA_CAP_VALUE,
    "draft/read-marker": "",
    "echo-message": "",
    "extended-monitor": "",
    "invite-notify": "",
    "labeled-response": "",
    "message-tags": "",
    "multi-prefix": "",
    "server-time": "",
    "setname": "",
    "userhost-in-names": "",
}


@command("CAP", min_params=1, pre_registration=True)
def cap(core: ServerCore, user: User, msg: Message) -> None:
    """CAP <subcommand> [:<capabilities>]"""
    sub = msg.params[0].upper()
    if sub == "LS":
        if not user.registered:
            user.cap_negotiating = True
        version = msg.params[1] if len(msg.params) > 1 else ""
        if (ascii_int(version) or 0) >= 302:
            caps = " ".join(k + (f"={v}" if v else "") for k, v in core.capabilities.items())
        else:
            caps = " ".join(core.capabilities)
        _cap_reply(core, user, "LS", caps)
    elif sub == "LIST":
        _cap_reply(core, user, "LIST", " ".join(sorted(user.caps)))
    elif sub == "REQ":
        if not user.registered:
            user.cap_negotiating = True
        wanted = msg.params[1].split() if len(msg.params) > 1 else []
        enable = {c for c in wanted if not c.startswith("-")}
        disable = {c[1:] for c in wanted if c.startswith("-")}
        if not wanted or not (enable | disable) <= core.capabilities.keys():
            _cap_reply(core, user, "NAK", " ".join(wanted))
            return
        user.caps = frozenset((user.caps | enable) - disable)
        user.variant = Variant.for_caps(user.caps)
        _cap_reply(core, user, "ACK", " ".join(wanted))
    elif sub == "END":
        if not user.registered:
            user.cap_negotiating = False
            try_register(core, user)
    else:
        core.reply(user, N.ERR_INVALIDCAPCMD, msg.params[0], "Invalid CAP command")


def _cap_reply(core: ServerCore, user: User, sub: str, text: str) -> None:
    user.send(fit_message(Message("CAP", (user.nick, sub, text), core.config.name)))


@command("PASS", min_params=1, pre_registration=True)
def pass_(core: ServerCore, user: User, msg: Message) -> None:
    """PASS <password>"""
    if user.registered:
        core.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
    else:
        user.password = msg.params[0]


@command("NICK", pre_registration=True)
def nick(core: ServerCore, user: User, msg: Message) -> None:
    """NICK <nickname>"""
    if not msg.params or not msg.params[0]:
        core.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    new = msg.params[0]
    if not valid_nick(new):
        core.reply(user, N.ERR_ERRONEUSNICKNAME, new, "Erroneous nickname")
        return
    if new == user.nick:
        return
    if core.state.nick_in_use(new, by=user):
        core.reply(user, N.ERR_NICKNAMEINUSE, new, "Nickname is already in use")
        return
    if not user.registered:
        core.state.set_nick(user, new)
        try_register(core, user)
        return
    for channel in user.channels.values():
        # A banned member cannot shed the ban by a new nick (ERR_BANONCHAN, as Solanum does).
        if not channel.members[user] and channel.is_banned(user):
            core.reply(user, N.ERR_BANONCHAN, new, channel.name,
                       "Cannot change nickname while banned on channel")
            return
    if core.cluster is not None and not core.cluster.holds_nick(user, new, msg):
        return  # cluster: the nick is claimed in Redis first; this NICK runs again then
    old_source, old_nick, old_folded = user.source, user.nick, user.folded
    core.state.set_nick(user, new, core.clock())
    core.relay([user, *core.state.neighbours(user)], old_source, "NICK", new)
    audit("nick", old=old_nick, new=user.nick, address=user.real_host)
    if user.folded != old_folded:
        core.monitor_offline(user, old_nick)
        core.monitor_online(user)


@command("USER", min_params=4, pre_registration=True)
def user_(core: ServerCore, user: User, msg: Message) -> None:
    """USER <username> 0 * <realname>"""
    if user.registered:
        core.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    username = "".join(
        ch for ch in msg.params[0] if ch.isascii() and (ch.isalnum() or ch in "-_.")
    )[:10]
    user.username = "~" + (username or "user")
    user.realname = fit_utf8(msg.params[3], REALLEN)
    try_register(core, user)


@command("WEBIRC", min_params=4, pre_registration=True)
def webirc(core: ServerCore, user: User, msg: Message) -> None:
    """WEBIRC <password> <gateway> <hostname> <ip> [:<options>]

    A web gateway (``[[webirc]]`` in the config) tells the user's real address before
    registration; only from the gateway's own addresses and with its password. Anything else
    closes the connection: a client cannot pick its own address.
    """
    password, _gateway, _hostname, address = msg.params[:4]
    if user.registered:
        core.reply(user, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    gateway = next((g for g in core.config.webirc if g.trusts(user.real_host)), None)
    if gateway is None or not hmac.compare_digest(gateway.password.encode(), password.encode()):
        core.quit(user, "WEBIRC refused", error="WEBIRC: not a trusted gateway, or a wrong "
                                                  "password")
        return
    parsed = parse_address(address)
    if parsed is None:
        core.quit(user, "WEBIRC refused", error=f"WEBIRC: {address!r} is not an IP address")
        return
    shown = "0" + str(parsed) if str(parsed).startswith(":") else str(parsed)
    audit("webirc", gateway=gateway.name, address=user.real_host, host=shown)
    core.set_real_host(user, shown)
    ban = core.ban_matching(user)
    if ban is not None:
        core.refuse_banned(user, ban)


@command("PING", min_params=1, pre_registration=True)
def ping(core: ServerCore, user: User, msg: Message) -> None:
    """PING <token>"""
    user.send(fit_message(Message("PONG", (core.config.name, msg.params[0]), core.config.name)))


@command("PONG", pre_registration=True)
def pong(core: ServerCore, user: User, msg: Message) -> None:
    """PONG [<server>] <token>"""
    user.ping_pending = False


@command("QUIT", pre_registration=True)
def quit_(core: ServerCore, user: User, msg: Message) -> None:
    """QUIT [<reason>]"""
    reason = fit_utf8(msg.params[0], REASONLEN) if msg.params else ""
    core.quit(user, f"Quit: {reason}" if reason else "Client Quit")


def try_register(core: ServerCore, user: User) -> None:
    """Complete registration once NICK, USER (and CAP END) are in: the welcome burst."""
    if user.registered or user.cap_negotiating or not user.username or not user.folded:
        return
    config = core.config
    if config.password is not None and user.password != config.password:
        core.reply(user, N.ERR_PASSWDMISMATCH, "Password incorrect")
        core.quit(user, "Bad password")
        return
    ban = core.ban_matching(user)
    if ban is not None:
        core.refuse_banned(user, ban)
        return
    if core.state.nick_in_use(user.nick, by=user):
        # Taken while this connection was registering: it must pick another one.
        wanted = user.nick
        user.nick, user.folded = "*", ""
        core.reply(user, N.ERR_NICKNAMEINUSE, wanted, "Nickname is already in use")
        return
    if core.cluster is not None and not core.cluster.holds_nick(user):
        return  # cluster: the nick is claimed in Redis first; registration is tried again then
    core.state.mark_registered(user)
    user.last_seen = user.last_message = core.clock()
    core.max_seen_users = max(core.max_seen_users, core.state.registered_count)
    core.reply(user, N.RPL_WELCOME, f"Welcome to the {config.network} Network, {user.source}")
    core.reply(user, N.RPL_YOURHOST, f"Your host is {config.name}, running version {VERSION}")
    created = datetime.fromtimestamp(core.created, tz=timezone.utc)
    core.reply(user, N.RPL_CREATED, f"This server was created {created:%Y-%m-%d %H:%M:%S} UTC")
    core.reply(
        user,
        N.RPL_MYINFO,
        config.name,
        VERSION,
        USER_MODES,
        LIST_MODES + PARAM_MODES + SET_PARAM_MODES + FLAG_MODES + PREFIX_MODES,
        LIST_MODES + PARAM_MODES + SET_PARAM_MODES + PREFIX_MODES,
    )
    send_isupport(core, user)
    if user.host != user.real_host:
        core.reply(user, N.RPL_HOSTHIDDEN, user.host, "is now your displayed host")
    send_lusers(core, user)
    send_motd(core, user)
    core.monitor_online(user)


def send_isupport(core: ServerCore, user: User) -> None:
    """The 005 lines, twelve tokens each."""
    tokens = core.isupport_tokens()
    for start in range(0, len(tokens), 12):
        core.reply(user, N.RPL_ISUPPORT, *tokens[start : start + 12], "are supported by this server")


def send_lusers(core: ServerCore, user: User) -> None:
    """251-266: how many users, operators, unknown connections and channels there are."""
    state = core.state
    registered = state.registered_count
    unknown = len(state.connections) - registered
    peak = str(core.max_seen_users)
    users, invisible, opers, servers, global_peak = (
        registered, state.invisible_count, state.oper_count, 1, core.max_seen_users)
    if core.cluster is not None:  # the whole network: every node's users
        users, invisible, opers, servers, global_peak = core.cluster.network_counts()
    core.reply(
        user,
        N.RPL_LUSERCLIENT,
        f"There are {users - invisible} users and {invisible} invisible on {servers} servers",
    )
    if opers:
        core.reply(user, N.RPL_LUSEROP, str(opers), "operator(s) online")
    if unknown:
        core.reply(user, N.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
    if state.channels:
        core.reply(user, N.RPL_LUSERCHANNELS, str(len(state.channels)), "channels formed")
    core.reply(user, N.RPL_LUSERME, f"I have {registered} clients and {servers - 1} servers")
    core.reply(user, N.RPL_LOCALUSERS, str(registered), peak,
               f"Current local users {registered}, max {peak}")
    core.reply(user, N.RPL_GLOBALUSERS, str(users), str(global_peak),
               f"Current global users {users}, max {global_peak}")


def send_motd(core: ServerCore, user: User) -> None:
    """The message of the day (375, 372…, 376), or 422 when there is none."""
    motd = core.config.motd
    if not motd:
        core.reply(user, N.ERR_NOMOTD, "MOTD File is missing")
        return
    core.reply(user, N.RPL_MOTDSTART, f"- {core.config.name} Message of the day - ")
    for line in motd:
        core.reply(user, N.RPL_MOTD, f"- {line}")
    core.reply(user, N.RPL_ENDOFMOTD, "End of /MOTD command.")

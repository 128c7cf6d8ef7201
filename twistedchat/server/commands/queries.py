"""Questions about the server and its users: MOTD, LUSERS, VERSION, TIME, INFO, ISON, USERHOST,
AWAY, WHO, WHOIS, WHOWAS."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NamedTuple

from twistedchat.server.commands.registration import (
    VERSION,
    send_isupport,
    send_lusers,
    send_motd,
)
from twistedchat.server.commands.table import command
from twistedchat.server.state import AWAYLEN, User
from twistedchat.wire import numerics as N
from twistedchat.wire.fitting import chunks, fit_utf8
from twistedchat.wire.message import MAX_LINE_BYTES, Message, ascii_int
from twistedchat.wire.names import CHANTYPES, casefold, is_channel_name, mask_matches

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

#: Most replies a WHO by mask gives a user who is not an IRC operator.
WHO_MATCHES = 500
#: WHOX fields in the order their values are sent.
WHOX_FIELDS = "tcuihsnfdlaor"


@command("MOTD")
def motd(core: ServerCore, user: User, msg: Message) -> None:
    """MOTD [<server>]"""
    send_motd(core, user)


@command("LUSERS")
def lusers(core: ServerCore, user: User, msg: Message) -> None:
    """LUSERS"""
    send_lusers(core, user)


@command("VERSION")
def version(core: ServerCore, user: User, msg: Message) -> None:
    """VERSION [<server>]"""
    core.reply(user, N.RPL_VERSION, VERSION, core.config.name, "twistedchat IRC daemon")
    send_isupport(core, user)


@command("TIME")
def time_(core: ServerCore, user: User, msg: Message) -> None:
    """TIME [<server>]"""
    now = datetime.fromtimestamp(core.clock(), tz=timezone.utc)
    core.reply(user, N.RPL_TIME, core.config.name, now.strftime("%A %B %d %Y -- %H:%M:%S UTC"))


@command("INFO")
def info(core: ServerCore, user: User, msg: Message) -> None:
    """INFO [<server>]"""
    for line in (
        f"{VERSION}: an IRC server on Twisted",
        f"Running on {core.config.name}, network {core.config.network}",
    ):
        core.reply(user, N.RPL_INFO, line)
    core.reply(user, N.RPL_ENDOFINFO, "End of INFO list")


@command("ISON", min_params=1)
def ison(core: ServerCore, user: User, msg: Message) -> None:
    """ISON <nickname>{ <nickname>}"""
    nicks = [n for p in msg.params for n in p.split()]
    online = [found.nick for n in nicks if (found := core.state.find_present(n))]
    core.reply_words(user, N.RPL_ISON, " ".join(online))


@command("USERHOST", min_params=1)
def userhost(core: ServerCore, user: User, msg: Message) -> None:
    """USERHOST <nickname>{ <nickname>}"""
    replies = []
    for name in msg.params[:5]:
        found = core.state.find_present(name)
        if found:
            oper = "*" if found.is_oper else ""
            away = "-" if found.away else "+"
            replies.append(f"{found.nick}{oper}={away}{found.username}@{found.host}")
    core.reply_words(user, N.RPL_USERHOST, " ".join(replies))


@command("AWAY")
def away(core: ServerCore, user: User, msg: Message) -> None:
    """AWAY [<text>]"""
    text = fit_utf8(msg.params[0], AWAYLEN) if msg.params and msg.params[0] else None
    user.away = text
    if core.cluster is not None:
        core.cluster.user_changed(user)
    if text is None:
        core.reply(user, N.RPL_UNAWAY, "You are no longer marked as being away")
    else:
        core.reply(user, N.RPL_NOWAWAY, "You have been marked as being away")
    core.announce(user, "away-notify", "AWAY", *((text,) if text is not None else ()))


@command("WHO")
def who(core: ServerCore, user: User, msg: Message) -> None:
    """WHO [<mask> [%<fields>[,<token>]]]

    With ``%fields`` (WHOX) each match is one 354 with the fields asked for, in the fixed order
    ``tcuihsnfdlaor``, whatever order they were asked in.
    """
    mask = msg.params[0] if msg.params and msg.params[0] else "*"
    whox = WhoxQuery.parse(msg.params[1]) if len(msg.params) > 1 else None
    state = core.state
    if is_channel_name(mask, CHANTYPES):
        channel = state.find_channel(mask)
        if channel is not None and (user in channel.members or "s" not in channel.modes
                                    or user.is_oper):
            member_of = user in channel.members or user.is_oper
            multi = "multi-prefix" in user.caps
            for member in channel.members:
                if "i" in member.modes and not member_of and not state.shares_channel(
                    user, member
                ):
                    continue
                _who_reply(core, user, member, channel.name, channel.prefix_of(member, multi),
                           whox)
    else:
        # A mask scans every user: at most WHO_MATCHES replies to one who is not an operator
        # (as Hybrid and ratbox cap it), so one line cannot make the server send the whole network.
        left = WHO_MATCHES if not user.is_oper else len(state.users)
        for other in list(state.registered_users()):
            visible = (other is user or "i" not in other.modes or user.is_oper
                       or state.shares_channel(user, other))
            if visible and (
                mask in ("*", "0")
                or mask_matches(mask, other.nick)
                or mask_matches(mask, other.host)
                or (user.is_oper and mask_matches(mask, other.real_host))
            ):
                if not left:
                    core.reply(user, N.ERR_TOOMANYMATCHES, "WHO", mask, "Too many matches")
                    break
                left -= 1
                _who_reply(core, user, other, "*", "", whox)
        service = state.services.get(casefold(mask))
        if service is not None:  # a service, asked for by its nick (never in a listing)
            _who_reply(core, user, service, "*", "", whox)
    core.reply(user, N.RPL_ENDOFWHO, mask, "End of WHO list")


class WhoxQuery(NamedTuple):
    """The fields (``%tcuihsnfdlaor``) and token a WHOX request asked for."""

    fields: str
    token: str

    @classmethod
    def parse(cls, param: str) -> WhoxQuery | None:
        """``%fields[,token]`` -> the query (its fields in reply order), or None for plain WHO."""
        if not param.startswith("%"):
            return None
        fields, _, token = param[1:].partition(",")
        ordered = "".join(letter for letter in WHOX_FIELDS if letter in fields)
        if not (token.isascii() and token.isdigit() and len(token) <= 3):
            token = "0"  # the token is 1-3 digits (ircu), else it is not echoed as given
        return cls(ordered, token)


def _address_of(host: str) -> str:
    """WHOX's ``i``: the host when it is an IP address (as the server shows hosts now: ``0::1``
    for ``::1``, so it can stand mid-line), else ``255.255.255.255``."""
    try:
        ipaddress.ip_address(host[1:] if host.startswith("0:") else host)
    except ValueError:
        return "255.255.255.255"
    return host


def server_of(core: ServerCore, user: User) -> str:
    """The name of the server ``user`` is connected to: this one, or in a cluster its node's."""
    if core.cluster is not None:
        name: str = core.cluster.server_of(user)
        return name
    return core.config.name


def _who_flags(other: User, prefix: str) -> str:
    """``H``/``G`` (here, gone), ``*`` for an IRC operator, ``B`` for a bot, then the prefix."""
    return (
        ("G" if other.away else "H") + ("*" if other.is_oper else "")
        + ("B" if other.is_bot else "") + prefix
    )


def _who_reply(
    core: ServerCore, user: User, other: User, channel: str, prefix: str,
    whox: WhoxQuery | None = None,
) -> None:
    flags = _who_flags(other, prefix)
    if whox is None:
        core.reply(
            user, N.RPL_WHOREPLY, channel, other.username, other.host, server_of(core, other),
            other.nick, flags, f"0 {other.realname}",
        )
        return
    values = {
        "t": whox.token,
        "c": channel,
        "u": other.username,
        "i": _address_of(other.real_host if core.sees_real_host(user, other) else other.host),
        "h": other.host,
        "s": server_of(core, other),
        "n": other.nick,
        "f": flags,
        "d": "0",
        "l": str(int(core.clock() - other.last_message)),
        "a": other.account or "0",  # 0: not logged in (the account comes with accounts)
        "o": "n/a",  # no channel op levels here
        "r": other.realname,
    }
    params = [values[letter] for letter in whox.fields]
    if not params:
        params = [""]
    core.reply(user, N.RPL_WHOSPCRPL, *params)


@command("WHOIS")
def whois(core: ServerCore, user: User, msg: Message) -> None:
    """WHOIS [<server>] <nickname>"""
    if not msg.params or not msg.params[-1]:
        core.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    name = msg.params[-1].split(",")[0]
    target = core.state.find_user(name)
    if target is None or not target.registered:
        core.reply(user, N.ERR_NOSUCHNICK, name, "No such nick/channel")
        core.reply(user, N.RPL_ENDOFWHOIS, name, "End of /WHOIS list")
        return
    if core.cluster is not None and not core.cluster.idle_queries.fresh(
            user, target, lambda: core.handle(user, msg)):
        return  # cluster: a remote user's idle time is asked of its node first; runs again then
    core.reply(user, N.RPL_WHOISUSER, target.nick, target.username, target.host, "*",
               target.realname)
    if core.sees_real_host(user, target):
        real = target.real_host
        core.reply(user, N.RPL_WHOISHOST, target.nick,
                   f"is connecting from {target.username}@{real} {real}")
        if user.is_oper:
            core.reply(user, N.RPL_WHOISACTUALLY, target.nick, real, "actually using host")
    multi = "multi-prefix" in user.caps
    channels = [
        channel.prefix_of(target, multi) + channel.name
        for channel in target.channels.values()
        if "s" not in channel.modes or user in channel.members or user.is_oper
    ]
    if channels:
        head = f":{core.config.name} {N.RPL_WHOISCHANNELS} {user.nick} {target.nick} :"
        for chunk in chunks(" ".join(channels), MAX_LINE_BYTES - 2 - len(head.encode())):
            core.reply(user, N.RPL_WHOISCHANNELS, target.nick, chunk)
    core.reply(user, N.RPL_WHOISSERVER, target.nick, server_of(core, target), core.config.network)
    if target.is_oper:
        core.reply(user, N.RPL_WHOISOPERATOR, target.nick, "is an IRC operator")
    if target.is_bot:
        core.reply(user, N.RPL_WHOISBOT, target.nick, f"is a bot on {core.config.network}")
    if target.account is not None:
        core.reply(user, N.RPL_WHOISACCOUNT, target.nick, target.account, "is logged in as")
    if target.away:
        core.reply(user, N.RPL_AWAY, target.nick, target.away)
    idle = int(core.clock() - target.last_message)
    core.reply(user, N.RPL_WHOISIDLE, target.nick, str(idle), str(int(target.signon)),
               "seconds idle, signon time")
    core.reply(user, N.RPL_ENDOFWHOIS, target.nick, "End of /WHOIS list")


@command("WHOWAS")
def whowas(core: ServerCore, user: User, msg: Message) -> None:
    """WHOWAS <nickname> [<count>]"""
    if not msg.params or not msg.params[0]:
        core.reply(user, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    name = msg.params[0].split(",")[0]
    count = msg.params[1] if len(msg.params) > 1 else ""
    entries = core.state.whowas_of(name)
    limit = ascii_int(count)
    if limit:
        entries = entries[:limit]
    if not entries:
        core.reply(user, N.ERR_WASNOSUCHNICK, name, "There was no such nickname")
    for entry in entries:
        core.reply(user, N.RPL_WHOWASUSER, entry.nick, entry.username, entry.host, "*",
                   entry.realname)
        if user.is_oper and entry.real_host and entry.real_host != entry.host:
            core.reply(user, N.RPL_WHOISACTUALLY, entry.nick, entry.real_host,
                       "actually using host")
        until = datetime.fromtimestamp(entry.until, tz=timezone.utc)
        core.reply(user, N.RPL_WHOISSERVER, entry.nick, entry.server or core.config.name,
                   f"{until:%Y-%m-%d %H:%M:%S} UTC")
    core.reply(user, N.RPL_ENDOFWHOWAS, name, "End of WHOWAS")


@command("HELP")
def help_(core: ServerCore, user: User, msg: Message) -> None:
    """HELP [<subject>]

    The server's own help, from the command table: a command's syntax line (704, 706), or the
    list of commands; 524 for anything else. A dict lookup and a few lines: cheap at any rate.
    """
    subject = msg.params[0] if msg.params and msg.params[0] else ""
    if not subject:
        core.reply(user, N.RPL_HELPSTART, "*", f"{VERSION} knows these commands:")
        names = sorted(core.commands)
        head = f":{core.config.name} {N.RPL_HELPTXT} {user.nick} * :"
        for chunk in chunks(" ".join(names), MAX_LINE_BYTES - 2 - len(head.encode())):
            core.reply(user, N.RPL_HELPTXT, "*", chunk)
        core.reply(user, N.RPL_ENDOFHELP, "*", "HELP <command> shows how to use one")
        return
    spec = core.commands.get(subject.upper())
    if spec is None:
        core.reply(user, N.ERR_HELPNOTFOUND, subject, "No help available on this topic")
        return
    core.reply(user, N.RPL_HELPSTART, spec.name, spec.syntax)
    core.reply(user, N.RPL_ENDOFHELP, spec.name, "End of /HELP")


@command("HELPOP")
def helpop(core: ServerCore, user: User, msg: Message) -> None:
    """HELPOP [<subject>]"""
    help_(core, user, msg)


@command("LINKS")
def links(core: ServerCore, user: User, msg: Message) -> None:
    """LINKS [[<server>] <mask>]

    One 364 per server that matches the mask (this one, and in a cluster every other node's,
    one hop away), then 365.
    """
    mask = msg.params[-1] if msg.params and msg.params[-1] else "*"
    name = core.config.name
    names: list[str] = core.cluster.server_names() if core.cluster is not None else [name]
    if len(msg.params) > 1 and not any(mask_matches(msg.params[0], n) for n in names):
        core.reply(user, N.ERR_NOSUCHSERVER, msg.params[0], "No such server")
        return
    for server in names:
        if mask_matches(mask, server):
            hops = 0 if server == name else 1
            core.reply(user, N.RPL_LINKS, "*", server, f"{hops} {core.config.network}: {VERSION}")
    core.reply(user, N.RPL_ENDOFLINKS, mask, "End of /LINKS list")

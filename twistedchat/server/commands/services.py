"""NickServ and ChanServ as users meet them: reached by ``PRIVMSG NickServ`` (any case) and by
the ``NS``/``CS`` (``NICKSERV``/``CHANSERV``) commands, present as pseudo-users to WHOIS, WHO,
ISON, USERHOST and MONITOR (``ChatState.services``), a NOTICE to them dropped, RESTRICTED
channels (ChanServ SET) kept out of JOIN. The services' commands are in commands/nickserv.py and
commands/chanserv.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from twistedchat.server.accounts import SERVICES
from twistedchat.server.commands.chanserv import CHANSERV
from twistedchat.server.commands.nickserv import NICKSERV
from twistedchat.server.commands.registration import VERSION
from twistedchat.server.commands.service_base import Request, ServiceCommand
from twistedchat.server.commands.table import Command
from twistedchat.server.state import MAXTARGETS, User
from twistedchat.wire import numerics as N
from twistedchat.wire.message import Message
from twistedchat.wire.names import casefold, is_channel_name

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

Handler = Callable[["ServerCore", User, Message], None]

#: Each service's table by its casefolded nick.
SERVICE_TABLES: dict[str, tuple[str, dict[str, ServiceCommand]]] = {
    "nickserv": (SERVICES["nickserv"], NICKSERV), "chanserv": (SERVICES["chanserv"], CHANSERV),
}
#: Each service's real name, as WHOIS and WHO show it.
SERVICE_REALNAMES = {"nickserv": "Nickname services", "chanserv": "Channel services"}
#: The user modes a service pseudo-user shows: ``o`` (WHO/USERHOST ``*``, WHOIS 313: services
#: carry operator status on Atheme and Anope networks) and ``B`` (IRCv3 bot mode: automated).
SERVICE_MODES = frozenset("oB")


def service_users(core: ServerCore) -> dict[str, User]:
    """The services as pseudo-users (``ChatState.services``): ``NickServ!NickServ@services.<name>``,
    with no connection; nothing is ever sent to them."""
    found: dict[str, User] = {}
    for folded, (name, _) in SERVICE_TABLES.items():
        pseudo = User(f"services.{core.config.name}", _nowhere, _nowhere, core.clock())
        pseudo.nick, pseudo.folded, pseudo.username = name, folded, name
        pseudo.realname = SERVICE_REALNAMES[folded]
        pseudo.modes = set(SERVICE_MODES)
        pseudo.registered = True
        found[folded] = pseudo
    return found


def _nowhere(*_: object) -> None:
    """A pseudo-user's wake and close: it has no connection."""


#: Longest CTCP PING argument a service echoes (clients send a timestamp).
CTCP_PING_ECHO = 64


def ask_service(core: ServerCore, user: User, folded: str, text: str) -> None:
    """Run one line sent to a service (``folded``: its casefolded nick)."""
    accounts = core.accounts
    assert accounts is not None
    service, table = SERVICE_TABLES[folded]
    if text.startswith("\x01"):
        _ctcp(core, user, service, text)
        return
    words = text.split()
    verb = words[0].upper() if words else "HELP"
    entry = table.get(verb)
    request = Request(core, user, accounts, service, verb, words[1:])
    if entry is None:
        request.say(f"Unknown command {words[0]}. /msg {service} HELP lists the commands.")
        return
    entry.handler(request)


def _ctcp(core: ServerCore, user: User, service: str, text: str) -> None:
    """A CTCP to a service: VERSION and PING answered (a CTCP reply), the rest (ACTION...)
    dropped, as services do: never run as a command."""
    accounts = core.accounts
    assert accounts is not None
    verb, _, argument = text.strip("\x01").partition(" ")
    if verb.upper() == "VERSION":
        accounts.service_notice(user, service, f"\x01VERSION {VERSION} services\x01")
    elif verb.upper() == "PING" and len(argument) <= CTCP_PING_ECHO:
        echoed = f" {argument}" if argument else ""
        accounts.service_notice(user, service, f"\x01PING{echoed}\x01")


# -- the service pseudo-users in other commands ---------------------------------------------------
#: The lengths of the services' nicks: PRIVMSG (the hot path) casefolds no other target.
_SERVICE_NICK_LENGTHS = frozenset(len(name) for name in SERVICE_TABLES)


def _privmsg(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    """PRIVMSG to a service runs a service command; in a list of targets too (each service
    once a line, within MAXTARGETS), the other targets getting the message as usual."""
    if len(msg.params) > 1:
        targets = msg.params[0]
        folded = casefold(targets) if len(targets) in _SERVICE_NICK_LENGTHS else ""
        if folded in SERVICE_TABLES:
            ask_service(core, user, folded, msg.params[1])
            return
        if "," in targets:
            msg = _services_in_list(core, user, msg)
            if not msg.params[0]:
                return
    handler(core, user, msg)


def _services_in_list(core: ServerCore, user: User, msg: Message) -> Message:
    """Ask the services named in a PRIVMSG's list of targets (each once, within MAXTARGETS);
    the message for the other targets."""
    names = msg.params[0].split(",")
    kept = names[:MAXTARGETS]
    folded = [casefold(n) if len(n) in _SERVICE_NICK_LENGTHS else "" for n in kept]
    if not any(f in SERVICE_TABLES for f in folded):
        return msg
    if len(names) > MAXTARGETS:  # as the PRIVMSG handler says it, which now gets fewer
        core.reply(user, N.ERR_TOOMANYTARGETS, names[MAXTARGETS], "Too many targets")
    for service in dict.fromkeys(f for f in folded if f in SERVICE_TABLES):
        ask_service(core, user, service, msg.params[1])
    others = [n for n, f in zip(kept, folded, strict=True) if f not in SERVICE_TABLES]
    return replace(msg, params=(",".join(others), *msg.params[1:]))


def _notice(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    """A NOTICE to a service is dropped, as services do (never 401: they are there)."""
    if msg.params and len(msg.params[0]) in _SERVICE_NICK_LENGTHS \
            and casefold(msg.params[0]) in SERVICE_TABLES:
        return
    handler(core, user, msg)


def _whois(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    """WHOIS of a service: who it is, the server, that it is a network service and a bot."""
    name = msg.params[-1].split(",")[0] if msg.params else ""
    service = core.state.services.get(casefold(name))
    if service is None:
        handler(core, user, msg)
        return
    nick = service.nick
    core.reply(user, N.RPL_WHOISUSER, nick, service.username, service.host, "*", service.realname)
    core.reply(user, N.RPL_WHOISSERVER, nick, core.config.name, f"{core.config.network} services")
    core.reply(user, N.RPL_WHOISOPERATOR, nick, "is a Network Service")
    core.reply(user, N.RPL_WHOISBOT, nick, f"is a bot on {core.config.network}")
    core.reply(user, N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")


def _join(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    """JOIN with RESTRICTED channels (ChanServ SET) left out for whoever is not on their list."""
    accounts = core.accounts
    assert accounts is not None
    names = msg.params[0].split(",")
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    me = casefold(user.account) if user.account else None
    kept_names, kept_keys = [], []
    for position, name in enumerate(names):
        registered = accounts.store.registered_channel(name) if is_channel_name(name) else None
        if registered is not None and registered.restricted and me != registered.founder \
                and me not in registered.access:
            core.reply(user, N.ERR_BANNEDFROMCHAN, name,
                       "Cannot join channel (restricted to its access list)")
            continue
        kept_names.append(name)
        if position < len(keys):
            kept_keys.append(keys[position])
    if not kept_names:
        return
    if len(kept_names) != len(names):
        params = (",".join(kept_names), *((",".join(kept_keys),) if kept_keys else ()))
        msg = replace(msg, params=params)
    handler(core, user, msg)


def _alias(folded: str) -> Handler:
    def ask(core: ServerCore, user: User, msg: Message) -> None:
        ask_service(core, user, folded, " ".join(msg.params))

    return ask


def _alias_command(name: str, folded: str) -> Command:
    handler = _alias(folded)
    handler.__doc__ = f"{name} <command> [<arguments>]: the same as /msg " \
        f"{SERVICE_TABLES[folded][0]} <command> [<arguments>]"
    return Command(name, handler)


#: NS and CS (as irssi and WeeChat users type /ns and /cs), NICKSERV and CHANSERV.
SERVICE_COMMANDS = (
    _alias_command("NS", "nickserv"), _alias_command("NICKSERV", "nickserv"),
    _alias_command("CS", "chanserv"), _alias_command("CHANSERV", "chanserv"),
)

#: Commands whose handler runs inside one of these (see ``server.accounts.attach_store``).
SERVICE_WRAPPED: dict[str, Callable[..., None]] = {
    "PRIVMSG": _privmsg, "NOTICE": _notice, "WHOIS": _whois, "JOIN": _join,
}


"""NickServ and ChanServ: the service pseudo-users reached by ``PRIVMSG NickServ``, by the
``NS``/``CS`` (``NICKSERV``/``CHANSERV``) commands, answered by WHOIS; each command declared once
in its service's table with its syntax, which ``HELP`` lists.

Every command costs at most a dict lookup or two and a few lines back, except the password
checks (IDENTIFY, DROP, SET PASSWORD: a thread, braked per account, address and connection)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NamedTuple

from twistedchat.server.accounts import SERVICES
from twistedchat.server.commands.accounts import check_password, create_and_log_in
from twistedchat.server.commands.table import Command
from twistedchat.server.state import FLAG_MODES, User
from twistedchat.storage.model import ACCESS_LEVELS, RegisteredChannel, StoreError
from twistedchat.wire import numerics as N
from twistedchat.wire.message import Message
from twistedchat.wire.names import casefold, is_channel_name

if TYPE_CHECKING:
    from twistedchat.server.accounts import Accounts
    from twistedchat.server.core import ServerCore

Handler = Callable[["ServerCore", User, Message], None]


@dataclass
class Request:
    """One line sent to a service: who asked, the words after the command, where answers go."""

    core: ServerCore
    user: User
    accounts: Accounts
    service: str
    verb: str
    args: list[str]

    def say(self, line: str) -> None:
        """A NOTICE from the service to the asker."""
        self.accounts.service_notice(self.user, self.service, line)

    @property
    def me(self) -> str | None:
        """The asker's account, casefolded (None when not logged in)."""
        return casefold(self.user.account) if self.user.account else None


class ServiceCommand(NamedTuple):
    """One command of a service: its syntax (shown by HELP and on a misuse), what it does."""

    syntax: str
    summary: str
    handler: Callable[[Request], None]


def _with_password(request: Request, name: str, password: str, refused: str,
                   then: Callable[[str], None]) -> None:
    """Check ``name``'s password in a thread, braked like a login (per account, per address,
    per connection); ``then(account)`` when it is right, ``refused`` said when it is not. The
    asker's later lines wait for the answer."""
    core, user, accounts = request.core, request.user, request.accounts
    wait = accounts.limiter.wait(name, user.real_host, accounts.clock.seconds())
    if wait > 0:
        request.say(f"Too many failed attempts; try again in {int(wait) + 1} s.")
        return
    if not accounts.password_budget(user):
        request.say("Too many password attempts on this connection.")
        return
    work = check_password(accounts, name, password)

    def checked(found: str | None) -> None:
        if user not in core.state.connections:
            return
        now = accounts.clock.seconds()
        if found is None:
            accounts.limiter.failed(name, user.real_host, now)
            request.say(refused)
            return
        accounts.limiter.succeeded(found, now)
        then(found)

    work.addCallback(checked)
    core.hold_input(user, work)


# -- NickServ ------------------------------------------------------------------------------------
def ns_register(request: Request) -> None:
    """Register the asker's nick as an account and log in."""
    user = request.user
    if not request.args:
        request.say("Syntax: " + NICKSERV["REGISTER"].syntax)
    elif user.account is not None:
        request.say(f"You are already logged in as {user.account}.")
    else:
        create_and_log_in(request.core, user, user.nick, request.args[0],
                          lambda ok, why: request.say(f"{user.nick} is now registered to you." if ok
                                                      else f"Registration failed: {why[1]}"))


def ns_identify(request: Request) -> None:
    """Log in with an account's password."""
    args = request.args
    if not args:
        request.say("Syntax: " + NICKSERV["IDENTIFY"].syntax)
        return
    name, password = (args[0], args[1]) if len(args) > 1 else (request.user.nick, args[0])

    def logged_in(account: str) -> None:
        request.accounts.log_in(request.user, account)
        request.say(f"You are now identified as {account}.")

    _with_password(request, name, password, "Invalid account or password.", logged_in)


def ns_ghost(request: Request) -> None:
    """Disconnect someone using a nick the asker's account owns."""
    core, user = request.core, request.user
    if not request.args:
        request.say("Syntax: " + NICKSERV["GHOST"].syntax)
        return
    nick = request.args[0]
    target = core.state.users.get(casefold(nick))
    owner = request.accounts.store.nick_owner(nick)
    if request.me is None or owner != request.me:
        request.say("You must be identified to the account that owns that nick.")
    elif target is None or target is user:
        request.say(f"{nick} is not online.")
    else:
        core.quit(target, f"GHOST command used by {user.nick}")
        request.say(f"{nick} has been disconnected.")


def ns_info(request: Request) -> None:
    """When an account was registered and the nicks it owns."""
    store = request.accounts.store
    name = request.args[0] if request.args else (request.user.account or request.user.nick)
    account = store.account(name)
    if account is None:
        request.say(f"{name} is not registered.")
        return
    request.say(f"{account.name} registered {_utc(account.created)}; nicks: "
                f"{', '.join(store.nicks_of(account.name))}")


def ns_drop(request: Request) -> None:
    """Delete the asker's account (its password confirms), its nicks and the channels it founded."""
    core, user = request.core, request.user
    if user.account is None:
        request.say("You are not identified.")
        return
    if not request.args:
        request.say("Syntax: " + NICKSERV["DROP"].syntax + " (your password confirms it)")
        return
    name = user.account

    def confirmed(account: str) -> None:
        store = request.accounts.store
        if user.account is None or casefold(user.account) != casefold(account) \
                or store.account(account) is None:
            request.say(f"{name} was not dropped: you are no longer identified to it.")
            return
        try:
            dropped = store.drop_account(account)
        except StoreError as error:
            request.say(f"{name} was not dropped: {error}")
            return
        for session in [user, *core.state.other_sessions(user)]:
            core.set_account(session, None)
        request.say(f"The account {name} has been dropped"
                    + (f", and with it the channels {', '.join(dropped)}." if dropped else "."))

    _with_password(request, name, request.args[0],
                   f"Invalid password: the account {name} was not dropped.", confirmed)


def ns_set(request: Request) -> None:
    """Change the asker's password."""
    core, user, accounts = request.core, request.user, request.accounts
    if len(request.args) < 2 or request.args[0].upper() != "PASSWORD":
        request.say("Syntax: " + NICKSERV["SET"].syntax)
        return
    if user.account is None:
        request.say("You are not identified.")
        return
    if not accounts.password_budget(user):
        request.say("Too many password attempts on this connection.")
        return
    changing = accounts.store.set_password(user.account, request.args[1])
    changing.addCallbacks(lambda _: request.say("Password changed."),
                          lambda f: request.say(f"Password not changed: {f.getErrorMessage()}"))
    core.hold_input(user, changing)


# -- ChanServ ------------------------------------------------------------------------------------
def _channel_named(request: Request, verb: str) -> tuple[str, RegisteredChannel | None] | None:
    """The channel name a ChanServ command starts with and its registration; None (and the
    syntax said) when the first word is not a channel name."""
    if not request.args or not is_channel_name(request.args[0]):
        request.say("Syntax: " + CHANSERV[verb].syntax)
        return None
    name = request.args[0]
    return name, request.accounts.store.registered_channel(name)


def _registered(request: Request, verb: str) -> RegisteredChannel | None:
    """The registration of the channel a ChanServ command names (else said why not)."""
    named = _channel_named(request, verb)
    if named is None:
        return None
    name, registered = named
    if registered is None:
        request.say(f"{name} is not registered.")
    return registered


def _founded(request: Request, verb: str) -> RegisteredChannel | None:
    """The registration of the channel named, when the asker is its founder (else said why)."""
    registered = _registered(request, verb)
    if registered is None:
        return None
    if request.me is None:
        request.say("You must be identified to an account.")
    elif registered.founder != request.me:
        request.say(f"Only the founder of {registered.name} may do that.")
    else:
        return registered
    return None


def cs_register(request: Request) -> None:
    """Register a channel the asker operates, to the asker's account."""
    named = _channel_named(request, "REGISTER")
    if named is None:
        return
    name, registered = named
    channel = request.core.state.find_channel(name)
    if request.me is None:
        request.say("You must be identified to an account.")
    elif registered is not None:
        request.say(f"{name} is already registered.")
    elif channel is None or "o" not in channel.members.get(request.user, ""):
        request.say(f"You must be an operator of {name} to register it.")
    else:
        from twistedchat.server.registered import saved_state

        try:
            request.accounts.store.register_channel(channel.name, request.me,
                                                    request.core.clock(), **saved_state(channel))
        except StoreError as error:
            request.say(f"Not registered: {error}")
            return
        request.say(f"{channel.name} is now registered to {request.user.account}.")


def cs_drop(request: Request) -> None:
    """Unregister a channel (the founder only)."""
    registered = _founded(request, "DROP")
    if registered is not None:
        request.accounts.store.drop_channel(registered.name)
        request.say(f"{registered.name} is no longer registered.")


def cs_info(request: Request) -> None:
    """A registered channel's founder, description and settings."""
    registered = _registered(request, "INFO")
    if registered is None:
        return
    request.say(f"{registered.name}: founder {registered.founder}, registered "
                f"{_utc(registered.registered)}, {len(registered.access)} on the access list")
    if registered.description:
        request.say(f"Description: {registered.description}")
    lock = _lock_text(registered.mlock_on, registered.mlock_off)
    request.say(f"Modes +{registered.modes}; mode lock: {lock or 'none'}; keep topic: "
                f"{'on' if registered.keep_topic else 'off'}; restricted: "
                f"{'on' if registered.restricted else 'off'}")


def _lock_text(on: str, off: str) -> str:
    """A mode lock as a mode string: ``+nt-s`` ("" when nothing is locked)."""
    return (f"+{on}" if on else "") + (f"-{off}" if off else "")


def _utc(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, tz=timezone.utc):%Y-%m-%d %H:%M} UTC"


def cs_status(request: Request) -> None:
    """OP, DEOP, VOICE, DEVOICE: change a member's status (the access list decides who may)."""
    verb, core = request.verb, request.core
    registered = _registered(request, verb)
    if registered is None:
        return
    if request.me is None:
        request.say("You must be identified to an account.")
        return
    channel = core.state.find_channel(registered.name)
    if channel is None:
        request.say(f"{registered.name} is empty.")
        return
    level = "o" if registered.founder == request.me else registered.access.get(request.me, "")
    target = core.state.users.get(casefold(request.args[1])) if len(request.args) > 1 \
        else request.user
    own_voice = verb in ("VOICE", "DEVOICE") and target is request.user
    if level != "o" and not (own_voice and level == "v"):
        request.say("You are not on the access list for that.")
        return
    if target is None or target not in channel.members:
        request.say("That nick is not on the channel.")
        return
    mode = {"OP": "+o", "DEOP": "-o", "VOICE": "+v", "DEVOICE": "-v"}[verb]
    current = channel.members[target]
    new = current + mode[1] if mode[0] == "+" else current.replace(mode[1], "")
    channel.members[target] = "".join(m for m in "ov" if m in new)
    channel.forget_names()
    core.relay(channel.members, request.accounts.service_source("ChanServ"), "MODE",
               channel.name, mode, target.nick)


def cs_access(request: Request) -> None:
    """List, add or remove the accounts that get op or voice on joining."""
    registered = _registered(request, "ACCESS")
    if registered is None:
        return
    name, store = registered.name, request.accounts.store
    args = request.args[1:]
    sub = args[0].upper() if args else "LIST"
    if sub == "LIST":
        request.say(f"{registered.name} founder: {registered.founder}")
        for account, level in sorted(registered.access.items()):
            request.say(f"  {account} {'op' if level == 'o' else 'voice'}")
        return
    if _founded(request, "ACCESS") is None:
        return
    try:
        if sub == "ADD" and len(args) >= 3:
            wanted = {"op": "o", "voice": "v", "o": "o", "v": "v"}.get(args[2].lower())
            if wanted is None or wanted not in ACCESS_LEVELS or store.account(args[1]) is None:
                request.say("Syntax: ACCESS <#channel> ADD <registered account> <op|voice>")
                return
            store.set_access(name, args[1], wanted)
            request.say(f"{args[1]} added to {registered.name} as {args[2].lower()}.")
        elif sub == "DEL" and len(args) >= 2:
            store.set_access(name, args[1], None)
            request.say(f"{args[1]} removed from {registered.name}.")
        else:
            request.say("Syntax: " + CHANSERV["ACCESS"].syntax)
    except StoreError as error:
        request.say(f"Not changed: {error}")


def parse_mode_lock(text: str) -> tuple[str, str]:
    """``+nt-s`` -> ("nt", "s"): the flag modes locked on and off (``ValueError`` says why not).
    ``OFF`` or nothing unlocks everything."""
    if text.upper() in ("", "OFF"):
        return "", ""
    on: list[str] = []
    off: list[str] = []
    adding = True
    for letter in text:
        if letter in "+-":
            adding = letter == "+"
        elif letter not in FLAG_MODES:
            raise ValueError(f"only the modes {FLAG_MODES} can be locked, not {letter!r}")
        elif letter in on or letter in off:
            raise ValueError(f"the mode {letter} is named twice")
        else:
            (on if adding else off).append(letter)
    return "".join(on), "".join(off)


#: Bold, colour, hex colour, reset, reverse, italics, strikethrough, underline, monospace.
IRC_FORMATTING = "\x02\x03\x04\x0f\x16\x1d\x1e\x1f\x11"


def _switch(value: str) -> bool | None:
    return {"ON": True, "OFF": False}.get(value.upper())


def cs_set(request: Request) -> None:
    """Change a registered channel's settings (the founder only)."""
    registered = _founded(request, "SET")
    if registered is None:
        return
    accounts, store = request.accounts, request.accounts.store
    setting = request.args[1].upper() if len(request.args) > 1 else ""
    values = request.args[2:]
    changes: dict[str, object]
    new_founder = store.account(values[0]) if setting == "FOUNDER" and len(values) == 1 else None
    if new_founder is not None:
        changes = {"founder": new_founder.name}
        done = f"{registered.name}'s founder is now {new_founder.name}."
    elif setting in ("DESCRIPTION", "DESC"):
        text = " ".join(values)  # the words, one space between them
        if any((ord(c) < 32 or ord(c) == 127) and c not in IRC_FORMATTING for c in text):
            request.say("Not changed: a description may hold formatting codes but no other "
                        "control characters (CTCP).")
            return
        changes = {"description": text}
        done = f"{registered.name}'s description is now: {text}" if text else \
            f"{registered.name} has no description now."
    elif setting in ("KEEPTOPIC", "RESTRICTED") and len(values) == 1 \
            and _switch(values[0]) is not None:
        field = "keep_topic" if setting == "KEEPTOPIC" else "restricted"
        changes = {field: _switch(values[0])}
        done = f"{setting} is now {values[0].upper()} on {registered.name}."
    elif setting == "MLOCK" and len(values) <= 1:
        try:
            on, off = parse_mode_lock(values[0] if values else "")
        except ValueError as error:
            request.say(f"Not changed: {error}.")
            return
        changes = {"mlock_on": on, "mlock_off": off}
        done = f"The mode lock of {registered.name} is now {_lock_text(on, off) or 'off'}."
    else:
        request.say("Syntax: " + CHANSERV["SET"].syntax)
        return
    try:
        store.update_channel(registered.name, **changes)
    except StoreError as error:
        request.say(f"Not changed: {error}")
        return
    request.say(done)
    channel = request.core.state.find_channel(registered.name)
    if channel is not None and "mlock_on" in changes:
        accounts.enforce_mode_lock(channel)


def service_help(table: dict[str, ServiceCommand], service: str) -> Callable[[Request], None]:
    """HELP [command]: a service's commands with their syntax, or one command's."""

    def answer(request: Request) -> None:
        wanted = request.args[0].upper() if request.args else ""
        if wanted in table:
            request.say(f"{table[wanted].syntax}: {table[wanted].summary}")
            return
        request.say(f"{service} commands (/msg {service} <command>, or /{service[:1]}S <command>):")
        for entry in table.values():
            request.say(f"  {entry.syntax}")
        request.say(f"/msg {service} HELP <command> says what one does.")

    answer.__doc__ = f"{service}'s commands and their syntax."
    return answer


#: NickServ's commands, in the order HELP lists them.
NICKSERV: dict[str, ServiceCommand] = {
    "REGISTER": ServiceCommand("REGISTER <password> [email]",
                               "register your current nick as an account", ns_register),
    "IDENTIFY": ServiceCommand("IDENTIFY [account] <password>", "log in to an account",
                               ns_identify),
    "GHOST": ServiceCommand("GHOST <nick>",
                            "disconnect whoever uses a nick your account owns", ns_ghost),
    "INFO": ServiceCommand("INFO [account]", "when an account was registered, its nicks",
                           ns_info),
    "DROP": ServiceCommand("DROP <password>", "delete your account, its nicks and the "
                           "channels it founded", ns_drop),
    "SET": ServiceCommand("SET PASSWORD <new password>", "change your password", ns_set),
}
NICKSERV["HELP"] = ServiceCommand("HELP [command]", "this list",
                                  service_help(NICKSERV, "NickServ"))

_STATUS = "(the access list decides who may)"
#: ChanServ's commands, in the order HELP lists them.
CHANSERV: dict[str, ServiceCommand] = {
    "REGISTER": ServiceCommand("REGISTER <#channel>", "register a channel you operate",
                               cs_register),
    "DROP": ServiceCommand("DROP <#channel>", "unregister a channel (its founder)", cs_drop),
    "INFO": ServiceCommand("INFO <#channel>", "a channel's founder, description and settings",
                           cs_info),
    "OP": ServiceCommand("OP <#channel> [nick]", f"give channel operator status {_STATUS}",
                         cs_status),
    "DEOP": ServiceCommand("DEOP <#channel> [nick]", f"take operator status {_STATUS}",
                           cs_status),
    "VOICE": ServiceCommand("VOICE <#channel> [nick]", f"give voice {_STATUS}", cs_status),
    "DEVOICE": ServiceCommand("DEVOICE <#channel> [nick]", f"take voice {_STATUS}", cs_status),
    "ACCESS": ServiceCommand("ACCESS <#channel> LIST|ADD <account> <op|voice>|DEL <account>",
                             "who gets op or voice on joining", cs_access),
    "SET": ServiceCommand(
        "SET <#channel> FOUNDER <account>|DESCRIPTION [text]|KEEPTOPIC ON|OFF|"
        "MLOCK <+modes-modes>|OFF|RESTRICTED ON|OFF",
        "the founder's settings: a new founder; the description INFO shows; keep the topic when "
        f"the channel is recreated; modes ({FLAG_MODES}) kept set or unset; only the access list "
        "may join", cs_set),
}
CHANSERV["HELP"] = ServiceCommand("HELP [command]", "this list",
                                  service_help(CHANSERV, "ChanServ"))

#: Each service's table by its casefolded nick.
SERVICE_TABLES: dict[str, tuple[str, dict[str, ServiceCommand]]] = {
    "nickserv": (SERVICES["nickserv"], NICKSERV), "chanserv": (SERVICES["chanserv"], CHANSERV),
}


def ask_service(core: ServerCore, user: User, folded: str, text: str) -> None:
    """Run one line sent to a service (``folded``: its casefolded nick)."""
    accounts = core.accounts
    assert accounts is not None
    service, table = SERVICE_TABLES[folded]
    words = text.split()
    verb = words[0].upper() if words else "HELP"
    entry = table.get(verb)
    request = Request(core, user, accounts, service, verb, words[1:])
    if entry is None:
        request.say(f"Unknown command {words[0]}. /msg {service} HELP lists the commands.")
        return
    entry.handler(request)


# -- the service pseudo-users in other commands ---------------------------------------------------
#: The lengths of the services' nicks: PRIVMSG (the hot path) casefolds no other target.
_SERVICE_NICK_LENGTHS = frozenset(len(name) for name in SERVICE_TABLES)


def _privmsg(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    if len(msg.params) > 1 and len(msg.params[0]) in _SERVICE_NICK_LENGTHS:
        target = casefold(msg.params[0])
        if target in SERVICE_TABLES:
            ask_service(core, user, target, msg.params[1])
            return
    handler(core, user, msg)


def _notice(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    """A NOTICE to a service is dropped, as services do (never 401: they are there)."""
    if msg.params and len(msg.params[0]) in _SERVICE_NICK_LENGTHS \
            and casefold(msg.params[0]) in SERVICE_TABLES:
        return
    handler(core, user, msg)


def _whois(handler: Handler, core: ServerCore, user: User, msg: Message) -> None:
    name = msg.params[-1].split(",")[0] if msg.params else ""
    folded = casefold(name)
    if folded not in SERVICE_TABLES:
        handler(core, user, msg)
        return
    service = SERVICE_TABLES[folded][0]
    kind = "Nickname" if folded == "nickserv" else "Channel"
    core.reply(user, N.RPL_WHOISUSER, service, service, f"services.{core.config.name}", "*",
               f"{kind} services")
    core.reply(user, N.RPL_WHOISSERVER, service, core.config.name,
               f"{core.config.network} services")
    core.reply(user, N.RPL_ENDOFWHOIS, service, "End of /WHOIS list")


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


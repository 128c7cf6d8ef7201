"""ChanServ: registered channels, their access lists and the founder's settings, each command
declared once in :data:`CHANSERV` with its syntax. Every command is a dict lookup or two and a
few lines back; every value kept is checked and bounded (the store checks again)."""

from __future__ import annotations

from twistedchat.server.commands.service_base import Request, ServiceCommand, service_help, utc
from twistedchat.server.limits import FLAG_MODES
from twistedchat.storage.model import ACCESS_LEVELS, RegisteredChannel, StoreError
from twistedchat.wire.names import casefold, is_channel_name


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
                f"{utc(registered.registered)}, {len(registered.access)} on the access list")
    if registered.description:
        request.say(f"Description: {registered.description}")
    lock = _lock_text(registered.mlock_on, registered.mlock_off)
    request.say(f"Modes +{registered.modes}; mode lock: {lock or 'none'}; keep topic: "
                f"{'on' if registered.keep_topic else 'off'}; restricted: "
                f"{'on' if registered.restricted else 'off'}")


def _lock_text(on: str, off: str) -> str:
    """A mode lock as a mode string: ``+nt-s`` ("" when nothing is locked)."""
    return (f"+{on}" if on else "") + (f"-{off}" if off else "")


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
            if casefold(args[1]) == registered.founder:
                request.say(f"{args[1]} founded {registered.name}: its founder is always op.")
                return
            store.set_access(name, args[1], wanted)
            request.say(f"{args[1]} added to {registered.name} as {args[2].lower()}.")
        elif sub == "DEL" and len(args) >= 2:
            if casefold(args[1]) not in registered.access:
                request.say(f"{args[1]} is not on the access list of {registered.name}.")
                return
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

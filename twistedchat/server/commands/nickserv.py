"""NickServ: accounts and the nicks they own, each command declared once in :data:`NICKSERV` with
its syntax. The password checks (IDENTIFY, DROP, SET PASSWORD) run in a thread, braked per
account, address and connection; every other command is a dict lookup or two."""

from __future__ import annotations

from collections.abc import Callable

from twistedchat.server.commands.accounts import check_password, create_and_log_in
from twistedchat.server.commands.service_base import Request, ServiceCommand, service_help, utc
from twistedchat.storage.model import StoreError
from twistedchat.wire.names import casefold


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
    request.say(f"{account.name} registered {utc(account.created)}; nicks: "
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

"""What NickServ and ChanServ share: one request to a service, a service's command table entry,
the HELP built from a table, a time as services show it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NamedTuple

from twistedchat.server.state import User
from twistedchat.wire.names import casefold

if TYPE_CHECKING:
    from twistedchat.server.accounts import Accounts
    from twistedchat.server.core import ServerCore


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



def utc(seconds: float) -> str:
    """A time as the services show it: ``2026-11-30 13:04 UTC``."""
    return f"{datetime.fromtimestamp(seconds, tz=timezone.utc):%Y-%m-%d %H:%M} UTC"

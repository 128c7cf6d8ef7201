"""The command table: each IRC command declared once, with what the dispatcher checks for it.

In the spirit of Ergo's: a handler is a plain function ``handler(core, user, message)`` whose
docstring is its syntax line; :func:`command` files it under its name with its minimum parameter
count, whether it is allowed before registration and whether it needs an IRC operator.
:meth:`twistedchat.server.core.ServerCore.handle` answers 421, 451, 461 and 481 from the table, so
no handler repeats those checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from twistedchat.server.state import User
from twistedchat.wire.message import Message

if TYPE_CHECKING:
    from twistedchat.server.core import ServerCore

Handler = Callable[["ServerCore", User, Message], None]


class Command(NamedTuple):
    """One command as the dispatcher knows it."""

    name: str
    handler: Handler
    #: Parameters that must be present and non-empty, else 461.
    min_params: int = 0
    #: Allowed before registration completes (else 451).
    pre_registration: bool = False
    #: Only for IRC operators (else 481).
    oper_only: bool = False

    @property
    def syntax(self) -> str:
        """The command's syntax line: the first line of its handler's docstring."""
        return (self.handler.__doc__ or self.name).strip().splitlines()[0]


#: Every command, by name; filled by the family modules as they are imported.
COMMANDS: dict[str, Command] = {}


def command(
    name: str, min_params: int = 0, pre_registration: bool = False, oper_only: bool = False
) -> Callable[[Handler], Handler]:
    """Declare the decorated function as the handler of ``name``."""

    def declare(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"{name} is declared twice")
        if not (handler.__doc__ or "").strip().upper().startswith(name):
            raise ValueError(f"the docstring of the {name} handler must be its syntax line")
        COMMANDS[name] = Command(name, handler, min_params, pre_registration, oper_only)
        return handler

    return declare

"""The server's commands, one handler per command, grouped by family; :data:`COMMANDS` is the table."""

from __future__ import annotations

from twistedchat.server.commands import (  # noqa: F401 (importing a family declares its commands)
    admin,
    channels,
    markers,
    messages,
    metadata,
    modes,
    operator,
    presence,
    queries,
    registration,
)
from twistedchat.server.commands.table import COMMANDS, Command, command

__all__ = ["COMMANDS", "Command", "command"]

"""The bot API: subclass :class:`Bot`, decorate its methods, run it with ``twistd chatbot`` or ``run()``.

The names below load on first use: importing a submodule such as the pytest plugin
:mod:`twistedchat.bot.testing` must not import Twisted's IRC module (which installs the default
reactor) before the test runner picks one.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Bot": "core",
    "BotService": "core",
    "make_service": "core",
    "run": "core",
    "BotClient": "client",
    "BotFactory": "client",
    "Event": "handlers",
    "command": "handlers",
    "every": "handlers",
    "example": "handlers",
    "on_join": "handlers",
    "on_kick": "handlers",
    "on_message": "handlers",
    "on_mode": "handlers",
    "on_nick": "handlers",
    "on_notice": "handlers",
    "on_part": "handlers",
    "on_quit": "handlers",
    "on_topic": "handlers",
    "ServerError": "output",
    "rate": "permissions",
    "rate_limit": "permissions",
    "require": "permissions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'twistedchat.bot' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"twistedchat.bot.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

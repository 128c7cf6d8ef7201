"""The bot API: subclass :class:`Bot`, decorate its methods, run it with ``twistd chatbot`` or ``run()``."""

from twistedchat.bot.client import BotClient, BotFactory
from twistedchat.bot.core import Bot, BotService, make_service, run
from twistedchat.bot.handlers import (
    Event,
    command,
    every,
    example,
    on_join,
    on_kick,
    on_message,
    on_mode,
    on_nick,
    on_notice,
    on_part,
    on_quit,
    on_topic,
)
from twistedchat.bot.output import ServerError
from twistedchat.bot.permissions import rate, require

__all__ = [
    "Bot",
    "BotClient",
    "BotFactory",
    "BotService",
    "Event",
    "ServerError",
    "command",
    "every",
    "example",
    "make_service",
    "on_join",
    "on_kick",
    "on_message",
    "on_mode",
    "on_nick",
    "on_notice",
    "on_part",
    "on_quit",
    "on_topic",
    "rate",
    "require",
    "run",
]

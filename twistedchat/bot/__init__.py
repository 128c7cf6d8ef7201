"""The bot API: subclass :class:`Bot`, decorate its methods, run it with ``twistd chatbot`` or ``run()``."""

from twistedchat.bot.core import (
    Bot,
    BotClient,
    BotFactory,
    Event,
    command,
    make_service,
    on_join,
    on_message,
    run,
)

__all__ = [
    "Bot",
    "BotClient",
    "BotFactory",
    "Event",
    "command",
    "make_service",
    "on_join",
    "on_message",
    "run",
]

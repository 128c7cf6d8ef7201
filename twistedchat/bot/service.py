"""Running a bot: the service that keeps it connected, and ``run()`` for a script."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.application.internet import ClientService
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorCore, IReactorTime

from twistedchat.bot.client import BotFactory
from twistedchat.client.protocol import reconnecting_service

if TYPE_CHECKING:
    from twistedchat.bot.core import Bot


class BotService(ClientService):
    """Keeps a bot connected; starting it starts the bot, stopping it says QUIT and stops it."""

    bot: Bot

    def startService(self) -> None:
        self.bot.start()
        super().startService()

    def stopService(self) -> defer.Deferred[None]:
        self.bot.quit()
        stopped = super().stopService()

        def stop_bot(result: Any) -> Any:
            self.bot.stop()
            return result

        return stopped.addBoth(stop_bot)


def make_service(
    bot: Bot,
    server: str = "tcp:localhost:1234",
    *,
    nickname: str | None = None,
    channels: Iterable[str] | None = None,
    password: str | None = None,
    sasl_password: str | None = None,
    reactor: IReactorTime | None = None,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
) -> ClientService:
    """A service that keeps ``bot`` connected to ``server`` (a Twisted client endpoint string).

    Start it with ``startService()`` (or add it to an application); it reconnects with backoff.
    ``password`` is the server password (PASS), ``sasl_password`` the bot account's (SASL PLAIN,
    account :attr:`Bot.sasl_account` or the nickname).
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor
        reactor = default_reactor
    factory = BotFactory(bot, nickname=nickname, channels=channels, password=password,
                         sasl_password=sasl_password, clock=reactor)
    service = reconnecting_service(reactor, server, factory, max_delay=max_delay,
                                   initial_delay=initial_delay, service_class=BotService)
    assert isinstance(service, BotService)
    service.bot = bot
    return service


def run(bot: Bot, server: str = "tcp:localhost:1234", **options: Any) -> None:
    """Run ``bot`` until interrupted (Ctrl-C), logging to stderr: ``python mybot.py``.

    ``options`` are those of :func:`make_service` (``nickname``, ``channels``, ``password``).
    """
    import sys

    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])

    def main(reactor: IReactorCore) -> defer.Deferred[None]:
        service = make_service(bot, server, reactor=IReactorTime(reactor), **options)
        service.startService()
        reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
        return defer.Deferred()  # never fires: run until the reactor is stopped

    task.react(main)

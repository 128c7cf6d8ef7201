"""The daemon as a twistd service: the listeners, one :class:`ChatFactory`, start and stop."""

from __future__ import annotations

import signal
from typing import Any

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import defer, endpoints
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from twistedchat.server.config import ServerConfig
from twistedchat.server.net import ChatFactory

log = Logger()


class ChatService(service.MultiService):
    """The daemon: one :class:`ChatFactory` behind any number of listening endpoints."""

    def __init__(self, config: ServerConfig, ports: list[str], reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.factory = ChatFactory(config, clock=reactor)
        self.listeners: list[StreamServerEndpointService] = []
        self.descriptions = list(ports)
        for description in ports:
            endpoint = endpoints.serverFromString(reactor, description)
            listener = StreamServerEndpointService(endpoint, self.factory)
            listener._raiseSynchronously = True
            listener.setServiceParent(self)
            self.listeners.append(listener)

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as error:
            # A port in use or an address this host lacks: say so plainly, not with a traceback.
            raise SystemExit(f"twistedchat: {error}") from None

    def startService(self) -> None:
        super().startService()
        for description in self.descriptions:
            log.info("twistedchat listening on {description}", description=description)

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        # Close the listeners first so nobody new arrives, then say goodbye to everyone.
        yield defer.DeferredList([defer.maybeDeferred(s.stopService) for s in self.listeners])
        yield self.factory.shutdown("Server shutting down")
        self.running = 0
        # SIGTERM is how service managers ask us to stop; once every client has been told, that is
        # a clean exit (status 0), not death by signal, which twistd would otherwise re-raise.
        if getattr(self.reactor, "_exitSignal", None) == signal.SIGTERM:
            self.reactor._exitSignal = None

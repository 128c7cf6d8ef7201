"""``reuseport:PORT[:interface=ADDR][:backlog=N]``: a TCP listener with ``SO_REUSEPORT``, so that
several worker processes listen on one port and the kernel spreads connections across them."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import defer, interfaces
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(interfaces.IStreamServerEndpoint)
class ReusePortEndpoint:
    """Bind a socket with ``SO_REUSEPORT`` and hand it to the reactor (``adoptStreamPort``)."""

    def __init__(self, reactor: Any, port: int, interface: str = "", backlog: int = 50) -> None:
        self.reactor = reactor
        self.port = port
        self.interface = interface
        self.backlog = backlog

    def listen(self, factory: Any) -> defer.Deferred[Any]:
        try:
            adopt = self.reactor.adoptStreamPort
        except AttributeError:
            # A reactor that cannot adopt sockets (or the configuration check's recorder,
            # which must open none): a plain TCP listener.
            return defer.maybeDeferred(self.reactor.listenTCP, self.port, factory,
                                       self.backlog, self.interface)
        family = socket.AF_INET6 if ":" in self.interface else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.interface, self.port))
            sock.listen(self.backlog)
            sock.setblocking(False)
            listening = adopt(sock.fileno(), family, factory)
        except Exception:
            return defer.fail()
        finally:
            sock.close()  # the reactor holds its own copy of the descriptor
        return defer.succeed(listening)


@implementer(IPlugin, interfaces.IStreamServerEndpointStringParser)
class ReusePortParser:
    """The ``reuseport:`` prefix for endpoint descriptions."""

    prefix = "reuseport"

    def parseStreamServer(self, reactor: Any, *args: object,
                          **kwargs: object) -> ReusePortEndpoint:
        """``reuseport:PORT[:interface=ADDR][:backlog=N]``."""
        if len(args) != 1:
            raise ValueError("reuseport: expected reuseport:PORT[:interface=ADDR][:backlog=N]")
        return ReusePortEndpoint(reactor, int(str(args[0])), str(kwargs.get("interface", "")),
                                 int(str(kwargs.get("backlog", "50"))))

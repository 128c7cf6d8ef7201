"""TLS certificates a reload can replace: a listener keeps its socket and its connections, and
every new connection gets the certificate read at the last reload (a renewed Let's Encrypt
certificate needs no restart).

Twisted's ``ssl:`` endpoint reads the key and certificate when its description is parsed and hands
the TLS settings to ``reactor.listenSSL``. The daemon parses with :class:`ListenRecorder` as the
reactor: it passes everything on to the real reactor, but gives ``listenSSL`` a
:class:`ReloadableTLS` wrapping those settings (an ``IOpenSSLServerConnectionCreator``, the
documented way to supply TLS to a listener), whose settings :meth:`ReloadableTLS.replace` swaps.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet import endpoints
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """The TLS settings of one listener; new connections use whatever was set last."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def serverConnectionForTLS(self, protocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        settings = self.settings
        if IOpenSSLServerConnectionCreator.providedBy(settings):
            connection: SSL.Connection = settings.serverConnectionForTLS(protocol)
            return connection
        return SSL.Connection(settings.getContext(), None)  # an older-style context factory

    def replace(self, settings: Any) -> None:
        """Use ``settings`` (freshly read by :func:`read_tls_settings`) for new connections."""
        self.settings = settings


class ListenRecorder:
    """Stands in for the reactor an endpoint listens with; keeps the TLS settings it passes.

    With ``reactor`` None nothing listens: the endpoint is only made to show its settings.
    """

    def __init__(self, reactor: Any = None) -> None:
        #: The real reactor, which provides whichever ``IReactor*`` an endpoint asks for (Any:
        #: it is every one of them at once).
        self._reactor = reactor
        self.tls: list[ReloadableTLS] = []

    def listenSSL(self, port: int, factory: IProtocolFactory, contextFactory: Any, backlog: int = 50,
                  interface: str = "") -> IListeningPort | None:
        reloadable = ReloadableTLS(contextFactory)
        self.tls.append(reloadable)
        if self._reactor is None:
            return None
        listening: IListeningPort = self._reactor.listenSSL(port, factory, reloadable, backlog,
                                                            interface)
        return listening

    def __getattr__(self, name: str) -> Any:
        if self._reactor is None:
            if name.startswith("listen"):  # listenTCP, listenUNIX, ...: only parsing, no socket
                return lambda *args, **kwargs: None
            raise AttributeError(name)
        return getattr(self._reactor, name)


def read_tls_settings(description: str) -> list[Any]:
    """The TLS settings a description gives now (its key and certificate files read again and
    checked against each other), [] for a description without TLS; raises what Twisted or
    OpenSSL raise for a bad description or bad files. Opens no socket."""
    recorder = ListenRecorder()
    endpoint = endpoints.serverFromString(recorder, description)
    failures: list[Any] = []
    endpoint.listen(Factory.forProtocol(Protocol)).addErrback(failures.append)
    if failures:
        failures[0].raiseException()
    settings = [reloadable.settings for reloadable in recorder.tls]
    for each in settings:
        if hasattr(each, "getContext"):
            each.getContext()  # builds the OpenSSL context: a key that does not match fails here
    return settings

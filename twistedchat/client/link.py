"""Keeping a chat session connected: the first connection with clear errors, then reconnection.

:class:`SessionLink` connects one :class:`~twistedchat.client.session.Session` through a
:class:`~twistedchat.client.session_client.SessionClient` (protocol lines in, session calls out),
reconnects with backoff and sends what the user types. Nothing here knows of Qt.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.application.internet import ClientService
from twisted.internet import defer, error, ssl
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.python.failure import Failure

from twistedchat.client.extensions import ExtensionsLink
from twistedchat.client.protocol import reconnecting_service
from twistedchat.client.session import (
    Conversation,
    Event,
    QuitRequested,
    ReconnectRequested,
    Session,
)
from twistedchat.client.session_client import (
    CTCP_ANSWERED,
    CTCP_BURST,
    CTCP_RATE,
    PACING_BURST,
    PACING_RATE,
    READ_BACKLOG_LIMIT,
    READ_CHUNK,
    SEND_FAILURES,
    PausableTransport,
    SessionClient,
    SessionClientFactory,
    describe_loss,
    local_time,
)

__all__ = [
    "CTCP_ANSWERED", "CTCP_BURST", "CTCP_RATE", "PACING_BURST", "PACING_RATE",
    "READ_BACKLOG_LIMIT", "READ_CHUNK", "SEND_FAILURES", "LinkError", "PausableTransport",
    "SessionClient", "SessionClientFactory", "SessionLink", "describe_failure", "describe_loss",
    "local_time",
]


class LinkError(Exception):
    """The first connection failed; ``str()`` says why in words, ``suggested_nick`` may help."""

    def __init__(self, message: str, suggested_nick: str | None = None) -> None:
        super().__init__(message)
        self.suggested_nick = suggested_nick


def describe_failure(failure: Failure, address: str) -> str:
    """A connection failure in words a person understands."""
    exc = failure.value
    if isinstance(exc, error.ConnectionRefusedError):
        return f"Could not connect to {address}: connection refused (is the server running?)"
    if isinstance(exc, error.DNSLookupError):
        return f"Could not find the server {address.rsplit(':', 1)[0]}"
    if isinstance(exc, error.TimeoutError):
        return f"Could not connect to {address}: no answer"
    return f"Could not connect to {address}: {failure.getErrorMessage()}"


class SessionLink(ExtensionsLink):
    """Keeps one :class:`Session` connected to a server.

    :meth:`start` connects once and fires when we are signed on, or fails with a
    :class:`LinkError` (refused, nick in use, bad password). After that, a lost connection is
    shown in the session and retried with exponential backoff; channels are rejoined.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        session: Session,
        host: str,
        port: int,
        *,
        tls: bool = False,
        password: str | None = None,
        channels: Iterable[str] = (),
        realname: str | None = None,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        tls_options: IOpenSSLClientConnectionCreator | None = None,
        pacing: tuple[int, float] = (PACING_BURST, PACING_RATE),
        account: str = "",
        account_password: str = "",
        create_account: bool = False,
    ) -> None:
        self.reactor = reactor
        self.session = session
        self.host, self.port, self.tls = host, port, tls
        self.address = f"{host}:{port}"
        self.factory = SessionClientFactory(self, session.nick, channels, password or None,
                                            realname)
        if account and account_password:  # log in (or create the account) with SASL
            self.factory.sasl_account, self.factory.sasl_password = account, account_password
            self.factory.register_account = create_account
        self.client: SessionClient | None = None
        self.first_attempt = True
        self.stopping = False
        self._initial_delay, self._max_delay = initial_delay, max_delay
        self._tls_options = tls_options
        #: what the user types goes out at most ``burst`` lines at once, then ``rate`` a second
        self.pacing = pacing
        self._first: defer.Deferred[None] | None = None
        self.service: ClientService | None = None
        self._init_extensions()
        session.subscribe(self._on_session_event)

    def endpoint(self) -> IStreamClientEndpoint:
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            self.reactor, self.host, self.port, timeout=15)
        if self.tls:
            options = self._tls_options or ssl.optionsForClientTLS(self.host)
            endpoint = wrapClientTLS(options, endpoint)
        return endpoint

    def start(self) -> defer.Deferred[None]:
        """Connect; fires once signed on, or fails with :class:`LinkError`."""
        self.first_attempt, self.stopping = True, False
        self._first = defer.Deferred()
        self.service = reconnecting_service(
            self.reactor, self.endpoint(), self.factory, initial_delay=self._initial_delay,
            max_delay=self._max_delay, on_retry=self._retrying)
        self.session.set_status(f"Connecting to {self.address}…", False)
        self.service.startService()
        self.service.whenConnected(failAfterFailures=1).addErrback(self._connect_failed)
        return self._first

    def _connect_failed(self, failure: Failure) -> None:
        if self.first_attempt:
            self._fail_first(describe_failure(failure, self.address))
        elif not failure.check(defer.CancelledError):
            self.session.set_status(describe_failure(failure, self.address), False)

    def _fail_first(self, message: str, suggested_nick: str | None = None) -> None:
        first, self._first = self._first, None
        # Called from inside the ClientService's own callbacks, which cannot stop it there and
        # then (it would go on retrying in the background): it is stopped on the next turn.
        self.stopping = True
        service, self.service = self.service, None
        if service is not None and service.running:
            self.reactor.callLater(0, service.stopService)
        self.session.set_status(message, False)
        if first is not None:
            first.errback(LinkError(message, suggested_nick))

    def _stop_service(self) -> defer.Deferred[None]:
        self.stopping = True
        service, self.service = self.service, None
        if service is None or not service.running:
            return defer.succeed(None)
        return defer.maybeDeferred(service.stopService)

    def _retrying(self, delay: float) -> None:
        if not self.first_attempt and not self.stopping:
            self.session.set_status(
                f"Not connected to {self.address}: retrying in {delay:.0f} s", False)

    # -- called by the client ------------------------------------------------------------------

    def registered(self, client: SessionClient) -> None:
        self.first_attempt = False
        first, self._first = self._first, None
        if first is not None:
            first.callback(None)

    def registration_failed(self, reason: str, suggested_nick: str | None = None) -> None:
        if self.first_attempt:
            self._fail_first(reason, suggested_nick)
        else:  # retrying would fail the same way: stop, and say why
            self.session.error(reason)
            self._stop_service()
            self.session.set_status(f"Disconnected: {reason}", False)

    def connection_lost(self, client: SessionClient, reason: str) -> None:
        self._connection_ended()
        if self.first_attempt:
            if self._first is not None:
                self._fail_first(f"The server closed the connection: {reason}")
            return
        if client._registered:
            self.session.on_connection_lost(reason)
        if self.stopping:
            self.session.set_status("Disconnected", False)
        else:
            self.session.set_status(f"Connection to {self.address} lost: {reason}", False)

    # -- called by the view --------------------------------------------------------------------

    def send_input(self, text: str, conversation: Conversation | None = None) -> None:
        """Carry out what the user typed and send the protocol lines it makes."""
        lines = self.session.handle_input(text, conversation)
        if not lines:
            return
        client = self.client
        if client is None:
            self.session.error("Not connected: nothing was sent", conversation)
            return
        assert client.outgoing is not None, "set when the connection was made"
        for line in lines:
            client.outgoing(line)

    @property
    def waiting(self) -> int:
        """Lines typed but held back by the pacing."""
        client = self.client
        return client.outgoing.waiting if client is not None and client.outgoing else 0

    def _on_session_event(self, event: Event) -> None:
        self._extension_event(event)
        if isinstance(event, QuitRequested):
            self.stop(event.reason)
        elif isinstance(event, ReconnectRequested):
            self.reconnect()

    def reconnect(self) -> None:
        """Drop the connection and connect again at once (``/reconnect``)."""
        self.session.info("Reconnecting…")
        if self.client is not None and self.client.transport is not None:
            self.client.transport.loseConnection()
        elif self.service is None:
            self.first_attempt = False
            self.start().addErrback(lambda failure: None)

    def stop(self, reason: str = "Leaving") -> defer.Deferred[None]:
        """Send QUIT with ``reason`` and disconnect for good; fires when the link is down.

        Only the first call sends QUIT (``/quit`` stops the link, then closing the window does).
        """
        if not self.stopping and self.client is not None and self.client._registered:
            self.client.quit(reason)
        self.stopping = True
        self._stop_extensions()
        first, self._first = self._first, None
        if first is not None:
            first.errback(LinkError("Cancelled"))
        return self._stop_service()

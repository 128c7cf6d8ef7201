"""The application's flow: the connect dialog, then the main window, then a clean exit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from OpenSSL import SSL
from PyQt6.QtCore import QSettings
from twisted.internet import defer, ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from qtclient.dialog import ConnectDialog, ConnectSettings, save_settings
from qtclient.window import MainWindow
from twistedchat.client.link import LinkError, SessionLink
from twistedchat.client.session import Session

log = Logger()

#: How long closing the window waits for QUIT to reach the server before exiting anyway.
QUIT_GRACE_SECONDS = 3.0


def trusting(host: str, ca_file: str) -> IOpenSSLClientConnectionCreator:
    """TLS options that check ``host`` against the certificate(s) in ``ca_file`` (PEM).

    For a server with a self-signed certificate: give its ``cert.pem``.
    """
    with open(ca_file, "rb") as pem:
        return ssl.optionsForClientTLS(host, trustRoot=ssl.Certificate.loadPEM(pem.read()))


class ChatApp:
    """Shows the dialog (unless told to connect at once), connects, opens the window, quits.

    ``on_exit`` is called once everything is closed (the entry point stops the reactor there).
    """

    def __init__(self, reactor: IReactorTime, initial: ConnectSettings, store: QSettings, *,
                 connect_now: bool = False, on_exit: Callable[[], object] | None = None,
                 link_options: dict[str, Any] | None = None) -> None:
        self.reactor = reactor
        self.store = store
        self.initial = initial
        self.connect_now = connect_now
        self.on_exit = on_exit
        self.link_options = link_options or {}
        self.dialog = ConnectDialog(initial)
        self.dialog.join_requested.connect(self.connect)
        self.dialog.rejected.connect(self.quit)
        self.session: Session | None = None
        self.link: SessionLink | None = None
        self.window: MainWindow | None = None
        self.exited = False

    def start(self) -> None:
        problem = self.initial.problem() if self.connect_now else None
        if self.connect_now and problem is None:
            self.connect(self.initial)
        else:
            self.dialog.show()
            if problem:
                self.dialog.show_error(problem)

    def connect(self, settings: ConnectSettings) -> defer.Deferred[None]:
        """Connect with ``settings``; on success the window opens, on failure the dialog says why."""
        options = dict(self.link_options)
        if settings.tls and settings.tls_ca:
            try:
                options["tls_options"] = trusting(settings.host, settings.tls_ca)
            except (OSError, ValueError, SSL.Error) as error:
                self.dialog.show_error(
                    f"Cannot use the certificate file {settings.tls_ca}: {error}")
                self.dialog.show()
                return defer.succeed(None)
        self.session = Session(settings.nick)
        self.link = SessionLink(
            self.reactor, self.session, settings.host, settings.port, tls=settings.tls,
            password=settings.password or None,
            channels=[settings.channel] if settings.channel else [], **options)
        d = self.link.start()
        d.addCallbacks(self._connected, self._failed, callbackArgs=(settings,))
        return d

    def _connected(self, _: None, settings: ConnectSettings) -> None:
        save_settings(self.store, settings)
        self.dialog.hide()
        assert self.session is not None and self.link is not None
        self.window = MainWindow(self.session, self.link)
        self.window.closing_callback = self.quit
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def _failed(self, failure: Failure) -> None:
        if failure.check(LinkError):
            error = failure.value
            assert isinstance(error, LinkError)
            if str(error) == "Cancelled":
                return
            self.dialog.show_error(str(error), error.suggested_nick)
        else:
            log.failure("connecting failed", failure)
            self.dialog.show_error(f"Could not connect: {failure.getErrorMessage()}")
        self.dialog.show()
        self.dialog.raise_()

    def quit(self) -> defer.Deferred[None]:
        """Send QUIT, close the link (waiting at most a few seconds), then exit."""
        if self.exited:
            return defer.succeed(None)
        self.exited = True
        self.dialog.hide()
        if self.window is not None:
            self.window.closing_callback = None
            self.window.close()
        stopping = self.link.stop("Leaving") if self.link is not None else defer.succeed(None)
        stopping.addTimeout(QUIT_GRACE_SECONDS, self.reactor)
        stopping.addErrback(lambda failure: log.warn("quit: {f}", f=failure.getErrorMessage()))
        stopping.addBoth(lambda _: self.on_exit() if self.on_exit is not None else None)
        return stopping

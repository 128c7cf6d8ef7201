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
from qtclient.preferences import Preferences, load_preferences, save_preferences
from qtclient.servers import ServerEntry, ServerListDialog, load_servers
from qtclient.theme import apply_theme
from qtclient.window import MainWindow
from twistedchat.client.filters import FilterError
from twistedchat.client.link import LinkError, SessionLink
from twistedchat.client.logs import ConversationLogger
from twistedchat.client.session import Event, IgnoreListChanged, Session

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
        self.logger: ConversationLogger | None = None
        self.preferences = load_preferences(store)
        apply_theme(self.preferences.theme)
        #: servers connected besides the first: (link, logger)
        self.others: list[tuple[SessionLink, ConversationLogger]] = []
        self.server_list: ServerListDialog | None = None
        self._first_channels: list[str] | None = None
        self.exited = False

    def start(self) -> None:
        automatic = [entry for entry in load_servers(self.store) if entry.auto_connect]
        if not self.connect_now and automatic and automatic[0].problem() is None:
            self.initial, self.connect_now = automatic[0].settings(), True
            self._first_channels = automatic[0].channels
            self.dialog.set_values(self.initial)  # shown filled in if that server is down
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
        self.session = self._new_session(settings.nick)
        if self.logger is not None:
            self.logger.close()
        self.logger = ConversationLogger(self.session, settings.host)
        self.link = SessionLink(
            self.reactor, self.session, settings.host, settings.port, tls=settings.tls,
            password=settings.password or None,
            channels=self._first_channels or ([settings.channel] if settings.channel else []),
            account=settings.account, account_password=settings.account_password,
            create_account=settings.create_account, **options)
        d = self.link.start()
        d.addCallbacks(self._connected, self._failed, callbackArgs=(settings,))
        return d

    def _connected(self, _: None, settings: ConnectSettings) -> None:
        save_settings(self.store, settings)
        self.dialog.hide()
        assert self.session is not None and self.link is not None
        self.window = MainWindow(self.session, self.link, preferences=self.preferences,
                                 on_preferences=self.remember_preferences, logger=self.logger)
        self.window.closing_callback = self.quit
        self.window.open_servers = self.show_servers
        first = (settings.host, settings.port, settings.nick)
        for entry in load_servers(self.store):
            if entry.auto_connect and (entry.host, entry.port, entry.nick) != first:
                self.connect_server(entry)
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def show_servers(self) -> ServerListDialog:
        """The server list (add, edit, remove, connect)."""
        if self.server_list is None:
            self.server_list = ServerListDialog(self.store, self.connect_server, self.window)
        self.server_list.show()
        self.server_list.raise_()
        return self.server_list

    def connect_server(self, entry: ServerEntry) -> SessionLink | None:
        """Connect to another server in the same window (its conversations grouped together)."""
        if self.window is None:
            return None
        options = dict(self.link_options)
        session = self._new_session(entry.nick)
        if entry.tls and entry.tls_ca:
            try:
                options["tls_options"] = trusting(entry.host, entry.tls_ca)
            except (OSError, ValueError, SSL.Error) as error:
                self.window.session.error(
                    f"Cannot use the certificate file {entry.tls_ca}: {error}")
                return None
        if entry.account and not entry.account_password:
            self.window.session.error(
                f"No password for the account {entry.account} on {entry.name}: type it in the"
                " server's settings (Chat → Servers → Edit)")
            return None
        logger = ConversationLogger(session, entry.host)
        link = SessionLink(self.reactor, session, entry.host, entry.port, tls=entry.tls,
                           channels=entry.channels, account=entry.account,
                           account_password=entry.account_password, **options)
        self.window.add_network(session, link, logger)
        self.others.append((link, logger))
        link.start().addErrback(lambda failure: session.error(failure.getErrorMessage()))
        return link

    def _new_session(self, nick: str) -> Session:
        """A session with the remembered highlight words and ignore list."""
        session = Session(nick)
        session.set_highlights(self.preferences.highlights)
        for mask in str(self.store.value("ignores", "")).split():
            try:
                session.filters.ignore(mask)
            except FilterError:
                break  # a hand-edited settings file with too many masks: keep what fits
        session.subscribe(self._remember_ignores)
        return session

    def _remember_ignores(self, event: Event) -> None:
        """The ignore list is one for all servers, remembered across restarts."""
        if isinstance(event, IgnoreListChanged):
            self.store.setValue("ignores", " ".join(event.masks))
            self.store.sync()
            for link in [self.link, *(other for other, _ in self.others)]:
                if link is not None and link.session.filters.ignores != event.masks:
                    link.session.filters.ignores = list(event.masks)

    def remember_preferences(self, preferences: Preferences) -> None:
        """New preferences: saved, and the theme applied application-wide."""
        theme_changed = preferences.theme != self.preferences.theme
        self.preferences = preferences
        save_preferences(self.store, preferences)
        if theme_changed:
            apply_theme(preferences.theme)

    def _failed(self, failure: Failure) -> None:
        self._first_channels = None  # the dialog's channel counts from now on
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
        for link, logger in self.others:
            link.stop("Leaving")
            logger.close()
        stopping = self.link.stop("Leaving") if self.link is not None else defer.succeed(None)
        if self.logger is not None:
            stopping.addBoth(self._close_logs)
        stopping.addTimeout(QUIT_GRACE_SECONDS, self.reactor)
        stopping.addErrback(lambda failure: log.warn("quit: {f}", f=failure.getErrorMessage()))
        stopping.addBoth(lambda _: self.on_exit() if self.on_exit is not None else None)
        return stopping

    def _close_logs(self, result: Any) -> Any:
        if self.logger is not None:
            self.logger.close()
        return result

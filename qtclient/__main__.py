"""``twistedchat-client`` / ``python -m qtclient``: the desktop chat window.

With ``--nick`` it connects at once; otherwise the connect dialog opens, filled in from the
options and from what was used last time.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported in main(): Qt and the reactor are set up there first
    from qtclient.dialog import ConnectSettings

DESCRIPTION = "The twistedchat desktop client."


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="twistedchat-client", description=DESCRIPTION)
    parser.add_argument("--host", help="server name or address (default: last used, or localhost)")
    parser.add_argument("--port", type=port_number, help="server port (default: 1234)")
    parser.add_argument("--nick", help="your nickname; given, the client connects at once")
    parser.add_argument("--password", help="the server password, if it has one")
    parser.add_argument("--channel", help="channel to join (default: #lobby; '' for none)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--tls-ca", metavar="PEM",
                        help="trust this certificate for TLS (e.g. a server's self-signed "
                             "cert.pem); implies --tls")
    return parser.parse_args(argv)


def apply_options(initial: ConnectSettings, args: argparse.Namespace) -> ConnectSettings:
    """The remembered ``ConnectSettings`` with what the command line gave laid over them."""
    for field in ("host", "port", "nick", "password", "channel"):
        value = getattr(args, field)
        if value is not None:
            setattr(initial, field, value)
    if args.tls or args.tls_ca:
        initial.tls = True
    if args.tls_ca:
        initial.tls_ca = os.path.abspath(args.tls_ca)
    return initial


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("QT_API", "pyqt6")
    try:
        import qreactor  # noqa: F401  (checked here: a server-only install has no Qt)
        from PyQt6.QtCore import QSettings
    except ImportError as error:
        raise SystemExit(f"twistedchat-client: the desktop client is not installed ({error}); "
                         "install it with: pip install 'twistedchat[client]'") from None
    from PyQt6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setOrganizationName("twistedchat")
    app.setApplicationName("twistedchat-client")
    app.setQuitOnLastWindowClosed(False)  # closing sends QUIT first; the app then stops itself

    import qreactor

    qreactor.install()
    from twisted.internet import reactor

    from qtclient.app import ChatApp
    from qtclient.dialog import load_settings

    store = QSettings()
    initial = apply_options(load_settings(store), args)
    chat = ChatApp(reactor, initial, store, connect_now=args.nick is not None,
                   on_exit=reactor.stop)
    reactor.callWhenRunning(chat.start)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

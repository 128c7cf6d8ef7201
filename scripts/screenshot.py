"""Take docs/screenshot.png: the real client window with a short conversation.

Run under a display, e.g. ``xvfb-run -a .venv/bin/python scripts/screenshot.py docs/screenshot.png``
(``make screenshot`` takes the light and the dark theme). It starts the daemon in this process on a
free loopback port, opens the window as ``alice``, lets three scripted people talk, and saves the
window as a PNG. ``--theme dark`` (or ``light``, ``system``) picks the theme.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_API", "pyqt6")


def main(path: str, theme: str = "light") -> int:
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    import qreactor

    qreactor.install()
    import tempfile

    from twisted.internet import defer, endpoints, reactor, task

    from qtclient.app import ChatApp
    from qtclient.dialog import ConnectSettings
    from qtclient.preferences import Preferences, save_preferences
    from twistedchat.client.link import SessionLink
    from twistedchat.client.session import Session
    from twistedchat.server.config import ServerConfig
    from twistedchat.server.net import ChatFactory

    result = {"code": 1}
    settings_dir = tempfile.TemporaryDirectory(prefix="twistedchat-screenshot-")
    os.environ["XDG_DATA_HOME"] = settings_dir.name  # conversation logs stay in the temp dir

    def pause(seconds: float = 0.15) -> defer.Deferred[None]:
        return task.deferLater(reactor, seconds, lambda: None)

    async def scene() -> None:
        factory = ChatFactory(ServerConfig(name="chat.example.org", network="Example"))
        listening = await endpoints.TCP4ServerEndpoint(
            reactor, 0, interface="127.0.0.1").listen(factory)
        port = listening.getHost().port
        # A throwaway settings file: QSettings replaces its file on save (never point it at
        # /dev/null, which it would turn into a regular file).
        store = QSettings(os.path.join(settings_dir.name, "client.ini"),
                          QSettings.Format.IniFormat)
        save_preferences(store, Preferences(theme=theme))
        alice = ChatApp(reactor, ConnectSettings("127.0.0.1", port, "alice"), store,
                        connect_now=True)
        await alice.connect(alice.initial)
        people: dict[str, SessionLink] = {}
        for nick in ("bob", "carol", "dave"):
            link = SessionLink(reactor, Session(nick), "127.0.0.1", port, channels=["#lobby"])
            await link.start()
            people[nick] = link
            await pause()

        def say(nick: str, text: str) -> None:
            link = people[nick]
            link.send_input(text, link.session.find("#lobby"))

        window = alice.window
        assert window is not None
        window.resize(980, 560)
        window.link.send_input("/topic Welcome to #lobby: be kind, share links",
                               alice.session.find("#lobby"))
        await pause()
        for nick, text in [
            ("bob", "hi everyone!"),
            ("carol", "morning! has anyone tried the new release yet?"),
            ("alice", "yes, the notes are at https://twisted.org/news"),
            ("bob", "/me waves at carol"),
            ("carol", "alice: thanks, that helped"),
            ("dave", "\x02release\x02 is \x0303green\x03 on all \x1dfour\x1d builds"),
            ("bob", "/nick bobby"),
            ("bobby", "/msg alice lunch at noon?"),
            ("dave", "/quit see you tomorrow"),
        ]:
            if nick == "alice":
                window.link.send_input(text, alice.session.find("#lobby"))
            else:
                say(nick, text)
                if text.startswith("/nick"):
                    people["bobby"] = people.pop("bob")
            await pause()
        window.show_conversation("#lobby")
        window.input.setText("sounds good, see you th")
        await pause(0.5)
        window.flush()
        app.processEvents()
        if not window.grab().save(path):
            raise SystemExit(f"could not write {path}")
        print(f"saved {path}")
        for link in people.values():
            await link.stop("bye")
        await alice.quit()
        await listening.stopListening()
        result["code"] = 0

    def run() -> None:
        d = defer.ensureDeferred(scene())
        d.addTimeout(60, reactor)
        d.addErrback(lambda failure: print(failure.getTraceback(), file=sys.stderr))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
    settings_dir.cleanup()
    return result["code"]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Save a screenshot of the client window.")
    parser.add_argument("output", help="the PNG to write")
    parser.add_argument("--theme", choices=("light", "dark", "system"), default="light")
    options = parser.parse_args()
    sys.exit(main(options.output, options.theme))

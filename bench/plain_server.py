"""Reference server: the plainest Twisted fan-out that the load generator can drive.

No real IRC logic: it answers NICK/USER with 001, JOIN with the joiner's own JOIN echo and 366,
PING with PONG, and relays every PRIVMSG to every other registered client. It shows what Twisted
itself costs. Run: ``python -m bench.plain_server PORT``.
"""

from __future__ import annotations

import sys

from twisted.internet import protocol, reactor
from twisted.protocols.basic import LineReceiver


class Relay(LineReceiver):
    """One client: minimal registration, then relay PRIVMSG to all the others."""

    delimiter = b"\n"
    nick = b"*"

    def lineReceived(self, line: bytes) -> None:
        command, _, rest = line.rstrip(b"\r").partition(b" ")
        command = command.upper()
        if command == b"PRIVMSG":
            out = b":" + self.nick + b" PRIVMSG " + rest + b"\r\n"
            for client in self.factory.clients:
                if client is not self:
                    client.transport.write(out)
        elif command == b"NICK":
            self.nick = rest.lstrip(b":")
        elif command == b"USER":
            self.factory.clients.add(self)
            self.transport.write(b":plain 001 " + self.nick + b" :Welcome\r\n")
        elif command == b"JOIN":
            channel = rest.lstrip(b":")
            self.transport.write(
                b":" + self.nick + b" JOIN " + channel + b"\r\n"
                b":plain 366 " + self.nick + b" " + channel + b" :End of NAMES\r\n"
            )
        elif command == b"PING":
            self.transport.write(b":plain PONG plain " + rest + b"\r\n")

    def connectionLost(self, reason: object = None) -> None:
        self.factory.clients.discard(self)


def main(argv: list[str]) -> None:
    factory = protocol.ServerFactory.forProtocol(Relay)
    factory.clients = set()
    reactor.listenTCP(int(argv[1]), factory, backlog=1024, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)

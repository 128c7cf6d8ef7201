"""SessionClient over a StringTransport and a task.Clock: incoming bursts are taken in a chunk per
event-loop turn, in order; a CTCP flood gets few answers; WHO after a join stays quiet."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from twistedchat.client.link import CTCP_BURST, READ_BACKLOG_LIMIT, READ_CHUNK, SessionLink
from twistedchat.client.session import Session


def signed_on(nick: str = "me") -> tuple[SessionLink, StringTransport, Clock]:
    clock = Clock()
    session = Session(nick)
    link = SessionLink(clock, session, "chat.example.org", 6667)
    client = link.factory.buildProtocol(None)
    transport = StringTransport()
    client.makeConnection(transport)
    client.dataReceived(b":srv CAP * LS :echo-message away-notify\r\n:srv CAP me ACK "
                        b":echo-message away-notify\r\n:srv 001 me :Welcome\r\n")
    transport.clear()
    return link, transport, clock


def test_a_burst_is_taken_in_one_chunk_a_turn_in_order_and_reading_pauses_when_far_behind():
    link, transport, clock = signed_on()
    lines = b"".join(b":bob!b@h PRIVMSG #c :line %d\r\n" % n for n in range(60_000))
    assert len(lines) > READ_BACKLOG_LIMIT
    link.client.dataReceived(lines)
    channel = link.session.find("#c")
    assert 0 < len(channel.lines) <= READ_CHUNK // 20
    assert transport.producerState == "paused"
    assert len(clock.getDelayedCalls()) == 1  # the rest waits for the next turn
    first_turn = len(channel.lines)
    clock.getDelayedCalls()[0].cancel()
    link.client._drain()  # one more turn: one more chunk
    assert first_turn < len(channel.lines) <= 2 * first_turn + 1
    clock.advance(0)  # task.Clock runs the turns scheduled now until none is left
    assert not link.client._backlog and transport.producerState == "producing"
    texts = [line.text for line in channel.lines]
    assert texts[-1] == "line 59999" and texts == sorted(texts, key=lambda t: int(t.split()[1]))


def test_lines_waiting_when_the_connection_ends_are_still_shown():
    link, transport, clock = signed_on()
    link.client.dataReceived(b"".join(b":bob!b@h PRIVMSG #c :n %d\r\n" % n for n in range(2000)))
    link.client.connectionLost()
    assert link.session.find("#c").lines[-1].text == "n 1999"


def test_a_ctcp_flood_gets_a_few_answers_but_every_request_is_shown():
    link, transport, clock = signed_on()
    for _ in range(10):
        link.client.dataReceived(b":bob!b@h PRIVMSG me :\x01VERSION\x01\r\n")
    answers = [line for line in transport.value().split(b"\r\n") if b"VERSION" in line]
    assert len(answers) == CTCP_BURST
    shown = [line.text for line in link.session.server.lines if "CTCP VERSION" in line.text]
    assert len(shown) == 10 and shown[0].endswith("(answered)")
    link.client.dataReceived(b":bob!b@h PRIVMSG me :\x01DCC SEND x 1 2 3\x01\r\n")
    assert b"DCC" not in transport.value().split(b"VERSION")[-1]


def test_who_after_our_join_marks_away_members_quietly():
    link, transport, clock = signed_on()
    link.client.dataReceived(b":me!m@h JOIN #c\r\n:srv 353 me = #c :me bob\r\n"
                             b":srv 366 me #c :End\r\n")
    assert b"WHO #c" in transport.value()
    before = len(link.session.find("#c").lines)
    link.client.dataReceived(b":srv 352 me #c b h srv bob G :0 Bob\r\n"
                             b":srv 315 me #c :End of WHO\r\n")
    channel = link.session.find("#c")
    assert channel.members["bob"].away and len(channel.lines) == before
    assert not any("WHO" in line.text for line in link.session.server.lines)




class RefusingEndpoint:
    """A client endpoint every connection attempt of which is refused; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def connect(self, factory):
        from twisted.internet import defer, error

        self.attempts += 1
        return defer.fail(error.ConnectionRefusedError())


def test_a_refused_first_connection_stops_retrying():
    """The ClientService is stopped for good, not left retrying in the background."""
    from twistedchat.client.link import LinkError

    clock = Clock()
    link = SessionLink(clock, Session("me"), "127.0.0.1", 1, initial_delay=1.0)
    endpoint = RefusingEndpoint()
    link.endpoint = lambda: endpoint
    failures: list = []
    link.start().addErrback(failures.append)
    clock.advance(3.0)  # failing at once, it is reported on the next attempt (1 s + jitter)
    assert failures and failures[0].check(LinkError)
    assert "connection refused" in str(failures[0].value)
    attempts = endpoint.attempts
    clock.advance(600)
    assert endpoint.attempts == attempts and link.service is None

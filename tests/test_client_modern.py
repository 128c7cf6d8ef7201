"""The client's modern IRC, without sockets: SASL logins and account creation, chathistory,
read markers, MONITOR presence, metadata and bot mode, from scripted server lines."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from twistedchat.client.history import HISTORY_MARKER, parse_marker, utc_stamp
from twistedchat.client.link import LinkError, SessionLink
from twistedchat.client.people import People, avatar_url, clean_metadata
from twistedchat.client.sasl import SaslError, SaslLogin, choose_mechanism
from twistedchat.client.session import Kind, Line, PersonChanged, Session
from twistedchat.server.sasl import SaslExchange, Send, Succeeded
from twistedchat.storage.passwords import make_verifiers

T0 = datetime(2026, 11, 30, 10, 0, 0)
PASSWORD = "correct horse battery"


def stamp(when: datetime) -> str:
    return utc_stamp(when)


# -- SASL ----------------------------------------------------------------------------------------


def test_the_best_mechanism_offered_is_chosen():
    assert choose_mechanism("PLAIN,SCRAM-SHA-256") == "SCRAM-SHA-256"
    assert choose_mechanism("PLAIN,EXTERNAL") == "PLAIN"
    assert choose_mechanism("") == "PLAIN"
    assert choose_mechanism("EXTERNAL") is None


def test_plain_sends_the_account_and_password_once():
    login = SaslLogin("alice", "s3cret", "PLAIN")
    assert login.start() == "AUTHENTICATE PLAIN"
    (line,) = login.receive("+")
    assert base64.b64decode(line.split()[1]) == b"\0alice\0s3cret"
    with pytest.raises(SaslError):
        login.receive("+")


def test_scram_logs_in_against_the_daemons_own_exchange():
    credentials = make_verifiers(PASSWORD)[1]
    server = SaslExchange(lambda name: credentials if name == "alice" else None)
    client = SaslLogin("alice", PASSWORD, "SCRAM-SHA-256")
    steps = server.authenticate(client.start().split()[1])
    outcome = None
    for _ in range(6):
        params = [step.param for step in steps if isinstance(step, Send)]
        if any(isinstance(step, Succeeded) for step in steps):
            outcome = [step for step in steps if isinstance(step, Succeeded)][0]
            break
        answers = []
        for param in params:
            answers += client.receive(param)
        steps = []
        for answer in answers:
            steps = server.authenticate(answer.split()[1])
    assert outcome is not None and outcome.account == "alice"


def test_scram_refuses_a_server_that_cannot_prove_it_knows_the_password():
    credentials = make_verifiers("another password")[1]
    server = SaslExchange(lambda name: credentials)
    client = SaslLogin("alice", PASSWORD, "SCRAM-SHA-256")
    server.authenticate("SCRAM-SHA-256")
    (first,) = client.receive("+")
    (server_first,) = [s.param for s in server.authenticate(first.split()[1]) if isinstance(s, Send)]
    client.receive(server_first)  # our proof (wrong for this server's verifier)
    forged = base64.b64encode(b"v=" + base64.b64encode(b"x" * 32)).decode()
    with pytest.raises(SaslError):
        client.receive(forged)


class NeverConnects:
    """An endpoint whose connection attempt never ends (the test plays the connection itself)."""

    def connect(self, factory):
        return defer.Deferred()


def connecting(nick="me", **link_options):
    clock = Clock()
    session = Session(nick)
    link = SessionLink(clock, session, "chat.example.org", 6667, **link_options)
    link.endpoint = NeverConnects
    first = link.start()
    client = link.factory.buildProtocol(None)
    transport = StringTransport()
    client.makeConnection(transport)
    return link, client, transport, first


def sent(transport: StringTransport) -> list[str]:
    lines = transport.value().decode().split("\r\n")
    transport.clear()
    return [line for line in lines if line]


def test_the_client_logs_in_with_scram_before_ending_negotiation():
    link, client, transport, first = connecting(account="alice", account_password=PASSWORD)
    sent(transport)
    client.dataReceived(b":srv CAP * LS :sasl=PLAIN,SCRAM-SHA-256 echo-message\r\n")
    assert any(line.startswith("CAP REQ") and "sasl" in line for line in sent(transport))
    client.dataReceived(b":srv CAP me ACK :echo-message sasl\r\n")
    assert sent(transport) == ["AUTHENTICATE SCRAM-SHA-256"]
    client.dataReceived(b"AUTHENTICATE +\r\n")
    (client_first,) = sent(transport)
    assert base64.b64decode(client_first.split()[1]).startswith(b"n,,n=alice,r=")
    assert "CAP END" not in transport.value().decode()


def test_a_refused_login_fails_the_first_connection_with_the_reason():
    link, client, transport, first = connecting(account="alice", account_password="wrong")
    failures = []
    first.addErrback(failures.append)
    client.dataReceived(b":srv CAP * LS :sasl=PLAIN\r\n:srv CAP me ACK :sasl\r\n"
                        b"AUTHENTICATE +\r\n")
    client.dataReceived(b":srv 904 * :SASL authentication failed\r\n")
    assert failures and failures[0].check(LinkError)
    assert "refused the account login" in str(failures[0].value)
    assert transport.disconnecting


def test_a_server_without_sasl_is_a_clear_error_not_a_silent_anonymous_login():
    link, client, transport, first = connecting(account="alice", account_password="pw")
    failures = []
    first.addErrback(failures.append)
    client.dataReceived(b":srv CAP * LS :echo-message\r\n:srv CAP me ACK :echo-message\r\n")
    assert "does not offer account logins" in str(failures[0].value)
    assert "CAP END" not in transport.value().decode()


def test_a_refused_capability_request_never_skips_the_login():
    link, client, transport, first = connecting(account="alice", account_password="pw")
    failures = []
    first.addErrback(failures.append)
    client.dataReceived(b":srv CAP * LS :sasl echo-message\r\n:srv CAP me NAK :echo-message sasl\r\n")
    assert "does not offer account logins" in str(failures[0].value)
    assert "CAP END" not in transport.value().decode()


def test_a_password_cannot_smuggle_a_line():
    link, client, transport, first = connecting(account="alice", account_password="pw\r\nQUIT",
                                                create_account=True)
    failures = []
    first.addErrback(failures.append)
    client.dataReceived(b":srv CAP * LS :sasl draft/account-registration=before-connect\r\n"
                        b":srv CAP me ACK :sasl draft/account-registration\r\n")
    assert "characters a login cannot use" in str(failures[0].value)
    assert "QUIT" not in transport.value().decode()


def test_creating_an_account_registers_before_connecting_then_later_connections_log_in():
    link, client, transport, first = connecting(account="alice", account_password="pw",
                                                create_account=True)
    client.dataReceived(b":srv CAP * LS :sasl=PLAIN draft/account-registration=before-connect\r\n")
    assert any("draft/account-registration" in line for line in sent(transport))
    client.dataReceived(b":srv CAP me ACK :sasl draft/account-registration\r\n")
    assert sent(transport) == ["REGISTER alice * :pw"]
    client.dataReceived(b":srv REGISTER SUCCESS alice :Account created\r\n")
    assert sent(transport) == ["CAP END"]
    client.dataReceived(b":srv 001 me :Welcome\r\n")
    assert client.account == "alice" and link.factory.register_account is False


def test_an_account_that_cannot_be_created_says_why():
    link, client, transport, first = connecting(account="alice", account_password="pw",
                                                create_account=True)
    failures = []
    first.addErrback(failures.append)
    client.dataReceived(b":srv CAP * LS :sasl draft/account-registration=before-connect\r\n"
                        b":srv CAP me ACK :sasl draft/account-registration\r\n")
    client.dataReceived(b":srv FAIL REGISTER ACCOUNT_EXISTS alice :Account already exists\r\n")
    assert "not created: Account already exists" in str(failures[0].value)


# -- chathistory -----------------------------------------------------------------------------------

HISTORY_CAPS = b"batch draft/chathistory draft/read-marker draft/metadata-2 extended-monitor " \
    b"message-tags server-time echo-message away-notify"


def signed_on(nick="me", isupport=b"MONITOR=100"):
    link, client, transport, first = connecting(nick)
    client.dataReceived(b":srv CAP * LS :" + HISTORY_CAPS + b"\r\n:srv CAP me ACK :" +
                        HISTORY_CAPS + b"\r\n:srv 001 me :Welcome\r\n:srv 005 me " + isupport +
                        b" :are supported\r\n")
    sent(transport)
    return link, client, transport


def history_batch(target: str, lines: list[tuple[str, str, str, datetime]], ref="h1") -> bytes:
    out = [f":srv BATCH +{ref} chathistory {target}"]
    for msgid, nick, text, when in lines:
        out.append(f"@batch={ref};msgid={msgid};time={stamp(when)} :{nick}!u@h PRIVMSG "
                   f"{target} :{text}")
    out.append(f":srv BATCH -{ref}")
    return ("\r\n".join(out) + "\r\n").encode()


def test_joining_fetches_the_latest_history_shown_above_the_marker_without_duplicates():
    link, client, transport = signed_on()
    session = link.session
    channel = session.open("#c")
    logged = Line(T0, Kind.MESSAGE, "from the logs", "bob")
    session.restore(channel, [logged])
    client.dataReceived(b":me!u@h JOIN #c\r\n")
    assert "CHATHISTORY LATEST #c * 50" in sent(transport)
    client.dataReceived(b"@msgid=live1 :bob!u@h PRIVMSG #c :live\r\n")
    client.dataReceived(history_batch("#c", [
        ("m0", "bob", "from the logs", T0),  # the same line as the logged one
        ("m1", "ann", "older", T0 + timedelta(seconds=5)),
        ("live1", "bob", "live", T0 + timedelta(seconds=6)),
    ]))
    texts = [line.text for line in channel.lines if line.kind is not Kind.JOIN]
    assert texts.count("from the logs") == 1 and texts.count("live") == 1
    assert texts.index("older") < texts.index(HISTORY_MARKER) < texts.index("live")
    # a batch's lines are history, not new messages
    assert channel.unread == 0


def test_scrolling_to_the_top_fetches_older_lines_until_there_are_none():
    link, client, transport = signed_on()
    client.dataReceived(b":me!u@h JOIN #c\r\n")
    client.dataReceived(history_batch("#c", [("m5", "bob", "five", T0)]))
    channel = link.session.find("#c")
    sent(transport)
    link.fetch_older(channel)
    link.fetch_older(channel)  # one request at a time
    assert sent(transport) == ["CHATHISTORY BEFORE #c msgid=m5 50"]
    client.dataReceived(history_batch("#c", [("m4", "ann", "four", T0 - timedelta(minutes=1))],
                                      ref="h2"))
    assert [line.text for line in channel.lines][:2] == ["four", "five"]
    link.fetch_older(channel)
    assert sent(transport) == ["CHATHISTORY BEFORE #c msgid=m4 50"]
    client.dataReceived(b":srv BATCH +h3 chathistory #c\r\n:srv BATCH -h3\r\n")
    assert channel.history_exhausted
    link.fetch_older(channel)
    assert sent(transport) == []


def test_a_request_lost_with_the_connection_is_asked_again_after_reconnecting():
    link, client, transport = signed_on()
    client.dataReceived(b":me!u@h JOIN #c\r\n")
    assert "CHATHISTORY LATEST #c * 50" in sent(transport)
    client.connectionLost()
    again = link.factory.buildProtocol(None)
    transport2 = StringTransport()
    again.makeConnection(transport2)
    again.dataReceived(b":srv CAP * LS :" + HISTORY_CAPS + b"\r\n:srv CAP me ACK :" +
                       HISTORY_CAPS + b"\r\n:srv 001 me :Welcome\r\n:me!u@h JOIN #c\r\n")
    assert "CHATHISTORY LATEST #c * 50" in sent(transport2)


def test_a_history_batch_is_bounded():
    link, client, transport = signed_on()
    client.dataReceived(b":me!u@h JOIN #c\r\n")
    many = [(f"m{n}", "bob", f"n{n}", T0 + timedelta(seconds=n)) for n in range(1500)]
    client.dataReceived(history_batch("#c", many))
    link.reactor.advance(0)  # a big batch is read over several turns
    assert len([line for line in link.session.find("#c").lines if line.msgid]) == 1000


# -- read markers ----------------------------------------------------------------------------------


def test_the_marker_from_the_server_clears_what_was_read_elsewhere():
    link, client, transport = signed_on()
    session = link.session
    client.dataReceived(b":me!u@h JOIN #a\r\n:me!u@h JOIN #b\r\n")
    session.activate(session.find("#a"))
    for n in range(3):
        when = T0 + timedelta(minutes=n)
        client.dataReceived(f"@time={stamp(when)} :bob!u@h PRIVMSG #b :n{n}\r\n".encode())
    b = session.find("#b")
    assert b.unread == 3
    client.dataReceived(f":srv MARKREAD #b timestamp={stamp(T0 + timedelta(minutes=1))}\r\n"
                        .encode())
    assert b.unread == 1 and b.first_unread.text == "n2"
    client.dataReceived(f":srv MARKREAD #b timestamp={stamp(T0 + timedelta(minutes=5))}\r\n"
                        .encode())
    assert b.unread == 0 and b.first_unread is None


def test_reading_a_conversation_sends_its_marker_once():
    link, client, transport = signed_on()
    session = link.session
    client.dataReceived(b":me!u@h JOIN #a\r\n:me!u@h JOIN #b\r\n")
    session.activate(session.find("#a"))
    client.dataReceived(f"@time={stamp(T0)} :bob!u@h PRIVMSG #b :hi\r\n".encode())
    sent(transport)
    session.activate(session.find("#b"))
    assert sent(transport) == [f"MARKREAD #b timestamp={stamp(T0)}"]
    session.activate(session.find("#a"))
    session.activate(session.find("#b"))
    assert not [line for line in sent(transport) if line.startswith("MARKREAD #b")]


def test_markers_are_parsed_strictly():
    assert parse_marker("*") is None
    assert parse_marker("timestamp=yesterday") is None
    when = parse_marker(f"timestamp={stamp(T0)}")
    assert when == T0


# -- presence, metadata, bot mode ------------------------------------------------------------------


def test_a_private_conversation_watches_its_partner_with_monitor():
    link, client, transport = signed_on()
    session = link.session
    changes = []
    session.subscribe(lambda e: changes.append(e.nick) if isinstance(e, PersonChanged) else None)
    session.open("bob")
    assert "MONITOR + bob" in sent(transport)
    client.dataReceived(b":srv 730 me :bob!u@h\r\n")
    assert session.people.get("bob").state() == "online"
    client.dataReceived(b":bob!u@h AWAY :lunch\r\n")
    assert session.people.get("bob").state() == "away"
    client.dataReceived(b":srv 731 me :bob\r\n")
    assert session.people.get("bob").state() == "offline" and changes == ["bob"] * 3
    client.dataReceived(b":bob!u@h NICK :robert\r\n")
    assert sent(transport)[-2:] == ["MONITOR - bob", "MONITOR + robert"]
    session.close("robert")
    assert sent(transport) == ["MONITOR - robert"]


def test_reconnecting_watches_every_private_partner_again():
    link, client, transport, first = connecting()
    for nick in ("ann", "bob"):
        link.session.open(nick)
    client.dataReceived(b":srv 001 me :Welcome\r\n:srv 005 me MONITOR=100 :are supported\r\n")
    assert "MONITOR + ann,bob" not in sent(transport)  # ISUPPORT comes after signedOn here
    client2 = link.factory.buildProtocol(None)
    transport2 = StringTransport()
    client2.makeConnection(transport2)
    client2.supported.parse(["MONITOR=100"])
    client2.dataReceived(b":srv 001 me :Welcome\r\n")
    assert "MONITOR + ann,bob" in sent(transport2)


def test_metadata_gives_display_names_avatars_and_colours_only_when_safe():
    link, client, transport = signed_on()
    session = link.session
    client.dataReceived(b":srv METADATA bob display-name * :Robert  Tables\r\n")
    client.dataReceived(b":srv METADATA bob avatar * :file:///etc/passwd\r\n")
    client.dataReceived(b":srv 761 me bob color * :#ff0000\r\n")
    bob = session.people.get("bob")
    assert bob.label() == "Robert Tables (bob)" and bob.avatar == "" and bob.colour == "#ff0000"
    client.dataReceived(b":srv METADATA bob avatar * :https://example.org/bob.png\r\n")
    assert bob.avatar == "https://example.org/bob.png"
    client.dataReceived(b":srv METADATA bob display-name *\r\n")
    assert bob.label() == "bob"


def test_signing_on_subscribes_to_the_shown_metadata_keys():
    link, client, transport, first = connecting()
    client.dataReceived(b":srv CAP * LS :draft/metadata-2\r\n:srv CAP me ACK :draft/metadata-2\r\n")
    sent(transport)
    client.dataReceived(b":srv 001 me :Welcome\r\n")
    assert "METADATA * SUB display-name avatar color" in sent(transport)


def test_bots_are_known_by_their_tag_and_their_who_flag():
    link, client, transport = signed_on()
    client.dataReceived(b"@bot :helper!u@h PRIVMSG #c :beep\r\n")
    assert link.session.people.get("helper").bot
    client.dataReceived(b":me!u@h JOIN #d\r\n")
    client.dataReceived(b":srv 352 me #d u h srv other HB :0 Other\r\n")
    assert link.session.people.get("other").bot


def test_people_and_metadata_are_capped():
    people = People(limit=3)
    for n in range(10):
        people.person(f"n{n}")
    assert len(people) == 3 and people.get("n9") is not None and people.get("n0") is None
    assert clean_metadata("display-name", "x" * 500) == "x" * 64
    assert clean_metadata("color", "red; background: url(x)") == ""
    assert avatar_url("javascript:alert(1)") == "" and avatar_url("http://") == ""

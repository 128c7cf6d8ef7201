"""Accounts, registered channels and history in the real daemon over loopback, on SQLite and on a
real PostgreSQL: register, restart, log in with SASL (PLAIN and SCRAM), find what was kept."""

from __future__ import annotations

import base64

import pytest
import pytest_twisted
from pg_cluster import empty_database
from scramp import ScramClient
from test_storage import postgres_cluster, postgres_url  # noqa: F401  (session fixtures)

from twistedchat.bot.testing import ChatUser, wait_until
from twistedchat.server.config import ServerConfig
from twistedchat.server.service import ChatService

PASSWORD = "correct-horse-battery"


class Daemon:
    """A ``ChatService`` (the daemon as twistd runs it) on 127.0.0.1 with a ``--db``."""

    def __init__(self, db: str, **settings: object) -> None:
        self.db = db
        self.settings = settings
        self.service: ChatService | None = None

    async def start(self) -> None:
        from twisted.internet import reactor

        config = ServerConfig(name="test.server", network="TestNet", db=self.db,
                              ports=["tcp:0:interface=127.0.0.1"], **self.settings)
        self.service = ChatService(config, reactor=reactor)
        self.service.privilegedStartService()
        self.service.startService()
        await wait_until(lambda: self.service.store is not None, "the store to open")

    @property
    def client_endpoint(self) -> str:
        assert self.service is not None
        return f"tcp:127.0.0.1:{self.service.ports[0].getHost().port}"

    async def stop(self) -> None:
        if self.service is not None:
            service, self.service = self.service, None
            await service.stopService()


async def connect(daemon: Daemon, nick: str, caps: str = "", register: bool = True) -> ChatUser:
    """A connection that asked for ``caps`` and (with ``register``) finished registration."""
    from twisted.internet import endpoints, reactor

    user = ChatUser(nick)
    endpoint = endpoints.clientFromString(reactor, daemon.client_endpoint)
    await endpoints.connectProtocol(endpoint, user)
    if caps:
        user.send("CAP LS 302", f"CAP REQ :{caps}")
        await user.expect("CAP", None, "ACK")
    user.send(f"NICK {nick}", f"USER {nick.lower()} 0 * :{nick}")
    if register:
        if caps:
            user.send("CAP END")
        await user.expect("001")
    return user


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def sasl_plain(user: ChatUser, account: str, password: str) -> str:
    """Run AUTHENTICATE PLAIN; the numeric it ends with."""
    user.send("AUTHENTICATE PLAIN")
    await user.expect("AUTHENTICATE", "+")
    user.send("AUTHENTICATE " + b64(f"\0{account}\0{password}".encode()))
    return (await user.next_numeric(("903", "904", "905", "906", "907"))).command


async def sasl_scram(user: ChatUser, account: str, password: str) -> str:
    """Run AUTHENTICATE SCRAM-SHA-256 with scramp's client; the numeric it ends with."""
    client = ScramClient(["SCRAM-SHA-256"], account, password)
    user.send("AUTHENTICATE SCRAM-SHA-256")
    await user.expect("AUTHENTICATE", "+")
    user.send("AUTHENTICATE " + b64(client.get_client_first().encode()))
    server_first = await user.expect("AUTHENTICATE")
    client.set_server_first(base64.b64decode(server_first.params[0]).decode())
    user.send("AUTHENTICATE " + b64(client.get_client_final().encode()))
    answer = await user.expect_any(("AUTHENTICATE", "904"))
    if answer.command == "904":
        return "904"
    client.set_server_final(base64.b64decode(answer.params[0]).decode())
    user.send("AUTHENTICATE +")
    return (await user.next_numeric(("903", "904"))).command


def _install_helpers() -> None:
    """Two small waits the tests need on ``ChatUser``."""

    async def expect_any(self: ChatUser, commands: tuple[str, ...]):  # type: ignore[no-untyped-def]
        return await self._next(lambda m: m.command in commands, f"one of {commands}", 10.0)

    ChatUser.expect_any = expect_any  # type: ignore[attr-defined]
    ChatUser.next_numeric = expect_any  # type: ignore[attr-defined]


_install_helpers()


async def batch_lines(user: ChatUser, kind: str = "chathistory") -> list:
    """The lines of the next batch of ``kind``."""
    start = await user.expect("BATCH", None, kind)
    ref = start.params[0][1:]
    await user.expect("BATCH", f"-{ref}")
    return [m for m in user.messages if m.tags.get("batch") == ref]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'chat.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    empty_database(url)
    return url


@pytest_twisted.ensureDeferred
async def test_register_restart_sasl_and_history(db_url):
    """Everything survives a restart: the account (PLAIN and SCRAM logins), the registered
    channel's topic, modes, key and bans, the founder's op, and the messages via CHATHISTORY."""
    daemon = Daemon(db_url)
    await daemon.start()
    try:
        alice = await connect(daemon, "alice", "sasl", register=False)
        caps = await _cap_ls(daemon)
        assert "sasl=PLAIN,SCRAM-SHA-256" in caps and "draft/chathistory" in caps
        alice.send(f"REGISTER * * :{PASSWORD}")
        await alice.expect("REGISTER", "SUCCESS", "alice")
        await alice.expect("900")
        alice.send("CAP END")
        await alice.expect("001")
        isupport = " ".join(" ".join(m.params) for m in alice.messages if m.command == "005")
        assert "CHATHISTORY=100" in isupport
        alice.send("JOIN #kept")
        await alice.expect("366", None, "#kept")
        alice.send("PRIVMSG ChanServ :REGISTER #kept")
        assert "registered" in await alice.expect_text("alice", "ChanServ")
        alice.send("TOPIC #kept :kept across restarts", "MODE #kept +mk sesame",
                   "MODE #kept +b troll!*@*")
        await alice.expect("MODE", "#kept", "+b")
        alice.send("CS SET #kept DESCRIPTION A kept channel", "CS SET #kept MLOCK +s",
                   "CS SET #kept RESTRICTED ON")
        said = [await alice.expect_text("alice", "ChanServ") for _ in range(3)]
        assert said[2] == "RESTRICTED is now ON on #kept.", said
        alice.say("#kept", "said before the restart")
        alice.say("#kept", "and a second line")
        alice.send("PING flushed")
        await alice.expect("PONG")
    finally:
        await daemon.stop()

    daemon = Daemon(db_url)
    await daemon.start()
    try:
        alice = await connect(daemon, "alice", "sasl server-time message-tags batch", register=False)
        assert await sasl_plain(alice, "alice", PASSWORD) == "903"
        alice.send("CAP END")
        await alice.expect("001")
        alice.send("JOIN #kept")
        await alice.expect("475", None, "#kept")  # the key came back
        alice.send("JOIN #kept sesame")
        topic = await alice.expect("332", None, "#kept")
        assert topic.params[-1] == "kept across restarts"
        await alice.expect("MODE", "#kept", "+o", "alice", source="ChanServ")
        alice.send("MODE #kept")
        modes = await alice.expect("324", None, "#kept")
        assert "m" in modes.params[2] and "k" in modes.params[2] and "s" in modes.params[2]
        alice.send("PRIVMSG ChanServ :INFO #kept")
        assert (await alice.expect_text("alice", "ChanServ")).startswith("#kept: founder alice")
        assert await alice.expect_text("alice", "ChanServ") == "Description: A kept channel"
        assert (await alice.expect_text("alice", "ChanServ")).endswith(
            "mode lock: +s; keep topic: on; restricted: on")
        outsider = await connect(daemon, "outsider")
        outsider.send("JOIN #kept sesame")
        await outsider.expect("474", None, "#kept")
        alice.send("MODE #kept b")
        ban = await alice.expect("367", None, "#kept")
        assert ban.params[2] == "troll!*@*"
        alice.send("CHATHISTORY LATEST #kept * 10")
        lines = await batch_lines(alice)
        assert [m.params[1] for m in lines] == ["said before the restart", "and a second line"]
        assert all("msgid" in m.tags and "time" in m.tags for m in lines)
        scram_user = await connect(daemon, "alice2", "sasl", register=False)
        assert await sasl_scram(scram_user, "alice", PASSWORD) == "903"
        wrong = await connect(daemon, "mallory", "sasl", register=False)
        assert await sasl_scram(wrong, "alice", "not the password") == "904"
    finally:
        await daemon.stop()


async def _cap_ls(daemon: Daemon) -> str:
    from twisted.internet import endpoints, reactor

    probe = ChatUser("probe")
    await endpoints.connectProtocol(endpoints.clientFromString(reactor, daemon.client_endpoint),
                                    probe)
    probe.send("CAP LS 302")
    reply = await probe.expect("CAP", None, "LS")
    probe.transport.loseConnection()
    return reply.params[-1]


@pytest_twisted.ensureDeferred
async def test_private_history_only_for_the_two_accounts(tmp_path):
    """A private line between two accounts is read back by both, by nobody else."""
    daemon = Daemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await daemon.start()
    try:
        people = {}
        for nick in ("ann", "ben", "eve"):
            user = await connect(daemon, nick, "sasl batch message-tags")
            user.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
            assert "registered" in await user.expect_text(nick, "NickServ")
            people[nick] = user
        people["ann"].say("ben", "just between us")
        await people["ben"].expect("PRIVMSG", "ben")
        people["ben"].send("CHATHISTORY LATEST ann * 10")
        assert [m.params[1] for m in await batch_lines(people["ben"])] == ["just between us"]
        people["ann"].send("CHATHISTORY LATEST ben * 10")
        assert [m.params[1] for m in await batch_lines(people["ann"])] == ["just between us"]
        people["eve"].send("CHATHISTORY LATEST ann * 10")
        assert [m.params[1] for m in await batch_lines(people["eve"])] == []
        anonymous = await connect(daemon, "anon", "batch")
        anonymous.send("CHATHISTORY LATEST ann * 10")
        fail = await anonymous.expect("FAIL", "CHATHISTORY", "INVALID_TARGET")
        assert fail.params[-1]
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_secret_channel_history_only_for_members(tmp_path):
    """Anyone may read a public channel's history; a +s channel's only its members."""
    daemon = Daemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await daemon.start()
    try:
        owner = await connect(daemon, "owner", "batch")
        owner.send("JOIN #open", "JOIN #hidden", "MODE #hidden +s")
        await owner.expect("MODE", "#hidden", "+s")
        owner.say("#open", "public words")
        owner.say("#hidden", "secret words")
        outsider = await connect(daemon, "outsider", "batch")
        owner.send("PING sync")
        await owner.expect("PONG")
        outsider.send("CHATHISTORY LATEST #open * 5")
        assert [m.params[1] for m in await batch_lines(outsider)] == ["public words"]
        outsider.send("CHATHISTORY LATEST #hidden * 5")
        await outsider.expect("FAIL", "CHATHISTORY", "INVALID_TARGET")
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_brute_force_braked_per_account(tmp_path):
    """After five wrong passwords the account is braked, even for the right one."""
    daemon = Daemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await daemon.start()
    try:
        owner = await connect(daemon, "victim", "sasl")
        owner.send(f"REGISTER * * :{PASSWORD}")
        await owner.expect("REGISTER", "SUCCESS")
        for attempt in range(5):
            attacker = await connect(daemon, f"att{attempt}", "sasl", register=False)
            assert await sasl_plain(attacker, "victim", f"guess{attempt}xx") == "904"
        late = await connect(daemon, "late", "sasl", register=False)
        assert await sasl_plain(late, "victim", PASSWORD) == "904"
        assert "Too many failed logins" in late.messages[-1].params[-1]
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_hostile_costs(tmp_path):
    """CHATHISTORY is capped at 100 lines and refuses bad input; a flood of AUTHENTICATE chunks
    ends at the payload limit (905); REGISTER attempts are bounded per connection."""
    daemon = Daemon(f"sqlite:{tmp_path / 'chat.sqlite3'}", no_flood_control=True)
    await daemon.start()
    try:
        talker = await connect(daemon, "talker", "batch")
        talker.send("JOIN #busy", *[f"PRIVMSG #busy :line {n}" for n in range(150)])
        talker.send("CHATHISTORY LATEST #busy * 100000")
        assert len(await batch_lines(talker)) == 100
        talker.send("CHATHISTORY LATEST #busy * nope")
        await talker.expect("FAIL", "CHATHISTORY", "INVALID_PARAMS")
        talker.send("CHATHISTORY SIDEWAYS #busy * 5")
        await talker.expect("FAIL", "CHATHISTORY", "UNKNOWN_COMMAND")
        flooder = await connect(daemon, "flooder", "sasl", register=False)
        flooder.send("AUTHENTICATE PLAIN")
        await flooder.expect("AUTHENTICATE", "+")
        flooder.send(*["AUTHENTICATE " + "A" * 400] * 50)
        await flooder.expect("905")
        spammer = await connect(daemon, "spammer", "", register=False)
        spammer.send(*["REGISTER * * :short"] * 25)
        spammer.send("PING done")
        await spammer.expect("PONG")
        codes = [m.params[1] for m in spammer.messages if m.command == "FAIL"]
        assert codes.count("WEAK_PASSWORD") == 20
        assert codes.count("TEMPORARILY_UNAVAILABLE") == 5
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_twistd_keeps_everything_in_the_default_database_across_sigterm(tmp_path):
    """``twistd -n chat`` with no ``--db`` keeps ``twistedchat.sqlite3`` in its working directory;
    after SIGTERM (exit 0) a new daemon there has the account and the history."""
    from helpers import DaemonProcess

    first = DaemonProcess(tmp_path)
    try:
        await first.wait_listening()
        writer = await connect(first, "writer", "sasl")
        writer.send(f"REGISTER * * {PASSWORD}")
        await writer.expect("REGISTER", "SUCCESS")
        writer.send("JOIN #log", "PRIVMSG ChanServ :REGISTER #log",
                    *[f"PRIVMSG #log :line {n}" for n in range(20)], "PING last")
        await writer.expect("PONG")
        assert await first.terminate() == 0
    finally:
        first.stop()
    assert (tmp_path / "twistedchat.sqlite3").exists()
    second = DaemonProcess(tmp_path)
    try:
        await second.wait_listening()
        reader = await connect(second, "writer", "sasl batch", register=False)
        assert await sasl_plain(reader, "writer", PASSWORD) == "903"
        reader.send("CAP END")
        await reader.expect("001")
        reader.send("CHATHISTORY LATEST #log * 50")
        assert [m.params[1] for m in await batch_lines(reader)] == [f"line {n}" for n in range(20)]
    finally:
        await second.terminate()


@pytest_twisted.ensureDeferred
async def test_lines_after_a_login_wait_for_it_in_order(tmp_path):
    """CAP END sent right behind the SASL payload runs only once the password is checked: the
    client is logged in (903) before the welcome (001), and its next lines follow in order."""
    daemon = Daemon(f"sqlite:{tmp_path / 'chat.sqlite3'}")
    await daemon.start()
    try:
        maker = await connect(daemon, "quick")
        maker.send(f"REGISTER * * {PASSWORD}", "QUIT")
        await wait_until(lambda: maker.closed, "the account's creator to leave")
        user = await connect(daemon, "quick", "sasl", register=False)
        user.send("AUTHENTICATE PLAIN")
        await user.expect("AUTHENTICATE", "+")
        user.send("AUTHENTICATE " + b64(f"\0quick\0{PASSWORD}".encode()), "CAP END",
                  "WHOIS quick", "PING after")
        await user.expect("PONG")
        order = [m.command for m in user.messages if m.command in ("903", "001", "330", "PONG")]
        assert order == ["903", "001", "330", "PONG"]
    finally:
        await daemon.stop()

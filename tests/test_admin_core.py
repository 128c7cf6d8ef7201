"""Server administration in the sans-IO core: bans, cloaks, OPER accounts and classes, oper tools."""

from __future__ import annotations

import pytest
from core_peers import FakeClock, Peer, make_core, register
from twisted.internet import defer, task

from twistedchat.server import audit as audit_module
from twistedchat.server.bans import (
    DLINE,
    KLINE,
    BanError,
    FileBanStore,
    ServerBan,
    ServerBans,
)
from twistedchat.server.cloak import cloak_host
from twistedchat.server.config import OperAccount
from twistedchat.wire import numerics as N

SECRET = "test-cloak-secret"


def cloaking_core(clock: FakeClock, **settings: object):
    return make_core(clock, cloak_hosts=True, cloak_secret=SECRET, **settings)


def oper_up(core, peer: Peer) -> None:
    peer.say("OPER admin secret")
    assert peer.user.is_oper


# -- cloaks ---------------------------------------------------------------------------------------


def test_cloak_is_a_keyed_hash_stable_per_address():
    first = cloak_host(SECRET, "192.0.2.7")
    assert first == cloak_host(SECRET, "192.0.2.7")
    assert first != cloak_host(SECRET, "192.0.2.8")
    assert first != cloak_host("another secret", "192.0.2.7")
    assert "192" not in first and first.endswith(".ip")
    assert cloak_host(SECRET, "0::1") == cloak_host(SECRET, "::1")
    assert cloak_host(SECRET, "localhost") == "localhost"


def test_cloaking_is_on_by_default_and_warns_without_a_secret(clock):
    from twistedchat.server.config import ServerConfig
    from twistedchat.server.core import ServerCore

    assert ServerConfig().cloak_hosts is True
    core = ServerCore(ServerConfig(name="irc.test"), clock=clock)
    alice = register(core, "alice", host="198.51.100.4")
    assert alice.user.host != "198.51.100.4" and alice.user.host.endswith(".ip")
    assert alice.user.real_host == "198.51.100.4"


def test_others_see_only_the_cloak_everywhere(clock):
    core = cloaking_core(clock)
    alice = register(core, "alice", host="198.51.100.4")
    bob = register(core, "bob", host="203.0.113.9")
    cloak = cloak_host(SECRET, "198.51.100.4")
    bob.say("CAP REQ userhost-in-names")
    lines = []
    alice.say("JOIN #c")
    lines += bob.say("JOIN #c", "NAMES #c", "WHO #c", "WHO #c %tcuihsnfdlaor,7", "WHOIS alice",
                     "USERHOST alice")
    lines += alice.say("PRIVMSG #c :hi") and bob.take()
    alice.say("QUIT :bye")
    lines += bob.take()
    lines += bob.say("WHOWAS alice")
    text = "\n".join(m.to_line() for m in lines)
    assert "198.51.100.4" not in text
    assert cloak in text
    assert N.RPL_WHOISHOST not in [m.command for m in lines]


def test_own_real_host_in_396_and_whois_378_for_self_and_opers(clock):
    core = cloaking_core(clock)
    alice = Peer(core, "198.51.100.4")
    burst = alice.say("NICK alice", "USER a 0 * :A")
    hidden = [m for m in burst if m.command == N.RPL_HOSTHIDDEN]
    assert hidden and hidden[0].params[1] == cloak_host(SECRET, "198.51.100.4")
    own = alice.say("WHOIS alice")
    assert any(m.command == N.RPL_WHOISHOST and "198.51.100.4" in m.params[-1] for m in own)
    assert N.RPL_WHOISACTUALLY not in [m.command for m in own]
    oper = register(core, "op", host="203.0.113.1")
    oper_up(core, oper)
    seen = oper.say("WHOIS alice", "WHO alice %tnhi")
    assert any(m.command == N.RPL_WHOISACTUALLY and m.params[2] == "198.51.100.4" for m in seen)
    assert any(m.command == N.RPL_WHOISHOST for m in seen)
    assert any(m.command == N.RPL_WHOSPCRPL and "198.51.100.4" in m.params for m in seen)
    # an oper finds users by their real address with WHO, and sees it in WHOWAS
    assert any(m.command == N.RPL_WHOREPLY for m in oper.say("WHO 198.51.100.*"))
    alice.say("QUIT")
    was = oper.say("WHOWAS alice")
    assert any(m.command == N.RPL_WHOISACTUALLY and m.params[2] == "198.51.100.4" for m in was)


def test_channel_bans_match_the_cloak_and_the_real_host(clock):
    core = cloaking_core(clock)
    op = register(core, "op", host="203.0.113.1")
    alice = register(core, "alice", host="198.51.100.4")
    op.say("JOIN #c")
    cloak = cloak_host(SECRET, "198.51.100.4")
    op.say(f"MODE #c +b *!*@{cloak}")
    assert N.ERR_BANNEDFROMCHAN in [m.command for m in alice.say("JOIN #c")]
    op.say(f"MODE #c -b *!*@{cloak}", "MODE #c +b *!*@198.51.100.*")
    assert N.ERR_BANNEDFROMCHAN in [m.command for m in alice.say("JOIN #c")]


# -- server bans ----------------------------------------------------------------------------------


def test_kline_removes_matching_users_and_refuses_them_at_registration(clock):
    core = cloaking_core(clock)
    oper = register(core, "op", host="203.0.113.1")
    oper_up(core, oper)
    victim = register(core, "victim", host="198.51.100.4")
    bystander = register(core, "bystander", host="198.51.100.5")
    replies = oper.say("KLINE 10 *@198.51.100.4 :spamming")
    assert "1 connection(s) removed" in replies[-1].params[-1]
    got = victim.take()
    assert [m.command for m in got][-2:] == [N.ERR_YOUREBANNEDCREEP, "ERROR"]
    assert "spamming" in got[-1].params[0] and victim.closed
    assert not bystander.closed
    again = Peer(core, "198.51.100.4")
    out = again.say("NICK v2", "USER v 0 * :V")
    assert [m.command for m in out] == [N.ERR_YOUREBANNEDCREEP, "ERROR"] and again.closed
    assert core.counters["bans_hit"] == 2
    # matched on the cloak too (what channel operators see)
    oper.say(f"KLINE *@{cloak_host(SECRET, '198.51.100.5')} :by cloak")
    assert bystander.closed


def test_kline_by_nick_and_dline_by_cidr(clock):
    core = cloaking_core(clock)
    oper = register(core, "op", host="203.0.113.1")
    oper_up(core, oper)
    one = register(core, "one", host="2001:db8:1:2::5")
    two = register(core, "two", host="192.0.2.77")
    oper.say("KLINE one :by nick")
    assert one.closed and core.bans.klines["*@2001:db8:1:2::5"].reason == "by nick"
    oper.say("DLINE 192.0.2.0/24 :range")
    assert two.closed
    assert core.bans.dline_for("192.0.2.200", clock.now) is not None
    assert core.bans.dline_for("192.0.3.1", clock.now) is None
    oper.say("DLINE 2001:db8:9::/48 :v6")
    assert core.bans.dline_for("2001:db8:9:1::1", clock.now) is not None


def test_expiry_and_unban(clock):
    core = cloaking_core(clock)
    oper = register(core, "op", host="203.0.113.1")
    oper_up(core, oper)
    oper.say("KLINE 1 *@198.51.100.4 :one minute", "DLINE 192.0.2.1 :forever")
    stats = oper.say("STATS k", "STATS d")
    assert [m.command for m in stats] == [N.RPL_STATSKLINE, N.RPL_ENDOFSTATS,
                                          N.RPL_STATSDLINE, N.RPL_ENDOFSTATS]
    assert list(stats[0].params[2:5]) == ["198.51.100.4", "*", "*"]
    clock.now += 61
    core.sweep()
    assert not core.bans.klines
    assert Peer(core, "198.51.100.4").say("NICK x", "USER x 0 * :X")[0].command == "001"
    assert "lifted" in oper.say("UNDLINE 192.0.2.1")[-1].params[-1]
    assert "No D-line" in oper.say("UNDLINE 192.0.2.1")[-1].params[-1]
    assert "No K-line" in oper.say("UNKLINE *@nowhere")[-1].params[-1]


def test_ban_commands_refuse_bad_input_and_non_opers(clock):
    core = cloaking_core(clock)
    user = register(core, "user", host="198.51.100.4")
    assert user.say("KLINE *@x :no")[0].command == N.ERR_NOPRIVILEGES
    assert user.say("STATS k")[0].command == N.ERR_NOPRIVILEGES
    assert user.say("STATS u")[0].command == N.RPL_STATSUPTIME
    oper = register(core, "op", host="203.0.113.1")
    oper_up(core, oper)
    for line, why in (("DLINE not-an-address :x", "not an address"),
                      ("DLINE 10.0.0.0/4 :x", "too wide"),
                      ("KLINE *@* :x", "every host"),
                      ("KLINE 9999999 *@x :x", "at most")):
        assert why in oper.say(line)[-1].params[-1], line
    assert oper.say("KLINE 5")[0].command == N.ERR_NEEDMOREPARAMS
    assert not core.bans.all()


def test_bans_file_round_trip_and_restart(clock, tmp_path):
    path = tmp_path / "bans.txt"
    core = cloaking_core(clock, bans_file=str(path))
    oper = register(core, "op", host="203.0.113.1")
    oper_up(core, oper)
    oper.say("KLINE 60 ~bad@198.51.100.* :tab\there", "DLINE 2001:db8::/32 :v6 range")
    text = path.read_text()
    assert text.startswith("# twistedchat server bans v1") and "tab here" in text
    restarted = cloaking_core(FakeClock(), bans_file=str(path))
    assert {b.mask for b in restarted.bans.all()} == {"~bad@198.51.100.*", "2001:db8::/32"}
    refused = Peer(restarted, "198.51.100.9").say("NICK bad", "USER bad 0 * :B")
    assert refused[0].command == N.ERR_YOUREBANNEDCREEP
    assert not list(tmp_path.glob(".bans-*"))  # the temporary file was renamed


def test_bans_file_errors_are_clear(tmp_path):
    path = tmp_path / "bans.txt"
    path.write_text("K\tnot-enough-fields\n")
    with pytest.raises(BanError, match="line 1: expected 6"):
        FileBanStore(str(path)).load()
    from twistedchat.server.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="bans-file"):
        load_config(overrides={"bans_file": str(path)})


def test_ban_list_is_bounded(monkeypatch):
    from twistedchat.server import bans

    monkeypatch.setattr(bans, "MAX_BANS", 2)
    table = ServerBans()
    table.add(DLINE, "192.0.2.1", "r", "op", 0.0)
    table.add(DLINE, "192.0.2.2", "r", "op", 0.0)
    table.add(DLINE, "192.0.2.2", "replaced", "op", 0.0)  # same mask: replaced, not added
    with pytest.raises(BanError, match="already 2"):
        table.add(DLINE, "192.0.2.3", "r", "op", 0.0)
    assert ServerBan.from_line(table.dlines["192.0.2.2/32"][1].to_line()).reason == "replaced"
    assert table.add(KLINE, "host.example", "r", "op", 0.0).mask == "*@host.example"


# -- OPER accounts, classes, the held pipeline ----------------------------------------------------


class Verifier:
    """Stands in for the argon2 thread: each check waits until the test answers it."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str, defer.Deferred[bool]]] = []

    def __call__(self, accounts, name, password, mask, reactor=None) -> defer.Deferred[bool]:
        waiting: defer.Deferred[bool] = defer.Deferred()
        self.pending.append((name, mask, waiting))
        return waiting


def account_core(clock, **settings):
    accounts = {
        "root": OperAccount("root", "$argon2id$x", ("*@203.0.113.*",)),
        "helper": OperAccount("helper", "$argon2id$x", ("*@*",), oper_class="helpers"),
        "tls": OperAccount("tls", "$argon2id$x", ("*@*",), fingerprints=("ab" * 32,)),
    }
    core = cloaking_core(clock, opers={}, oper_accounts=accounts,
                         oper_classes={"helpers": frozenset({"kill"})}, **settings)
    core.verify_oper = Verifier()
    return core


def test_oper_account_checks_host_then_password_off_the_core(clock):
    core = account_core(clock)
    timer = task.Clock()
    core.timer = timer
    outsider = register(core, "outsider", host="198.51.100.4")
    assert outsider.say("OPER root pw") == []  # answered after the delay
    timer.advance(3)
    assert outsider.take()[0].command == N.ERR_NOOPERHOST
    assert core.verify_oper.pending == []  # never hashed
    insider = register(core, "insider", host="203.0.113.5")
    assert insider.say("OPER root pw") == []
    name, mask, waiting = core.verify_oper.pending[0]
    assert (name, mask) == ("root", "~insider@203.0.113.5")
    waiting.callback(True)
    assert [m.command for m in insider.take()] == ["MODE", N.RPL_YOUREOPER]
    assert insider.user.privileges == {"kill", "ban", "override", "rehash", "die"}


def test_oper_class_limits_permissions(clock):
    core = account_core(clock)
    helper = register(core, "helper", host="198.51.100.4")
    helper.say("OPER helper pw")
    core.verify_oper.pending[0][2].callback(True)
    helper.take()
    assert helper.user.is_oper and helper.user.privileges == {"kill"}
    refused = helper.say("KLINE *@x :no", "REHASH", "DIE", "SAJOIN helper #x")
    assert [m.command for m in refused] == [N.ERR_NOPRIVILEGES] * 4
    assert "ban" in refused[0].params[-1]


def test_oper_certificate_fingerprint_required(clock):
    core = account_core(clock)
    user = register(core, "user", host="198.51.100.4")
    assert user.say("OPER tls pw")[0].command == N.ERR_NOOPERHOST  # no certificate
    core.client_fingerprint = lambda u: "AB:" * 31 + "AB"
    user.say("OPER tls pw")
    assert core.verify_oper.pending


def test_failed_oper_is_delayed_counted_logged_and_limited(clock, monkeypatch):
    core = account_core(clock)
    timer = task.Clock()
    core.timer = timer
    events = []
    monkeypatch.setattr(audit_module.log, "observer", events.append)
    user = register(core, "user", host="203.0.113.5")
    for _attempt in range(3):
        user.say("OPER root wrong")
        core.verify_oper.pending.pop()[2].callback(False)
        assert user.take() == []
        timer.advance(3)
        assert user.take()[0].command == N.ERR_PASSWDMISMATCH
    assert user.closed and core.counters["oper_failures"] == 3
    assert [e["audit_event"] for e in events if e.get("audit_event") == "oper-failed"] == \
        ["oper-failed"] * 3
    assert user.user not in core.oper_failures


# -- oper tools -----------------------------------------------------------------------------------


def test_global_notice_needs_an_oper_and_reaches_everyone(clock):
    core = cloaking_core(clock)
    user = register(core, "user")
    other = register(core, "other")
    assert user.say("NOTICE $* :hi")[0].command == N.ERR_NOPRIVILEGES
    assert user.say("PRIVMSG $$* :hi")[0].command == N.ERR_NOPRIVILEGES
    oper_up(core, user)
    assert user.say("NOTICE $nowhere.example :hi")[0].command == N.ERR_NOSUCHSERVER
    user.say("NOTICE $$irc.test :maintenance at noon")
    got = other.take()
    assert got[0].command == "NOTICE" and list(got[0].params) == ["$$irc.test", "maintenance at noon"]


def test_opers_see_secret_channels_and_invisible_users(clock):
    core = cloaking_core(clock)
    hidden = register(core, "hidden")
    hidden.say("MODE hidden +i", "JOIN #secret", "MODE #secret +s")
    user = register(core, "user")
    assert [m.command for m in user.say("LIST")] == [N.RPL_LISTSTART, N.RPL_LISTEND]
    assert not [m for m in user.say("WHO *") if m.command == N.RPL_WHOREPLY and
                m.params[5] == "hidden"]
    oper_up(core, user)
    assert N.RPL_LIST in [m.command for m in user.say("LIST")]
    assert [m for m in user.say("WHO *") if m.command == N.RPL_WHOREPLY and
            m.params[5] == "hidden"]
    assert any(m.command == N.RPL_WHOISCHANNELS for m in user.say("WHOIS hidden"))
    assert any(m.command == N.RPL_NAMREPLY for m in user.say("NAMES #secret"))


def test_sajoin_and_samode_override_channel_rules(clock):
    core = cloaking_core(clock)
    owner = register(core, "owner")
    owner.say("JOIN #locked", "MODE #locked +ik key")
    oper = register(core, "oper")
    oper_up(core, oper)
    target = register(core, "target")
    assert N.ERR_NOSUCHNICK in [m.command for m in oper.say("SAJOIN nobody #locked")]
    oper.say("SAJOIN target #locked")
    assert target.user in core.state.find_channel("#locked").members
    oper.say("SAMODE #locked +o target")
    assert core.state.find_channel("#locked").is_op(target.user)
    assert target.say("SAMODE #locked -i")[0].command == N.ERR_NOPRIVILEGES


class FakeService:
    def __init__(self, refuse: bool = False) -> None:
        self.reloads = 0
        self.stopped: list[tuple[str, bool]] = []
        self.refuse = refuse

    def reload(self):
        from twistedchat.server.config import ConfigError

        if self.refuse:
            raise ConfigError("chat.toml: sendq: must be at least 1024, not 10")
        self.reloads += 1
        return ["motd text"], []

    def stop_server(self, reason: str, restart: bool) -> None:
        self.stopped.append((reason, restart))


def test_rehash_die_restart_reach_the_service(clock):
    core = cloaking_core(clock)
    oper = register(core, "oper")
    oper_up(core, oper)
    assert "no configuration" in oper.say("REHASH")[-1].params[-1]
    core.admin = service = FakeService()
    replies = oper.say("REHASH")
    assert replies[0].command == N.RPL_REHASHING and "motd text" in replies[1].params[-1]
    assert service.reloads == 1
    core.admin = refusing = FakeService(refuse=True)
    assert "refused" in oper.say("REHASH")[-1].params[-1]
    oper.say("DIE :upgrade", "RESTART")
    assert refusing.stopped == [("Server shutting down (oper: upgrade)", False),
                                ("Server restarting (oper)", True)]


def test_stats_l_and_u(clock):
    core = cloaking_core(clock)
    oper = register(core, "oper", host="198.51.100.4")
    oper_up(core, oper)
    links = oper.say("STATS l")
    assert any("198.51.100.4" in m.params[1] for m in links if m.command == N.RPL_STATSLINKINFO)
    assert oper.say("STATS u")[0].params[-1].startswith("Server Up 0 days")


def test_audit_events_have_the_declared_fields(clock, monkeypatch):
    events = []
    monkeypatch.setattr(audit_module.log, "observer", events.append)
    core = cloaking_core(clock)
    alice = register(core, "alice", host="198.51.100.4")
    alice.say("NICK alice2")
    oper = register(core, "oper")
    oper_up(core, oper)
    oper.say("KILL alice2 :bye", "DLINE 192.0.2.9 :x", "UNDLINE 192.0.2.9")
    kinds = [e["audit_event"] for e in events if "audit_event" in e]
    assert kinds[:2] == ["connect", "nick"] and {"kill", "quit", "ban-set", "ban-lifted"} <= set(
        kinds)
    from twisted.logger import formatEvent

    nick = next(e for e in events if e.get("audit_event") == "nick")
    assert formatEvent(nick) == "audit nick old='alice' new='alice2' address='198.51.100.4'"
    with pytest.raises(ValueError):
        audit_module.audit("nick", old="a")
    # --log-format json: the event's fields stand apart
    import json

    from twisted.logger import eventAsJSON

    as_json = json.loads(eventAsJSON(nick))
    assert as_json["audit_event"] == "nick" and as_json["address"] == "198.51.100.4"
    assert as_json["log_namespace"] == "twistedchat.audit"


# -- WEBIRC ---------------------------------------------------------------------------------------


def webirc_core(clock):
    from twistedchat.server.config import WebircGateway

    gateway = WebircGateway("web", "a-long-gateway-password", ("192.0.2.10", "2001:db8::/64"))
    return cloaking_core(clock, webirc=(gateway,))


def test_webirc_from_a_trusted_gateway_sets_the_real_address(clock):
    core = webirc_core(clock)
    peer = Peer(core, "192.0.2.10")
    burst = peer.say("WEBIRC a-long-gateway-password web host.example 198.51.100.20",
                     "NICK w", "USER w 0 * :W")
    assert burst[0].command == "001"
    assert peer.user.real_host == "198.51.100.20"
    assert peer.user.host == cloak_host(SECRET, "198.51.100.20")
    v6 = Peer(core, "2001:db8::99")
    v6.say("WEBIRC a-long-gateway-password web h 2001:db8:0:0::5")
    assert v6.user.real_host == "2001:db8::5" and not v6.closed


def test_webirc_refused_from_elsewhere_or_with_a_wrong_password(clock):
    core = webirc_core(clock)
    for host, password, address in (("198.51.100.1", "a-long-gateway-password", "192.0.2.1"),
                                     ("192.0.2.10", "wrong-password-here", "192.0.2.1"),
                                     ("192.0.2.10", "a-long-gateway-password", "not-an-ip")):
        peer = Peer(core, host)
        out = peer.say(f"WEBIRC {password} web h {address}")
        assert out[-1].command == "ERROR" and peer.closed, (host, password, address)
        assert peer.user.real_host == host
    registered_peer = register(core, "done", host="192.0.2.10")
    assert registered_peer.say("WEBIRC a-long-gateway-password web h 192.0.2.5")[0].command == \
        N.ERR_ALREADYREGISTERED


def test_webirc_address_meets_dlines(clock):
    core = webirc_core(clock)
    core.bans.add(DLINE, "198.51.100.0/24", "banned range", "op", clock.now)
    peer = Peer(core, "192.0.2.10")
    out = peer.say("WEBIRC a-long-gateway-password web h 198.51.100.20")
    assert [m.command for m in out] == [N.ERR_YOUREBANNEDCREEP, "ERROR"]


def test_webirc_config_tables(tmp_path):
    from twistedchat.server.config import ConfigError, load_config

    path = tmp_path / "chat.toml"
    path.write_text('[[webirc]]\nname = "web"\npassword = "a-long-gateway-password"\n'
                    'hosts = ["192.0.2.10", "2001:db8::/64"]\n')
    config = load_config(str(path))
    assert config.webirc[0].trusts("192.0.2.10") and not config.webirc[0].trusts("192.0.2.11")
    path.write_text('[[webirc]]\nname = "web"\npassword = "a-long-gateway-password"\n'
                    'hosts = ["nowhere"]\n')
    with pytest.raises(ConfigError, match="not an address"):
        load_config(str(path))


# -- classes and the throttle (the parts without sockets) -----------------------------------------


def test_throttle_blocks_for_a_while_then_forgets():
    from twistedchat.server.classes import Throttle

    throttle = Throttle()
    assert throttle.allow("a", 0.0, 2, 10.0, 100.0)
    assert throttle.allow("a", 1.0, 2, 10.0, 100.0)
    assert not throttle.allow("a", 2.0, 2, 10.0, 100.0)
    assert not throttle.allow("a", 50.0, 2, 10.0, 100.0)  # still blocked
    assert throttle.allow("a", 103.0, 2, 10.0, 100.0)
    assert throttle.allow("b", 0.0, 0, 10.0, 100.0)  # count 0: off
    throttle.prune(500.0, 10.0)
    assert not throttle.recent and not throttle.blocked


def test_class_limits_pick_the_most_specific_range_and_ipv6_by_64():
    from twistedchat.server.classes import ConnectionClass, address_key, cidr_key, limits_for
    from twistedchat.server.config import ServerConfig

    config = ServerConfig(classes=(ConnectionClass("wide", ("10.0.0.0/8",), sendq=4096),
                                   ConnectionClass("narrow", ("10.1.0.0/16",),
                                                   registration_timeout=5.0)))
    narrow = limits_for(config, "10.1.2.3")
    assert narrow.name == "narrow" and narrow.registration_timeout == 5.0
    assert narrow.sendq == config.sendq  # not set in the class: the global value
    assert limits_for(config, "10.2.0.1").sendq == 4096
    assert limits_for(config, "192.0.2.1").name == "default"
    assert address_key("2001:db8:1:2:3::4") == "2001:db8:1:2::/64"
    assert cidr_key(config, "192.0.2.77") == "192.0.2.0/24"


def test_class_registration_timeout_in_the_sweep(clock):
    from twistedchat.server.classes import ConnectionClass

    core = make_core(clock, classes=(ConnectionClass("quick", ("192.0.2.0/24",),
                                                     registration_timeout=5.0),))
    quick = Peer(core, "192.0.2.1")
    slow = Peer(core, "198.51.100.1")
    clock.now += 6
    core.sweep()
    assert quick.closed and not slow.closed


def test_class_tables_in_the_config_file(tmp_path):
    from twistedchat.server.config import ConfigError, load_config

    path = tmp_path / "chat.toml"
    path.write_text('[[class]]\nname = "school"\nhosts = ["192.0.2.0/24"]\nexempt = true\n'
                    'max-per-ip = 200\nsendq = 65536\n')
    config = load_config(str(path))
    assert config.classes[0].exempt and config.classes[0].max_per_ip == 200
    path.write_text('[[class]]\nname = "bad"\nhosts = ["192.0.2.0/24"]\nsendq = 10\n')
    with pytest.raises(ConfigError, match="sendq: must be at least 1024"):
        load_config(str(path))
    path.write_text('[[class]]\nname = "bad"\nhosts = ["192.0.2.0/24"]\nping-interval = 10\n')
    with pytest.raises(ConfigError, match="unknown key 'ping-interval'"):
        load_config(str(path))


# -- the pipeline holds a client's lines while a handler's Deferred runs ---------------------------


class ListOutlet:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def abort(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


def held_pipeline(**settings):
    from twistedchat.server.config import ServerConfig
    from twistedchat.server.net import ChatFactory

    clock = task.Clock()
    factory = ChatFactory(ServerConfig(name="hold.test", **settings), clock=clock)
    outlet = ListOutlet()
    pipeline = factory.open_pipeline("192.0.2.1", outlet)
    for line in (b"NICK held", b"USER held 0 * :H"):
        pipeline.line_received(line)
    clock.advance(0)
    outlet.data = b""
    return pipeline, outlet, clock


@pytest.mark.parametrize("flood_control", [True, False])
def test_pipeline_hold_keeps_later_lines_in_order_until_the_deferred_fires(flood_control):
    pipeline, outlet, clock = held_pipeline(no_flood_control=not flood_control)
    work: defer.Deferred[None] = defer.Deferred()
    pipeline.hold(work)
    pipeline.line_received(b"PING :one")
    pipeline.line_received(b"PING :two")
    clock.advance(1)
    assert outlet.data == b""
    work.callback(None)
    clock.advance(1)
    assert outlet.data.count(b"PONG") == 2
    assert outlet.data.index(b"one") < outlet.data.index(b"two")


def test_pipeline_hold_is_bounded_by_the_flood_queue():
    pipeline, outlet, clock = held_pipeline(flood_queue=5)
    pipeline.hold(defer.Deferred())
    for number in range(7):
        pipeline.line_received(b"PING :%d" % number)
    clock.advance(0)
    assert b"Excess Flood" in outlet.data and outlet.closed
    assert pipeline.core.counters["flood_drops"] == 1


def test_dline_lookup_finds_single_addresses_without_a_scan():
    table = ServerBans()
    table.add(DLINE, "192.0.2.1", "one", "op", 0.0)
    table.add(DLINE, "2001:db8::/32", "range", "op", 0.0)
    assert list(table.ranges) == ["2001:db8::/32"]
    assert table.dline_for("192.0.2.1", 1.0).reason == "one"
    assert table.dline_for("::ffff:192.0.2.1", 1.0).reason == "one"  # IPv4-mapped
    assert table.dline_for("2001:db8::1", 1.0).reason == "range"
    table.remove(DLINE, "2001:db8::/32")
    assert not table.ranges and table.dline_for("2001:db8::1", 1.0) is None

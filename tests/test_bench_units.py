"""The bench's pure parts: message stamps, percentiles, windows, tables and the README splice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import fanout_micro, loadgen, run
from twistedchat.wire.message import parse


def test_stamped_message_is_a_valid_privmsg_whose_stamp_reads_back() -> None:
    line = loadgen.message_line(123456789)
    msg = parse(line.rstrip(b"\r\n"))
    assert msg.command == "PRIVMSG" and msg.params[0] == loadgen.CHANNEL.decode()
    pos = line.find(loadgen.MARKER)
    assert int(line[pos + 4 : pos + 4 + loadgen.STAMP_DIGITS]) == 123456789


def test_stamped_and_plain_messages_have_the_same_length() -> None:
    stamped, plain = (
        loadgen.message_line(time_ns := 1_732_000_000_000_000_000),
        loadgen.message_line(None),
    )
    assert len(stamped) == len(plain)
    assert loadgen.MARKER not in plain and str(time_ns).encode() in stamped


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert loadgen.percentile(values, 0.5) == 50
    assert loadgen.percentile(values, 0.99) == 99
    assert loadgen.percentile([7], 0.99) == 7
    assert loadgen.percentile([], 0.5) == 0


def test_saturation_window_keeps_deliveries_in_flight_bounded() -> None:
    assert loadgen.saturation_window(1000, 10) == 500
    assert loadgen.saturation_window(10, 10) == 5000  # capped in messages
    assert loadgen.saturation_window(100_000, 10) == 20  # at least two per sender


def test_table_shows_ratio_to_ngircd() -> None:
    figures = {f.path: 2.0 for f in run.FIGURES}
    reference = {f.path: 4.0 for f in run.FIGURES}
    table = run.size_table(1000, {"twistedchat": figures, "ngircd": reference}, {})
    assert "### 1,000 clients" in table
    assert "| saturation: deliveries/s | 2 (0.50×) | 4 |" in table


def test_targets_report_met_and_missed() -> None:
    ours = {f.path: 1.0 for f in run.FIGURES}
    ngircd = {f.path: 2.0 for f in run.FIGURES}
    text = run.targets_section({1000: {"twistedchat": ours, "ngircd": ngircd}})
    assert (
        "fixed load, 1,000 clients: server CPU ≤ 1.0× ngircd | 1 % vs 2 %: 0.50× ngircd | met"
        in text
    )
    assert (
        "saturation, 1,000 clients: deliveries/s ≥ 1.0× ngircd | 1 vs 2: 0.50× ngircd | missed"
        in text
    )
    assert "saturation, 200 clients: deliveries/s ≥ 1.0× ngircd | not measured" in text


def test_write_readme_replaces_only_the_results_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run.RESULTS_START}\nold\n{run.RESULTS_END}\nprofile notes\n")
    run.write_readme(readme, "new tables")
    text = readme.read_text()
    assert "old" not in text and "new tables" in text
    assert text.startswith("intro\n") and text.endswith("profile notes\n")


def test_write_readme_appends_a_section_when_markers_are_missing(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Bench\n")
    run.write_readme(readme, "tables")
    run.write_readme(readme, "tables again")
    text = readme.read_text()
    assert text.count(run.RESULTS_START) == 1 and "tables again" in text


def test_message_figures_of_a_server_that_could_not_take_everyone_are_blank() -> None:
    def fake_run(joined: int) -> dict:
        run_: dict = {"fixed": {}, "saturation": {}}
        for figure in run.FIGURES:
            target = run_
            for key in figure.path[:-1]:
                target = target[key]
            target[figure.path[-1]] = 3.0
        run_["joined"] = joined
        return run_

    partial = run.median_run([fake_run(40)], 100)
    assert partial[("registered_per_s",)] == 3.0
    assert partial[("saturation", "deliveries_per_s")] is None
    table = run.size_table(100, {"twistedchat": run.median_run([fake_run(100)], 100),
                                 "ngircd": partial}, {})  # fmt: skip
    assert "| saturation: deliveries/s | 3 | — |" in table


def test_profile_summary_ranks_own_and_inclusive_time(tmp_path: Path) -> None:
    from bench.profile import summarize

    raw = tmp_path / "stacks.raw"
    raw.write_text("main;loop;send 6\nmain;loop;parse 3\nmain;idle 1\n")
    text = summarize(raw, 5)
    assert text.startswith("10 samples")
    own, inclusive = text.split("including callees:")
    assert own.index("send") < own.index("parse") < own.index("idle")
    assert " 90.0 %  loop" in inclusive and "main" not in inclusive  # in every sample: dropped


def test_a_server_that_is_not_installed_is_left_out(monkeypatch, capsys) -> None:
    """``twistedchat-pypy`` runs only where ``make bench-pypy`` made its virtualenv."""
    from bench import servers

    monkeypatch.setitem(servers.SERVERS, "twistedchat-pypy", servers.ServerSpec(
        "twistedchat-pypy", lambda port, tmp: ["/nonexistent/twistd"], lambda: False))
    assert run.main(["--quick", "--no-write", "--servers", "twistedchat-pypy"]) == 2
    out = capsys.readouterr().out
    assert "twistedchat-pypy is not available here" in out and "no server left" in out


def test_loadgen_websocket_framing_round_trip():
    from bench.loadgen import websocket_frames, websocket_lines

    lines = b"NICK b1\r\nPRIVMSG #bench :" + b"y" * 200 + b"\r\n"
    frames = websocket_frames(lines)
    assert frames[:2] == b"\x81\x87" and frames[2:6] == b"\0\0\0\0"  # masked with a zero key
    # What a server sends back: unmasked frames, maybe cut anywhere by TCP.
    server = b"\x81\x07PONG :x" + b"\x81\x7e\x00\xc8" + b"z" * 200 + b"\x81\x03ERR"
    got, tail, closed = websocket_lines(server[:20])
    assert got == b"PONG :x\n" and tail == server[9:20] and not closed
    got, tail, closed = websocket_lines(tail + server[20:])
    assert got == b"z" * 200 + b"\n" + b"ERR\n" and tail == b"" and not closed
    assert websocket_lines(b"\x88\x02\x03\xe8")[2] is True  # a close frame


def test_loadgen_spreads_websocket_clients_evenly():
    from bench.loadgen import LoadGenerator

    generator = LoadGenerator("127.0.0.1", 1, 0, websocket_port=2, websocket_clients=500)
    chosen = [i for i in range(1000) if generator.over_websocket(i, 1000)]
    assert len(chosen) == 500 and chosen[:3] == [1, 3, 5]
    generator.close()
    none = LoadGenerator("127.0.0.1", 1, 0)
    assert not any(none.over_websocket(i, 1000) for i in range(1000))
    none.close()


@pytest.mark.parametrize(("history", "tagged"), [(False, 0), (True, 2)])
def test_fanout_micro_delivers_every_message_through_the_real_fan_out(history: bool,
                                                                      tagged: int) -> None:
    """The micro-benchmark drives real connections (it checks each member got a line); its
    figure is only reported, never asserted."""
    result = fanout_micro.measure(members=4, messages=5, history=history, tagged=tagged)
    assert result["deliveries"] == 5 * 3
    assert isinstance(result["ns_per_delivery"], float)


def test_a_stamped_message_carries_its_senders_node_after_the_stamp() -> None:
    """The cluster bench tells deliveries across nodes by the mark right after the stamp."""
    mark = loadgen.NODE_MARKS[1]
    line = loadgen.message_line(1_732_000_000_000_000_000, mark)
    pos = line.find(loadgen.MARKER)
    assert line[pos + loadgen.MARK_OFFSET] == mark
    assert len(line) == len(loadgen.message_line(None, mark)) == len(loadgen.message_line(None))


def test_applying_remote_lines_costs_are_measured_per_line() -> None:
    """bench.cluster_apply: a node with only remote members in a channel applies every line."""
    from bench import cluster_apply

    results = cluster_apply.run([1, 20], [1, 5], total_lines=50, reps=1)
    assert [(r["members"], r["lines_per_batch"]) for r in results] == [
        (1, 1), (1, 5), (20, 1), (20, 5)]
    assert all(r["lines"] == 50 and r["us_per_line"] > 0 for r in results)
    node = cluster_apply.make_node(3)
    assert not any(u.outbox for u in node.core.state.users.values())
    fixed, per_member = cluster_apply.fit(
        [{"members": m, "lines_per_batch": 1, "us_per_line": 2.0 + 0.5 * m} for m in (1, 10)], 1)
    assert abs(fixed - 2.0) < 1e-9 and abs(per_member - 0.5) < 1e-9

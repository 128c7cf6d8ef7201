"""What the single ordered stream costs a node: applying other nodes' lines for a channel in which
it has no local member.

Every node of a ``--cluster`` network receives every batch of events and applies it to its
replica, even for channels where none of its own users is. This micro-bench builds one
:class:`~twistedchat.cluster.node.ClusterNode` (no Redis: its connections are never started) whose
replica holds one channel of M remote ("ghost") members, then feeds it batches of B ``PRIVMSG``
lines exactly as they come off the subscriber connection (``<epoch> <seq> <json batch>`` into
``_on_message``) and reports the CPU time per line. Run ``python -m bench.cluster_apply``; it prints
a table (members × lines per batch) and, with ``--json``, the raw figures.

These are what a node with no member in a channel paid per line of it before channel lines went
to inboxes (they came in the network's events); now it receives none of them (0 µs), and what is
left is the sender's routing and the receivers' inboxes:

``--sender`` measures the sending node's CPU per line of a channel whose M remote members are
spread over k other nodes: ``on_relay`` finding the nodes with members and queueing the line for
their inboxes, then one turn's segments made ready for the script call, against the events path
every channel line took before (one event in the turn's batch).

``--bystander`` measures it end to end: a real node (``twistd chat --cluster``, no clients) on a
real Redis, and this process publishing another node's lines for a channel of M members the node
knows of but has no member in, either as before (events batches, which every node applies) or as
now (that node's lines go to the inbox of a third node, the one with members); the node's own CPU
per line, from /proc, beside its idle cost over as long.

``--redis`` measures the other side: what one batch costs Redis, by Redis's own CPU time: the
PUBLISH script (fence check, sequence number, XADD to the capped log, PUBLISH to every subscribed
node) for a number of subscribers (nodes) and lines per batch; with ``--targets`` the SEND script
carrying one turn's batch to k target inboxes (per target: sequence number, XADD to its capped
stream, PUBLISH to its one subscriber).
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hiredis
from twisted.internet import task

from bench.servers import (
    REDIS_SERVER,
    free_port,
    pinned,
    proc_cpu_seconds,
    start_redis_server,
)
from twistedchat.cluster import scripts
from twistedchat.cluster.node import ClusterNode
from twistedchat.cluster.resp import encode_command
from twistedchat.server.config import ServerConfig
from twistedchat.server.core import ServerCore
from twistedchat.server.relay import Relay
from twistedchat.wire.message import Message

OTHER_NODE = "other.bench/1"
CHANNEL = "#far"
EPOCH = b"e1"


def make_node(members: int, nodes: int = 1) -> ClusterNode:
    """A node whose replica has ``members`` remote users in ``CHANNEL``, spread over ``nodes``
    other nodes, and no local user."""
    clock = task.Clock()
    core = ServerCore(ServerConfig(name="here.bench", network="BenchNet"), clock=clock.seconds)
    node = ClusterNode(core, "redis://127.0.0.1:1/0", clock, node_id="here.bench/1")
    channel = [CHANNEL, 1.0, "", "", 0.0, "nt", None, None, []]
    for n in range(nodes):
        users = [[f"g{i}", f"u{i}", "remote.host", "bench", 1.0, None, "", {CHANNEL: ""}]
                 for i in range(n, members, nodes)]  # fmt: skip
        node._apply(["B", OTHER_NODE if n == 0 else f"other{n}.bench/1", users, [channel]])
    assert len(core.state.find_channel(CHANNEL).members) == members  # type: ignore[union-attr]
    return node


def batch_payload(lines: int, first: int) -> bytes:
    """One batch of ``lines`` channel messages from the other node, as the node publishes it."""
    events = [["L", OTHER_NODE, "g0!u0@remote.host", "PRIVMSG",
               [CHANNEL, f"message {first + i} yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"],
               None, f"msgid{first + i}", 1_800_000_000.0 + i, None, None]
              for i in range(lines)]  # fmt: skip
    return json.dumps(events, separators=(",", ":")).encode()


def measure(members: int, per_batch: int, total_lines: int) -> dict[str, Any]:
    """Apply ``total_lines`` lines in batches of ``per_batch``; CPU µs per line and per batch."""
    node = make_node(members)
    batches = max(1, total_lines // per_batch)
    payloads = [EPOCH + b" %d " % (seq + 1) + batch_payload(per_batch, seq * per_batch)
                for seq in range(batches)]  # fmt: skip
    on_message = node._on_message
    topic = b"twistedchat:BenchNet:events"
    start = time.process_time()
    for data in payloads:
        on_message(topic, data)
    cpu = time.process_time() - start
    assert node.applied_batches == batches and not node.events.held
    lines = batches * per_batch
    return {"members": members, "lines_per_batch": per_batch, "lines": lines,
            "us_per_line": 1e6 * cpu / lines, "us_per_batch": 1e6 * cpu / batches}  # fmt: skip


def measure_sender(members: int, nodes: int, per_batch: int, total_lines: int) -> dict[str, Any]:
    """The sending node's CPU per channel line: routed to the inboxes of ``nodes`` nodes (now)
    against one event in the turn's batch (the path every channel line took before)."""
    node = make_node(members, nodes)
    relay = Relay(Message("PRIVMSG", (CHANNEL, "message yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"),
                          "me!u@here.host"), 1_800_000_000.0, None, "msgid1", None)
    batches = max(1, total_lines // per_batch)
    on_relay, take = node.on_relay, node.outboxes.take
    start = time.process_time()
    for _ in range(batches):
        for _ in range(per_batch):
            on_relay(relay)
        pairs, _ = take()
    now = time.process_time() - start
    assert len(pairs) == 2 * nodes
    emit, take_batch, state, ghost_node = node._emit, node._take_batch, node.core.state, node.ghost_node

    def as_event(relay: Relay) -> None:  # what on_relay did with a channel line before
        message = relay.message
        channel = state.find_channel(message.params[0])
        if channel is not None and any(m in ghost_node for m in channel.members):
            emit(["L", node.node_id, message.source or "", message.command, list(message.params),
                  relay.client_tags or None, relay.msgid, relay.now, None, relay.account])

    start = time.process_time()
    for _ in range(batches):
        for _ in range(per_batch):
            as_event(relay)
        take_batch()
    before = time.process_time() - start
    lines = batches * per_batch
    return {"members": members, "nodes": nodes, "lines_per_batch": per_batch,
            "us_per_line_inboxes": 1e6 * now / lines, "us_per_line_events": 1e6 * before / lines}


def run(members: list[int], per_batch: list[int], total_lines: int, reps: int) -> list[dict]:
    """The best of ``reps`` runs (least disturbed by other work) for every combination."""
    results = []
    for m in members:
        for b in per_batch:
            runs = [measure(m, b, total_lines) for _ in range(reps)]
            best = min(runs, key=lambda r: r["us_per_line"])
            best["us_per_line_runs"] = [round(r["us_per_line"], 3) for r in runs]
            results.append(best)
    return results


def table(results: list[dict]) -> str:
    """A markdown table: µs of CPU per line applied, by members and lines per batch."""
    per_batch = sorted({r["lines_per_batch"] for r in results})
    members = sorted({r["members"] for r in results})
    cell = {(r["members"], r["lines_per_batch"]): r["us_per_line"] for r in results}
    out = ["| remote members in the channel | " + " | ".join(
        f"{b} line{'s' if b > 1 else ''}/batch" for b in per_batch) + " |",
        "|---:|" + "---:|" * len(per_batch)]  # fmt: skip
    for m in members:
        out.append(f"| {m:,} | " + " | ".join(f"{cell[m, b]:.2f} µs" for b in per_batch) + " |")
    return "\n".join(out)


#: PUBLISH scripts in flight on the publishing connection.
PIPELINE = 50


def redis_cost(subscribers: int, per_batch: int, batches: int, cpu: int | None = 0,
               targets: int = 0) -> dict:
    """Redis CPU µs per batch of ``per_batch`` lines published to ``subscribers`` nodes (the
    PUBLISH script) or, with ``targets``, per SEND call carrying it to that many inboxes (each
    subscribed by one node)."""
    prefix = "twistedchat:BenchNet:"
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        port = free_port()
        redis = start_redis_server(REDIS_SERVER, port, Path(tmp), prefix=pinned([], cpu))
        selector = selectors.DefaultSelector()
        try:
            for n in range(targets or subscribers):
                sub = socket.create_connection(("127.0.0.1", port))
                sub.sendall(encode_command(
                    ("SUBSCRIBE", f"{prefix}inbox:t{n}" if targets else prefix + "events")))
                sub.setblocking(False)
                selector.register(sub, selectors.EVENT_READ)
            pub = socket.create_connection(("127.0.0.1", port))
            reader = hiredis.Reader()

            def replies(count: int) -> list[Any]:
                got: list[Any] = []
                while len(got) < count:
                    reply = reader.gets()
                    if reply is not False:
                        got.append(reply)
                        continue
                    for key, _ in selector.select(0):  # keep the subscribers drained
                        key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                    pub.settimeout(0.01)
                    try:
                        reader.feed(pub.recv(1 << 20))
                    except TimeoutError:
                        pass
                return got

            for node in ["n1", *(f"t{n}" for n in range(targets))]:
                pub.sendall(encode_command(("EVAL", scripts.REGISTER.source, 0, prefix, node,
                                            "i1", "e1")))  # fmt: skip
            script = scripts.SEND if targets else scripts.PUBLISH
            pub.sendall(encode_command(("SCRIPT", "LOAD", script.source)))
            replies(2 + targets)
            payload = batch_payload(per_batch, 0)
            if targets:
                one = encode_command(("EVALSHA", script.sha, 0, prefix, "n1", "i1", "e1",
                                      "t0", payload,  # the others as the node sends them: =ARGV[6]
                                      *(x for n in range(1, targets) for x in (f"t{n}", "=6"))))
            else:
                one = encode_command(("EVALSHA", script.sha, 0, prefix, "n1", "i1", payload))
            cpu0, t0 = proc_cpu_seconds(redis.pid), time.monotonic()
            for start in range(0, batches, PIPELINE):
                count = min(PIPELINE, batches - start)
                pub.sendall(one * count)
                assert all(isinstance(r, int) and r > 0 for r in replies(count))
            used, wall = proc_cpu_seconds(redis.pid) - cpu0, time.monotonic() - t0
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            selector.close()
            redis.kill()
            redis.wait(10)
            if redis.stdout is not None:
                redis.stdout.close()
    return {"subscribers": subscribers, "targets": targets, "lines_per_batch": per_batch,
            "batches": batches,
            "redis_us_per_batch": 1e6 * used / batches, "batches_per_s": batches / wall}  # fmt: skip


#: How long (s) the bystander node's CPU must stay still to count as done (and to apply a burst).
SETTLE = 0.5


def bystander_cost(routed: bool, members: int, per_batch: int, lines: int,
                   cpu: int | None = 0) -> dict:
    """A real node's CPU per line of another node's channel traffic it has no member in: the
    lines as events (``routed`` False: before) or to a third node's inbox (True: now)."""
    from bench.cluster import NETWORK, _chat_command, _redis_nodes, _spawn, _wait_for

    prefix = f"twistedchat:{NETWORK}:"
    with tempfile.TemporaryDirectory(prefix="bench-bystander-") as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        (tmp / "redis").mkdir()
        redis = start_redis_server(REDIS_SERVER, port, tmp / "redis", prefix=pinned([], cpu))
        url = f"redis://127.0.0.1:{port}/0"
        log = tmp / "node.out"
        node = _spawn(_chat_command(free_port(), tmp, "memory:", "--cluster", url, "--name",
                                    "c.bench"), cpu, log)  # fmt: skip
        try:
            _wait_for("the node", lambda: _redis_nodes(port) == 1, [node], [log])
            pub = socket.create_connection(("127.0.0.1", port))
            reader = hiredis.Reader()

            def call(*commands: tuple[Any, ...]) -> list[Any]:
                pub.sendall(b"".join(encode_command(c) for c in commands))
                got: list[Any] = []
                while len(got) < len(commands):
                    reply = reader.gets()
                    if reply is False:
                        reader.feed(pub.recv(1 << 20))
                    else:
                        got.append(reply)
                return got

            def beat() -> None:  # the two publishing nodes stay alive (a node silent 3 s goes)
                call(*(("EVAL", scripts.HEARTBEAT.source, 0, prefix, n, "i1", 3000, 100)
                       for n in (OTHER_NODE, "b.bench/1")))  # fmt: skip

            call(*(("EVAL", scripts.REGISTER.source, 0, prefix, n, "i1", "e1")
                   for n in (OTHER_NODE, "b.bench/1")))  # fmt: skip
            users = [[f"g{i}", f"u{i}", "remote.host", "bench", 1.0, None, "", {CHANNEL: ""}]
                     for i in range(members)]  # fmt: skip
            burst = json.dumps([["B", OTHER_NODE, users,
                                 [[CHANNEL, 1.0, "", "", 0.0, "nt", None, None, []]]]])
            call(("EVAL", scripts.PUBLISH.source, 0, prefix, OTHER_NODE, "i1", burst))
            time.sleep(SETTLE)
            script = scripts.SEND if routed else scripts.PUBLISH
            call(("SCRIPT", "LOAD", script.source))
            batches = max(1, lines // per_batch)
            cpu0, t0 = proc_cpu_seconds(node.pid), time.monotonic()
            last_beat = t0
            for start in range(0, batches, PIPELINE):
                payloads = [batch_payload(per_batch, (start + i) * per_batch)
                            for i in range(min(PIPELINE, batches - start))]  # fmt: skip
                replies = call(*(
                    ("EVALSHA", script.sha, 0, prefix, OTHER_NODE, "i1", "e1", "b.bench/1",
                     payload) if routed else
                    ("EVALSHA", script.sha, 0, prefix, OTHER_NODE, "i1", payload)
                    for payload in payloads))  # fmt: skip
                assert all(isinstance(r, int) and r > 0 for r in replies), replies[:3]
                if time.monotonic() - last_beat > 0.5:
                    beat()
                    last_beat = time.monotonic()
            wall = time.monotonic() - t0
            seen = -1.0
            while (now := proc_cpu_seconds(node.pid)) != seen:  # until it has applied all
                seen = now
                time.sleep(SETTLE)
            used = seen - cpu0
            idle0 = proc_cpu_seconds(node.pid)
            time.sleep(wall)
            idle = proc_cpu_seconds(node.pid) - idle0
            pub.close()
        finally:
            for proc in (node, redis):
                proc.terminate()
                proc.wait(15)
                if proc.stdout is not None:
                    proc.stdout.close()
    done = batches * per_batch
    return {"routed": routed, "members": members, "lines_per_batch": per_batch, "lines": done,
            "node_cpu_s": used, "idle_cpu_s": idle, "seconds": wall,
            "us_per_line": 1e6 * used / done, "idle_us_per_line": 1e6 * idle / done}


def fit(results: list[dict], per_batch: int) -> tuple[float, float]:
    """Least squares of µs per line against remote members at one batch size: (fixed, per member)."""
    points = [(r["members"], r["us_per_line"]) for r in results if r["lines_per_batch"] == per_batch]
    if len(points) < 2:
        return (points[0][1], 0.0) if points else (0.0, 0.0)
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))  # fmt: skip
    return mean_y - slope * mean_x, slope


def ints(text: str) -> list[int]:
    """``1,10,100`` as numbers."""
    return [int(x) for x in text.split(",")]


def print_rows(rows: list[dict], as_json: bool, columns: dict[str, Any]) -> int:
    """A markdown table of ``rows``, a cell per column's function (and the rows as JSON)."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---:|" * len(columns))
    for r in rows:
        print("| " + " | ".join(str(cell(r)) for cell in columns.values()) + " |")
    if as_json:
        print(json.dumps(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", default="1,10,100,1000", help="remote members, comma-separated")
    p.add_argument("--per-batch", default="1,10,100", help="lines per batch, comma-separated")
    p.add_argument("--lines", type=int, default=20_000, help="lines applied per measurement")
    p.add_argument("--reps", type=int, default=3, help="runs per cell (the best is kept)")
    p.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    p.add_argument("--redis", action="store_true",
                   help="measure Redis's cost per published batch instead")
    p.add_argument("--subscribers", default="1,4,16", help="with --redis: subscribed nodes")
    p.add_argument("--batches", type=int, default=20_000, help="with --redis: batches published")
    p.add_argument("--targets", default="",
                   help="with --redis: target inboxes per SEND call, comma-separated (instead of "
                        "PUBLISH to --subscribers)")
    p.add_argument("--sender", action="store_true",
                   help="measure the sending node's routing per line instead")
    p.add_argument("--nodes", default="1,2,8", help="with --sender: nodes with members")
    p.add_argument("--bystander", action="store_true",
                   help="measure a real node with no member in a busy channel, before and now")
    args = p.parse_args(argv)
    members, per_batch = ints(args.members), ints(args.per_batch)
    if args.bystander:
        rows = [bystander_cost(routed, m, b, args.lines)
                for m in members for b in per_batch for routed in (False, True)]
        return print_rows(rows, args.json, {
            "remote members": lambda r: f"{r['members']:,}",
            "lines per batch": lambda r: r["lines_per_batch"],
            "lines": lambda r: f"{r['lines']:,} " + ("to an inbox (now)" if r["routed"]
                                                     else "as events (before)"),
            "node CPU µs per line": lambda r: f"{r['us_per_line']:.2f}",
            "idle over as long": lambda r: f"{r['idle_us_per_line']:.2f}"})
    if args.sender:
        rows = [measure_sender(m, k, b, args.lines)
                for m in members for k in ints(args.nodes) if k <= m for b in per_batch]
        return print_rows(rows, args.json, {
            "remote members": lambda r: f"{r['members']:,}",
            "nodes with members": lambda r: r["nodes"],
            "lines per batch": lambda r: r["lines_per_batch"],
            "to inboxes µs/line": lambda r: f"{r['us_per_line_inboxes']:.2f}",
            "as events µs/line": lambda r: f"{r['us_per_line_events']:.2f}"})
    if args.redis:
        targets = ints(args.targets) if args.targets else []
        rows = ([redis_cost(0, b, args.batches, targets=k) for k in targets for b in per_batch]
                or [redis_cost(n, b, args.batches)
                    for n in ints(args.subscribers) for b in per_batch])
        return print_rows(rows, args.json, {
            "target inboxes" if targets else "subscribed nodes":
                lambda r: r["targets"] or r["subscribers"],
            "lines per batch": lambda r: r["lines_per_batch"],
            "Redis CPU µs per call": lambda r: f"{r['redis_us_per_batch']:.1f}",
            "calls/s (wall)": lambda r: f"{r['batches_per_s']:,.0f}"})
    results = run(members, per_batch, args.lines, args.reps)
    print(table(results))
    for b in sorted({r["lines_per_batch"] for r in results}):
        fixed, per_member = fit(results, b)
        print(f"{b} line(s)/batch: about {fixed:.2f} µs + {per_member:.3f} µs per remote member, "
              "per line")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does a burst of messages freeze the desktop client? Measured with the real window and daemon.

The daemon runs as its own process (``twistd -n chat``, flood control off, pinned to CPU 0); this
process (CPU 1) opens the client window offscreen, joins ``#burst``, and a second connection sends
N messages there in one write. While the window takes them in, a 5 ms Qt timer ticks: the longest
gap between two ticks is the longest the window could not answer the user (a "freeze").

Two ways of showing lines are compared in the same run: ``batched`` (the client as shipped: lines
queued and added to the view once per event-loop turn, in one edit) and ``per-line`` (the view
updated for every line, the naive way). A second part fills one conversation far past its
scrollback cap and reports the view's block count and the memory it took.

    python -m bench.client_burst                 # full run; rewrites its part of bench/README.md
    python -m bench.client_burst --quick --no-write
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_API", "pyqt6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- client-burst:begin -->", "<!-- client-burst:end -->"
TICK_MS = 5


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Heartbeat:
    """A timer that should fire every TICK_MS; the gaps between firings show UI stalls."""

    def __init__(self) -> None:
        from PyQt6.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        self.ticks.append(time.perf_counter())
        return [(b - a) * 1000 for a, b in zip(self.ticks, self.ticks[1:], strict=False)]


_BURSTS = itertools.count()


async def one_burst(reactor, port: int, lines: int, mode: str) -> dict[str, float]:
    """Open a window, receive ``lines`` messages in one burst, and time it."""
    # A channel of its own per burst: the daemon keeps history, which a shared channel would
    # replay into the next burst's window on join.
    channel = f"#burst-{mode}-{next(_BURSTS)}"
    from twisted.internet import endpoints, protocol, task

    from qtclient.window import MainWindow
    from twistedchat.client.link import SessionLink
    from twistedchat.client.session import LineAdded, Session

    async def until(condition, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError("timed out")
            await task.deferLater(reactor, 0.002, lambda: None)

    session = Session(f"viewer{mode[:1]}{lines}")
    link = SessionLink(reactor, session, "127.0.0.1", port, channels=[channel])
    window = MainWindow(session, link)
    window.resize(1000, 640)
    window.show()
    if mode == "per-line":
        window._schedule_flush = window._flush  # type: ignore[method-assign]
    await link.start()
    await until(lambda: session.find(channel) is not None and session.find(channel).joined)
    window.show_conversation(channel)

    received = 0

    def count(event) -> None:
        nonlocal received
        if isinstance(event, LineAdded) and event.line.nick == "sender":
            received += 1

    session.subscribe(count)
    sender = protocol.Protocol()
    await endpoints.connectProtocol(
        endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port), sender)
    sender.transport.write(b"NICK sender\r\nUSER s 0 * :s\r\nJOIN " + channel.encode() + b"\r\n")
    await until(lambda: session.find(channel).has_member("sender"))
    text = "lorem ipsum dolor sit amet, see https://example.org/page and say hi to viewer"
    burst = b"".join(b"PRIVMSG %s :%d %s\r\n" % (channel.encode(), n, text.encode())
                     for n in range(lines))
    heartbeat = Heartbeat()
    heartbeat.start()
    started = time.perf_counter()
    sender.transport.write(burst)
    await until(lambda: received >= lines and not window._pending)
    elapsed = time.perf_counter() - started
    gaps = heartbeat.stop()
    shown = window.views[id(session.find(channel))].document().blockCount()
    sender.transport.loseConnection()
    await link.stop("bench over")
    window.close()
    window.deleteLater()
    return {
        "seconds": elapsed,
        "lines_per_s": lines / elapsed,
        "max_gap_ms": max(gaps),
        "p99_gap_ms": (statistics.quantiles(gaps, n=100, method="inclusive")[98]
                       if len(gaps) > 1 else max(gaps)),
        "blocks": shown,
    }


def scrollback_fill(lines: int) -> dict[str, float]:
    """Push ``lines`` lines through one conversation with the default cap; memory stays flat."""
    from twisted.internet.task import Clock

    from qtclient.window import MainWindow
    from twistedchat.client.link import SessionLink
    from twistedchat.client.session import Session

    session = Session("viewer")
    window = MainWindow(session, SessionLink(Clock(), session, "127.0.0.1", 1))
    session.on_join("#fill", "viewer")
    view = window.views[id(session.find("#fill"))]
    samples: list[tuple[int, int]] = []
    chunk = 1000
    for done in range(0, lines, chunk):
        for n in range(chunk):
            session.on_message("someone", "#fill", f"line {done + n} of a long session")
        window.flush()
        samples.append((done + chunk, rss_kib()))
    cap = session.scrollback
    after_cap = [rss for count, rss in samples if count >= 2 * cap]
    window.close()
    return {
        "lines": lines, "cap": cap, "blocks": view.document().blockCount(),
        "model_lines": len(session.find("#fill").lines),
        "rss_growth_after_cap_kib": (after_cap[-1] - after_cap[0]) if after_cap else 0,
    }


def render(results: dict, args) -> str:
    rows = ["| lines in burst | view | time to show all | lines/s | longest UI stall "
            "| p99 stall | blocks in view |", "|---|---|---|---|---|---|---|"]
    for size, modes in results["bursts"].items():
        for mode, runs in modes.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append(
                f"| {size:,} | {mode} | {med['seconds'] * 1000:,.0f} ms "
                f"| {med['lines_per_s']:,.0f} | {med['max_gap_ms']:,.0f} ms "
                f"| {med['p99_gap_ms']:,.0f} ms | {med['blocks']:,.0f} |")
        batched = statistics.median(r["max_gap_ms"] for r in modes["batched"])
        naive = statistics.median(r["max_gap_ms"] for r in modes["per-line"])
        b_time = statistics.median(r["seconds"] for r in modes["batched"])
        n_time = statistics.median(r["seconds"] for r in modes["per-line"])
        rows.append(f"| {size:,} | ratio per-line / batched | {n_time / b_time:.1f}× "
                    f"| | {naive / batched:.1f}× | | |")
    fill = results["fill"]
    return "\n".join([
        f"Medians of {args.reps}, {time.strftime('%Y-%m-%d')}, on this 2-core machine (daemon on "
        "CPU 0, client on CPU 1, offscreen). The UI stall is the longest gap between two firings "
        f"of a {TICK_MS} ms timer while the burst was taken in.",
        "",
        *rows,
        "",
        f"Scrollback: {fill['lines']:,} lines into one conversation (cap {fill['cap']:,}): the "
        f"view holds {fill['blocks']:,} lines and the model {fill['model_lines']:,}; the "
        f"process grew by {fill['rss_growth_after_cap_kib']:,} KiB between the time it first "
        "held twice the cap and the end.",
    ])


def write_readme(text: str, readme: Path = README) -> None:
    current = readme.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current:
        current = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, current,
                         flags=re.S)
    else:
        current += "\n## The desktop client under a burst\n\n" + block + "\n"
    readme.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fill", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--readme", type=Path, default=README, help="the file to write into")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.reps, args.fill = "200", 1, 5000
    sizes = [int(s) for s in args.sizes.split(",")]

    from PyQt6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    import qreactor

    qreactor.install()
    from twisted.internet import defer, reactor

    from bench.servers import SERVERS, running

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    results: dict = {"bursts": {}, "fill": {}}
    outcome: dict = {}

    async def run_all() -> None:
        with running(SERVERS["twistedchat"], cpu=0) as server:
            for size in sizes:
                modes = results["bursts"].setdefault(size, {"batched": [], "per-line": []})
                for _ in range(args.reps):
                    for mode in ("batched", "per-line"):
                        modes[mode].append(await one_burst(reactor, server.port, size, mode))
                        print(f"{size} {mode}: {modes[mode][-1]}", flush=True)
        results["fill"] = scrollback_fill(args.fill)

    def go() -> None:
        d = defer.ensureDeferred(run_all())
        d.addErrback(lambda f: outcome.setdefault("error", f))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()
    del app
    if "error" in outcome:
        print(outcome["error"].getTraceback(), file=sys.stderr)
        return 1
    text = render(results, args)
    print(text)
    if not args.no_write:
        write_readme(text, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())

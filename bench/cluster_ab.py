"""Before and after in the same rounds: ``bench.cluster``'s measurement for variants of two trees.

A variant is ``CONFIG:TREE[:OPTION...]``: a configuration of ``bench.cluster`` (``single``,
``2-nodes``, ``workers-2``), the tree whose code its servers run (``this`` checkout, ``base``,
the one given with ``--baseline``, e.g. ``git archive main | tar -x -C /tmp/base``, or any other
exported tree's directory), and options
for every cluster node's ``twistd chat``. Each round runs every variant once, one after another,
so a ratio to the round's ``single`` run compares like with like on a shared machine::

    python -m bench.cluster_ab --baseline /tmp/base --load 20x100 --rounds 3 \\
        --variants single:this,2-nodes:base,2-nodes:this,2-nodes:this:--cluster-gather=0.002

Prints one JSON line per run (the fixed load's CPU µs per delivery in all and by process,
latencies and lines per Redis script call; the saturation run's CPU µs per delivery and
deliveries/s, meaningful with a longer ``--saturation-seconds``) and a summary of the fixed
load's same-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections import defaultdict
from pathlib import Path

from bench import cluster


def load_average() -> float:
    """The 1-minute load average now (the machine is shared: each row says how busy it was)."""
    return round(os.getloadavg()[0], 2)


def run(args: argparse.Namespace) -> list[dict]:
    """Every variant once per round; one row of fixed-load figures per run."""
    trees = {"this": cluster.REPO, "base": Path(args.baseline) if args.baseline else None}
    clients, rate = cluster.parse_loads(args.load)[0]
    rows = []
    try:
        for round_number in range(args.rounds):
            for variant in args.variants.split(","):
                config, tree, *options = variant.split(":")
                root = trees[tree] if tree in trees else Path(tree)
                if root is None:
                    raise SystemExit("a base variant needs --baseline")
                cluster.REPO = root
                settings = argparse.Namespace(
                    db="memory:", node_option=options, senders=args.senders,
                    fixed_seconds=args.fixed_seconds, saturation_seconds=args.saturation_seconds,
                    register_timeout=90.0)  # fmt: skip
                measured = cluster.measure(config, settings, clients, rate)
                fixed, saturation = measured["fixed"], measured.get("saturation") or {}
                row = {"round": round_number, "variant": variant,
                       "cpu_us_per_delivery": fixed["server_cpu_us_per_delivery"],
                       "by_process": [1e6 * cpu / max(1, fixed["received"])
                                      for cpu in fixed["server_cpu_s_each"]],
                       "p99_ms": fixed["latency_p99_ms"],
                       "hop_p99_ms": fixed["latency_remote_p99_ms"] - fixed["latency_local_p99_ms"],
                       "p50_same_across_ms": [fixed["latency_local_p50_ms"],
                                              fixed["latency_remote_p50_ms"]],
                       "load_average": load_average(),
                       "lines_per_call": fixed["sent"] / max(1, fixed["redis_script_calls"]),
                       "lost": fixed["lost"],
                       "saturation_cpu_us_per_delivery": saturation.get("server_cpu_us_per_delivery"),
                       "saturation_deliveries_per_s": saturation.get("deliveries_per_s")}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        cluster.REPO = trees["this"]
    return rows


def summary(rows: list[dict]) -> str:
    """Each variant's CPU per delivery as a ratio to its round's ``single``: median and range."""
    ratios: dict[str, list[float]] = defaultdict(list)
    singles = {r["round"]: r for r in rows if r["variant"].startswith("single:")}
    for row in rows:
        single = singles.get(row["round"])
        if single is not None and row is not single:
            ratios[row["variant"]].append(row["cpu_us_per_delivery"] / single["cpu_us_per_delivery"])
    return "\n".join(f"{variant}: {statistics.median(values):.2f}× one process "
                     f"({min(values):.2f}–{max(values):.2f}×, {len(values)} rounds)"
                     for variant, values in ratios.items())  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--baseline", help="the tree the base variants run (an exported checkout)")
    p.add_argument("--variants", default="single:this,2-nodes:base,2-nodes:this")
    p.add_argument("--load", default="20x100", help="CLIENTSxRATE, as bench.cluster --loads")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--fixed-seconds", type=float, default=5.0)
    p.add_argument("--saturation-seconds", type=float, default=1.0,
                   help="the generator always ends with a saturation run; kept short")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    rows = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

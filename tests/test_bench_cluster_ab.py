"""bench.cluster_ab's summary: each variant against the same round's one process."""

from __future__ import annotations

from bench.cluster_ab import summary


def test_ratios_are_taken_within_each_round() -> None:
    rows = [
        {"round": 0, "variant": "single:this", "cpu_us_per_delivery": 10.0},
        {"round": 0, "variant": "2-nodes:base", "cpu_us_per_delivery": 30.0},
        {"round": 1, "variant": "single:this", "cpu_us_per_delivery": 5.0},
        {"round": 1, "variant": "2-nodes:base", "cpu_us_per_delivery": 20.0},
    ]
    assert summary(rows) == "2-nodes:base: 3.50× one process (3.00–4.00×, 2 rounds)"

"""Unit test: the generated performance doc's run-to-run table (bench/report.py)."""

from __future__ import annotations

import json
from typing import Any

from bench.report import (
    MARKER,
    RESULTS,
    SPREAD_MARKER,
    render,
    targets_section,
    throttled_section,
)


def _result(create: float, delete: float, floor_create: float, floor_delete: float) -> Any:
    return {
        "create": {"seconds": create},
        "delete": {"seconds": delete},
        "floor": {
            "create_seconds": floor_create,
            "delete_seconds": floor_delete,
            "create_ratio": round(create / floor_create, 3),
            "delete_ratio": round(delete / floor_delete, 3),
        },
    }


def test_each_run_is_a_row_of_controller_over_floor() -> None:
    runs = [
        {"large": _result(20.0, 12.0, 16.0, 8.0)},
        {"enterprise": _result(2.0, 1.0, 1.6, 0.8), "large": _result(18.0, 10.0, 15.0, 9.0)},
    ]
    text = render(f"before\n{SPREAD_MARKER}\nafter", {}, spread=runs)
    rows = text.splitlines()
    assert rows[0] == "before"
    assert rows[-1] == "after"
    assert rows[3] == "| 1 | - | - | 20.00 / 16.00 = 1.25 | 12.00 / 8.00 = 1.50 |"
    assert rows[4] == (
        "| 2 | 2.00 / 1.60 = 1.25 | 1.00 / 0.80 = 1.25 | 18.00 / 15.00 = 1.20 | "
        "10.00 / 9.00 = 1.11 |"
    )


def test_server_costs_become_one_sentence_of_the_prose() -> None:
    costs = {
        "ms_per_call": {"AttachNetworkInterface (one)": 5.0, "DescribeInstances, 100": 650.0},
        "attach_calls_equivalent": {
            "AttachNetworkInterface (one)": 1.0,
            "DescribeInstances, 100": 130.0,
        },
    }
    text = render("costs: <!-- server_costs -->", {}, costs=costs)
    assert text == "costs: one attach 5.0 ms; DescribeInstances, 100 650 ms (130 attaches)."


def test_throttled_is_judged_against_the_minimum_for_its_share_once_there_is_one() -> None:
    throttle = {
        "theoretical_min_seconds": 50.0,
        "mutating_calls_needed": 300,
        "aws_mutating_bucket": "50 burst, 5 per s",
        "ratio_to_theoretical": 2.2,
        "request_limit_exceeded": 0,
        "ec2_requests": 320,
        "request_limit_exceeded_share": 0.0,
    }
    shared = {
        **throttle,
        "client_paced_min_seconds": 123.6,
        "client_mutating_bucket": "22 burst, 2.25 per s",
        "budget_share": 0.5,
        "ratio_to_share_minimum": 0.99,
    }
    for figures, verdict in (
        (throttle, "**missed**"),
        (shared, "met"),
    ):
        results = {"throttled": {"enis": 100, "create": {"seconds": 110.0}, "throttle": figures}}
        text = targets_section(results)
        (target,) = [line for line in text.splitlines() if line.startswith("| Throttled ≤ 1.15")]
        assert target.endswith(f"| {verdict} |")
    table = throttled_section(results)
    assert "minimum for its share" in table
    assert "123.6 s (at 22 burst, 2.25 per s: 0.5 of the product buckets)" in table
    assert "**0.990**" in table


def _latency(create_ratio: float, delete_ratio: float, *, leaks: int) -> dict[str, Any]:
    """Large's saved result, renamed and re-figured as a Latency run."""
    r = json.loads((RESULTS / "large.json").read_text())
    realism = "AWS rules on, latencies attach → attached 2 s, detach → available 5 s"
    return {
        **r,
        "name": "latency",
        "title": "Realistic latency: 100 nodes x 10 ENIs, AWS-like latencies",
        "settings": {**r["settings"], "realism": realism},
        "floor": {
            **r["floor"],
            "create_ratio": create_ratio,
            "delete_ratio": delete_ratio,
            "describes": 180.5,
        },
        "leaks": leaks,
        "correct": leaks == 0,
        "idle": None,
    }


def test_latency_is_a_scenario_row_a_floor_row_and_judged_at_1_2() -> None:
    for ratios, leaks, verdicts in (
        ((1.19, 1.2), 0, ("met", "met", "met")),
        ((1.22, 1.1), 2, ("**missed**", "met", "**missed**")),  # 1.25 would have met
    ):
        text = render(MARKER, {"latency": _latency(*ratios, leaks=leaks)})
        lines = text.splitlines()
        assert sum(line.startswith("| Realistic latency: 100 nodes") for line in lines) == 1
        assert sum(line.startswith("| Realistic latency | ") for line in lines) == 2  # calls, floor
        (floor_row,) = [
            line
            for line in lines
            if line.startswith("| Realistic latency | ") and "(concurrency" in line
        ]
        assert f"**{ratios[0]:.2f}**" in floor_row
        assert "under attach → attached 2 s, detach → available 5 s; its floor" in text
        assert "(180.5 describes per floor run)" in text
        targets = [
            next(line for line in lines if line.startswith(f"| {name}"))
            for name in (
                "controller/floor ≤ 1.2, Latency create",
                "controller/floor ≤ 1.2, Latency delete",
                "Latency: 100% success",
            )
        ]
        assert [t.rsplit("|", 2)[1].strip() for t in targets] == list(verdicts)
    # without a Latency result, none of its rows
    large = render(MARKER, {"large": json.loads((RESULTS / "large.json").read_text())})
    assert "| Large: 100 nodes" in large
    assert "atency" not in large

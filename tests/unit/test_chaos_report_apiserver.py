"""Unit test: the API-server chaos cases' sections of docs/reliability.md
(bench/chaos_report.py) show their own columns, from the rows' details."""

from __future__ import annotations

from typing import Any

from bench.chaos_report import case_section


def _row(case: str, seed: int, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "case": case,
        "seed": seed,
        "passed": True,
        "leaks": 0,
        "duplicates": 0,
        "converge_seconds": 1.5,
        "extra_mutating_calls": 0,
        "seconds": 30.04,
        "details": details,
    }


def _table(section: str) -> list[str]:
    return [line for line in section.splitlines() if line.startswith("|")]


def test_restart_rows_show_each_stop() -> None:
    restart = {
        "restarts": [
            {"signal": "SIGKILL", "outage_s": 5.12, "converge_s": 0.4, "informer_lag_s": 0.1},
            {
                "signal": "SIGTERM, 2.0s grace",
                "outage_s": 7.0,
                "converge_s": 3.47,
                "informer_lag_s": None,
            },
        ]
    }
    head, _, row = _table(case_section("apiserver-restart", [_row("x", 2, restart)]))
    assert "| informer lag (s) | run (s) |" in head
    assert row == (
        "| 2 | yes | 0 | 0 | 1.50 | 0 | SIGKILL / SIGTERM, 2.0s grace | 5.1 / 7.0 | "
        "0.40 / 3.47 | 0.10 / - | 30.0 |"
    )


def test_watch_cut_rows_count_relists_beyond_the_410s() -> None:
    details = {
        "watch_cuts": 21,
        "expired_injected": 7,
        "label_flips": 20,
        "subnet_flips": 5,
        "traffic": {
            "nodes": {"lists": 6, "watches": 13, "gone": 5},
            "nodeenis": {"lists": 4, "watches": 16, "gone": 2},
        },
    }
    _, _, row = _table(case_section("watch-cuts", [_row("x", 1, details)]))
    # nodes: 6 lists for 5 410s (none extra); nodeenis: 4 lists for 2 (one extra)
    assert row == (
        "| 1 | yes | 0 | 0 | 1.50 | 0 | 21 | 7 | 6 / 4 | 13 / 16 | 5 / 2 | 1 | 25 | 30.0 |"
    )


def test_fault_rows_show_outcomes_and_early_retries() -> None:
    details = {
        "injected": {"429": 10, "hang": 14},
        "healthy_converged_s": 9.4,
        "longest_busy_with_faults": {"seconds": 5.3, "key": "t-5"},
        "after_429": {"retried": 7, "sooner_than_retry_after": 7},
    }
    _, _, row = _table(case_section("api-faults", [_row("x", 3, details)]))
    assert row == "| 3 | yes | 0 | 0 | 1.50 | 0 | 10 / 0 / 14 | 9.40 | 5.30 | 7 of 7 | 30.0 |"

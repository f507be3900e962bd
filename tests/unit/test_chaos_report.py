"""bench/chaos_report.py: each case's rows become its own table, with its columns.

docs/reliability.md is generated from the committed rows only, so what a row
holds must show: a wrong key here would silently print '-' for a figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.chaos_report import load, render

STORM: dict[str, Any] = {
    "case": "ec2-storm",
    "seed": 1,
    "passed": True,
    "leaks": 0,
    "duplicates": 0,
    "converge_seconds": 51.7,
    "extra_mutating_calls": 1348,
    "seconds": 101.2,
    "violations": [],
    "details": {
        "attached": 200,
        "teardown_seconds": 23.67,
        "clean_converge_seconds": 14.43,
        "clean_teardown_seconds": 7.72,
        "mutating": {"storm": 2348, "clean": 1000, "extra": 1348},
        "injected_timeouts": {"AttachNetworkInterface": 16, "CreateNetworkInterface": 9},
        "client_read_timeouts": 25,
        "answered_behind_held_answers": {"InvalidNetworkInterfaceID.NotFound": 2},
        "calls": {
            "clean_rollout": {"CreateNetworkInterface": 200},
            "rollout": {"CreateNetworkInterface": 472},
            "clean_teardown": {"DeleteNetworkInterface": 200},
            "teardown": {"DeleteNetworkInterface": 310},
        },
        "answered_by_code": {"RequestLimitExceeded": 1035, "InternalError": 71},
        "retries_by_code": {"RequestLimitExceeded": 1026, "InternalError": 71},
        "given_up_by_code": {"RequestLimitExceeded": 9},
    },
}
FUZZ: dict[str, Any] = {
    "case": "fuzz",
    "seed": 2,
    "passed": False,
    "leaks": 0,
    "duplicates": 0,
    "converge_seconds": 3.1,
    "extra_mutating_calls": 0,
    "seconds": 80.0,
    "violations": ["something was wrong"],
    "details": {
        "specs_tried": 500,
        "accepted": 390,
        "invalid_spec": 120,
        "invalid_spec_events": 120,
        "lookup_errors": {"SubnetNotFound": 250, "SecurityGroupNotFound": 20},
        "mutating_calls_by_fuzzed": 0,
        "valid_converged": 1,
        "valid_nodeenis": 1,
        "controller_live": [True, ""],
    },
}


def _write(tmp_path: Path, *rows: dict[str, Any]) -> Path:
    for row in rows:
        (tmp_path / f"{row['case']}-seed{row['seed']}.json").write_text(json.dumps(row))
    return tmp_path


def test_each_case_gets_its_columns_and_smoke_rows_are_left_out(tmp_path: Path) -> None:
    smoke = {**STORM, "case": "ec2-storm-smoke"}
    doc = render(load(_write(tmp_path, STORM, FUZZ, smoke)))
    assert "ec2-storm-smoke" not in doc
    assert (
        "| seed | passed | leaks | duplicates | converge (s) | extra mutating | ENIs attached"
        in doc
    )
    assert (
        "| 1 | yes | 0 | 0 | 51.70 | 1348 | 200 | 23.67 | 14.43 / 7.72 | 2348 / 1000 | 25 |" in doc
    )
    assert "| specs | accepted | InvalidSpec (with event) | lookup failures" in doc
    assert (
        "| 2 | **no** | 0 | 0 | 3.10 | 0 | 500 | 390 | 120 (120) | "
        "SecurityGroupNotFound 20, SubnetNotFound 250 | 0 | 1 of 1 | yes | 80.0 |"
    ) in doc
    assert "- something was wrong" in doc


def test_the_storm_shows_calls_per_action_and_what_each_code_led_to(tmp_path: Path) -> None:
    doc = render(load(_write(tmp_path, STORM)))
    assert "| CreateNetworkInterface | 200 | 472 | 0 | 0 |" in doc
    assert "| DeleteNetworkInterface | 0 | 0 | 200 | 310 |" in doc
    assert "| RequestLimitExceeded | 1035 | 1026 | 9 |" in doc
    assert "| InternalError | 71 | 71 | 0 |" in doc
    assert "25 seen, 25 held: AttachNetworkInterface 16, CreateNetworkInterface 9" in doc
    assert "(InvalidNetworkInterfaceID.NotFound 2)" in doc

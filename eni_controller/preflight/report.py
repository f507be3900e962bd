"""The preflight's findings and their rendering: one row per check, an exit code."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    PASS = "PASS"
    WARN = "WARN"  # not proven either way: said, never fails the check
    FAIL = "FAIL"


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    check: str
    outcome: Outcome
    detail: str


def passed(check: str, detail: str) -> Finding:
    return Finding(check=check, outcome=Outcome.PASS, detail=detail)


def warned(check: str, detail: str) -> Finding:
    return Finding(check=check, outcome=Outcome.WARN, detail=detail)


def failed(check: str, detail: str) -> Finding:
    return Finding(check=check, outcome=Outcome.FAIL, detail=detail)


def exit_code(findings: Iterable[Finding]) -> int:
    """1 if any check failed, else 0 (warnings do not fail the preflight)."""
    return 1 if any(f.outcome is Outcome.FAIL for f in findings) else 0


def _counts(findings: Sequence[Finding]) -> dict[Outcome, int]:
    return {o: sum(f.outcome is o for f in findings) for o in Outcome}


def render_json(findings: Sequence[Finding]) -> str:
    """`check -o json`: the rows of the table and its totals, for a pipeline to read."""
    counts = _counts(findings)
    return json.dumps(
        {
            "findings": [
                {"check": f.check, "result": f.outcome.value, "detail": f.detail} for f in findings
            ],
            "passed": counts[Outcome.PASS],
            "warnings": counts[Outcome.WARN],
            "failed": counts[Outcome.FAIL],
            "exitCode": exit_code(findings),
        },
        indent=2,
    )


def render_table(findings: Sequence[Finding]) -> str:
    headers = ("CHECK", "RESULT", "DETAIL")
    rows = [(f.check, f.outcome.value, f.detail) for f in findings]
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(2)]
    lines = [
        f"{check:<{widths[0]}}  {result:<{widths[1]}}  {detail}".rstrip()
        for check, result, detail in (headers, *rows)
    ]
    n_pass, n_warn, n_fail = _counts(findings).values()
    return "\n".join([*lines, "", f"{n_pass} passed, {n_warn} warnings, {n_fail} failed"])

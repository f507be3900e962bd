"""The seeded case runner of the chaos suite (tests/chaos/).

A chaos case is replayable and leaves a record:

- it takes one integer seed, prints `CHAOS seed=<n> case=<name>` first, and
  draws every random choice from `case.rng` (a `random.Random(seed)`), so
  `CHAOS_SEED=<n>` or `pytest tests/chaos --chaos-seed <n>` replays it;
- it is bounded in time: `chaos_case` wraps the body in `asyncio.timeout(bound)`;
- it writes one JSON result row per run, passed or not, to
  `bench/results/chaos/<case>-seed<n>.json` (case, seed, leaks, duplicates,
  seconds to converge, extra mutating calls, ...), which `bench.chaos_report`
  turns into docs/reliability.md. A later run of the same case and seed
  replaces its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "bench" / "results" / "chaos"
DEFAULT_SEEDS: tuple[int, ...] = (1, 2, 3)
SEED_ENV = "CHAOS_SEED"
# A clean run's mutating calls per ENI: the baseline extra calls are counted against.
ROLLOUT_CALLS_PER_ENI = 3  # Create, Attach, Modify(DeleteOnTermination)
TEARDOWN_CALLS_PER_ENI = 2  # Detach, Delete


def parse_seeds(text: str | None) -> tuple[int, ...]:
    """'7' or '1,2,3' as seeds; None or '' gives the default list."""
    if not text:
        return DEFAULT_SEEDS
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


def seeds(option: str | None) -> tuple[int, ...]:
    """The seeds to run: the command-line option, else $CHAOS_SEED, else the defaults."""
    return parse_seeds(option or os.environ.get(SEED_ENV))


@dataclass
class ChaosResult:
    """One case run's row. `leaks` and `duplicates` are ENIs; `converge_seconds`
    is from the last disturbance to the invariants holding (None: never);
    `extra_mutating_calls` are mutating EC2 calls beyond what the net change
    needs."""

    case: str
    seed: int
    passed: bool = False
    leaks: int | None = None
    duplicates: int | None = None
    converge_seconds: float | None = None
    extra_mutating_calls: int | None = None
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    finished_at: str = ""


@dataclass
class ChaosCase:
    """What a case body works with: its seed's `rng` and the `result` to fill."""

    name: str
    seed: int
    bound: float
    rng: random.Random
    result: ChaosResult
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def result_path(case: str, seed: int, results_dir: Path = RESULTS_DIR) -> Path:
    return results_dir / f"{case}-seed{seed}.json"


@contextlib.asynccontextmanager
async def chaos_case(
    name: str, seed: int, *, bound: float, results_dir: Path = RESULTS_DIR
) -> AsyncIterator[ChaosCase]:
    """Run one case: banner, time bound, result row written however it ends.

    The body sets the result's figures; `passed` is True only if it returned.
    """
    print(f"CHAOS seed={seed} case={name}", flush=True)
    case = ChaosCase(
        name=name,
        seed=seed,
        bound=bound,
        rng=random.Random(seed),
        result=ChaosResult(case=name, seed=seed),
    )
    try:
        async with _bounded(bound, name, seed):
            yield case
        case.result.passed = True
    finally:
        case.result.seconds = round(case.elapsed(), 2)
        case.result.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_result(case.result, results_dir)
        print(f"CHAOS result {json.dumps(summary(case.result))}", flush=True)


@contextlib.asynccontextmanager
async def _bounded(bound: float, name: str, seed: int) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(bound) as scope:
            yield
    except TimeoutError:
        if not scope.expired():
            raise  # a timeout of the body's own
        raise AssertionError(
            f"chaos case {name} (seed {seed}) overran its {bound:.0f}s bound"
        ) from None


def write_result(result: ChaosResult, results_dir: Path = RESULTS_DIR) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = result_path(result.case, result.seed, results_dir)
    path.write_text(json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return path


def summary(result: ChaosResult) -> dict[str, Any]:
    keys: Sequence[str] = (
        "case",
        "seed",
        "passed",
        "leaks",
        "duplicates",
        "converge_seconds",
        "extra_mutating_calls",
    )
    row = asdict(result)
    return {k: row[k] for k in keys}

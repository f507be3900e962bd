"""`make bench`'s performance suite: the real path, at the scale others extrapolate.

Runs the controller as its own process against the real local kube-apiserver
and the moto EC2 server over HTTP, scenario by scenario (the seed's Basic,
Concurrent, ScaleUp, Burst and Cleanup; Enterprise 10 x 10; Large 100 x 10 with
its Idle resyncs and the floor; Latency, Large under AWS-like latencies, with
its floor under the same; Throttled). Prints each scenario's figures,
saves one JSON per scenario under bench/results/suite/ and regenerates
docs/performance.md from all results.

    python -m bench.suite [--scenarios basic,large,...] [--nodes 100 --enis-per-node 10]
        [--max-concurrent-reconciles 5 --max-concurrent-eni-cleanup 3] [--timeout 900]
        [--out bench/results/suite]

Every parameter also reads an environment variable (BENCH_NODES,
BENCH_ENIS_PER_NODE, BENCH_SCENARIOS, MAX_CONCURRENT_RECONCILES,
MAX_CONCURRENT_ENI_CLEANUP, BENCH_TIMEOUT), as the seed's framework did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import report
from bench.scenarios import (
    MAX_SUBNETS,
    SEED_SCENARIOS,
    Scenario,
    ScenarioResult,
    Settings,
    run_scenario,
    scale_scenarios,
    start_env,
)
from tests.harness.ec2world import FAKE_CREDENTIALS

DEFAULT_OUT = Path("bench/results/suite")
_DEFAULTS = Settings()
ALL = "basic,concurrent,scaleup,burst,cleanup,enterprise,large,latency,throttled"


def catalogue(*, nodes: int, enis_per_node: int) -> dict[str, Scenario]:
    return {s.name: s for s in SEED_SCENARIOS} | scale_scenarios(
        nodes=nodes, enis_per_node=enis_per_node
    )


async def run_scenarios(
    scenarios: Sequence[Scenario], settings: Settings, *, state: Path
) -> list[ScenarioResult]:
    """Start the servers once, run each scenario on them, stop them."""
    env = await start_env(state)
    try:
        results = []
        for scenario in scenarios:
            started = time.perf_counter()
            print(f"--- {scenario.title}", flush=True)
            result = await run_scenario(env, scenario, settings)
            print(summary(result) + f" [{time.perf_counter() - started:.0f}s]", flush=True)
            results.append(result)
        return results
    finally:
        await env.close()


def summary(r: ScenarioResult) -> str:
    line = (
        f"{r.name}: {r.enis} ENIs; apply→Ready {r.create.seconds:.2f}s "
        f"({r.create.enis_per_second:.1f} ENIs/s, attached p50/p95/max "
        f"{r.create.time_to_attached.get('p50')}/{r.create.time_to_attached.get('p95')}/"
        f"{r.create.time_to_attached.get('max')}s); delete→gone {r.delete.seconds:.2f}s; "
        f"ok {r.create.succeeded + (r.initial.succeeded if r.initial else 0)}/{r.enis}, "
        f"correct {r.correct}, duplicates {r.duplicates}, leaks {r.leaks}; "
        f"mutating/ENI {r.create.mutating_per_eni}+{r.delete.mutating_per_eni}, "
        f"describes/ENI {r.create.describes_per_eni}+{r.delete.describes_per_eni}, "
        f"status writes/ENI {r.create.status_writes_per_eni}; "
        f"CPU {r.controller_cpu_seconds}s, peak RSS {r.peak_rss_mb} MB"
    )
    if r.floor:
        line += (
            f"; floor {r.floor['create_seconds']}s/{r.floor['delete_seconds']}s, ratio "
            f"{r.floor['create_ratio']}/{r.floor['delete_ratio']}"
        )
    if r.throttle:
        line += (
            f"; throttled {r.throttle['ratio_to_theoretical']}x the minimum "
            f"{r.throttle['theoretical_min_seconds']}s, RequestLimitExceeded "
            f"{r.throttle['request_limit_exceeded']}"
        )
    if r.idle:
        line += (
            f"; idle per resync: mutating {r.idle.mutating_per_resync}, describes "
            f"{r.idle.describes_per_resync}, status writes {r.idle.status_writes_per_resync}"
        )
    return line


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios",
        default=os.environ.get("BENCH_SCENARIOS", ALL),
        help=f"comma-separated, from {ALL}",
    )
    parser.add_argument("--nodes", type=int, default=_env_int("BENCH_NODES", 100))
    parser.add_argument(
        "--enis-per-node",
        type=int,
        default=_env_int("BENCH_ENIS_PER_NODE", 10),
        choices=range(1, MAX_SUBNETS + 1),
        metavar=f"1..{MAX_SUBNETS}",
    )
    parser.add_argument(
        "--max-concurrent-reconciles",
        type=int,
        default=_env_int("MAX_CONCURRENT_RECONCILES", _DEFAULTS.max_concurrent_reconciles),
    )
    parser.add_argument(
        "--max-concurrent-eni-cleanup",
        type=int,
        default=_env_int("MAX_CONCURRENT_ENI_CLEANUP", _DEFAULTS.max_concurrent_eni_cleanup),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("BENCH_TIMEOUT", _DEFAULTS.timeout_seconds)),
        help="seconds a phase may take before the run fails",
    )
    parser.add_argument(
        "--reconcile-period", type=int, default=_DEFAULTS.reconcile_period_seconds, metavar="S"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--no-report", action="store_true", help="do not regenerate docs/performance.md"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    known = catalogue(nodes=args.nodes, enis_per_node=args.enis_per_node)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)} (known: {ALL})")
    settings = Settings(
        max_concurrent_reconciles=args.max_concurrent_reconciles,
        max_concurrent_eni_cleanup=args.max_concurrent_eni_cleanup,
        timeout_seconds=args.timeout,
        reconcile_period_seconds=args.reconcile_period,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, dict[str, Any]] = {}
    scenarios = [known[n] for n in names]
    if scenarios:
        with tempfile.TemporaryDirectory(prefix="eni-bench-") as state:
            for result in asyncio.run(run_scenarios(scenarios, settings, state=Path(state))):
                outputs[result.name] = result.to_json()
    for name, figures_json in outputs.items():
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(figures_json, indent=2) + "\n")
        print(f"saved {path}")
    if not args.no_report:
        path = report.write()
        print(f"regenerated {path}")


if __name__ == "__main__":
    main()

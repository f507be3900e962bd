"""Neighbour: the Throttled rollout while another client of the account spends
half of its mutating bucket.

EC2's request buckets are per account and Region: the VPC CNI, Karpenter and
every script in the account draw on the ones the controller draws on. A
controller that paces at the whole bucket starves them (and draws throttles
it did not cause). Here the realism layer throttles with AWS's default
buckets (mutating: 50 tokens, 5 per second) for every caller together, and a
second client with the same access key (the same account) sends CreateTags
at a steady 2.5 per second (half the bucket's refill), open loop: one request
every 0.4 s whatever the answers, none retried, as an independent program
would. Meanwhile the controller, as its own process with the product's
defaults (EC2_* buckets at 90% of AWS's, EC2_BUDGET_SHARE 0.5: 22 tokens, 2.25
per second), rolls out the Throttled scenario's shape.

Reported: the neighbour's achieved rate (answers that were not throttled, per
second of the rollout) against its demand and its throttled answers; the
controller's throttled answers (all RequestLimitExceeded answers less the
neighbour's), its apply → Ready time and the bucket arithmetic for its share,
(3 x ENIs - 22) / 2.25 s.

    python -m bench.neighbour [--nodes 20 --enis-per-node 10] [--rate 2.5]
        [--out bench/results/neighbour.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from bench import measure, report
from bench.scenarios import (
    BENCH_ACTIONS,
    MAX_SUBNETS,
    PRODUCT_LIMITS,
    SCENARIO_LABEL,
    Scenario,
    ScenarioRun,
    Settings,
    bucket_text,
    minimum_seconds,
    scale_scenarios,
    start_env,
)
from eni_controller.aws.ratelimit import AWS_DEFAULT_LIMITS, DEFAULT_BUDGET_SHARE
from tests.harness.ec2world import FAKE_CREDENTIALS, World
from tests.harness.realism.control import RealismControl

DEFAULT_OUT: Final = Path("bench/results/neighbour.json")
NEIGHBOUR_ACTION: Final = "CreateTags"  # mutating, and never the controller's in this scenario
THROTTLED: Final = "RequestLimitExceeded"
WARM_UP_SECONDS: Final = 5.0  # the neighbour alone first: its steady state before the rollout
TARGETS: Final = {
    "neighbour_rate_share": ("neighbour ≥ 90% of its demanded rate", 0.90, ">="),
    "neighbour_throttled_share": ("neighbour ≤ 1% throttled answers", 0.01, "<="),
    "controller_throttled_share": ("controller ≤ 1% throttled answers", 0.01, "<="),
    "ratio_to_share_minimum": ("controller ≤ 1.1 x the bucket minimum for its share", 1.1, "<="),
}


@dataclass(frozen=True, slots=True)
class Answer:
    sent_at: float  # perf_counter
    code: str | None  # None: success; else the AWS error code (or the exception's name)


@dataclass(kw_only=True)
class NeighbourFigures:
    demanded_per_second: float
    sent: int
    answered_ok: int
    throttled: int
    other_errors: dict[str, int]
    seconds: float
    achieved_per_second: float
    rate_share: float  # achieved / demanded
    throttled_share: float


@dataclass(kw_only=True)
class ControllerFigures:
    enis: int
    succeeded: int
    seconds: float
    mutating_calls_needed: int
    client_mutating_bucket: str
    share_min_seconds: float
    ratio_to_share_minimum: float | None  # None: the burst alone covers the rollout
    ec2_requests: int
    throttled: int
    throttled_share: float
    ec2_calls: dict[str, int]


@dataclass(kw_only=True)
class NeighbourResult:
    shape: str
    aws_mutating_bucket: str
    budget_share: float
    neighbour: NeighbourFigures
    controller: ControllerFigures
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    load: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Neighbour:
    """Another program of the account: CreateTags on the VPC every 1/rate s."""

    def __init__(self, world: World, *, rate: float) -> None:
        self._world = world
        self.rate = rate
        self.answers: list[Answer] = []
        self._stopping = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Neighbour]:
        config = BotoConfig(retries={"total_max_attempts": 1}, max_pool_connections=32)
        async with get_session().create_client(
            "ec2",
            region_name=self._world.region,
            endpoint_url=self._world.endpoint,
            config=config,
            **FAKE_CREDENTIALS,  # the controller's key: the same account, the same buckets
        ) as ec2:
            task = asyncio.create_task(self._send(ec2))
            try:
                yield self
            finally:
                self._stopping.set()
                await task

    async def _send(self, ec2: Any) -> None:
        start = time.perf_counter()
        requests: set[asyncio.Task[None]] = set()
        n = 0
        while not self._stopping.is_set():
            due = start + n / self.rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, due - time.perf_counter()))
                break
            task = asyncio.create_task(self._one(ec2, n))
            requests.add(task)
            task.add_done_callback(requests.discard)
            n += 1
        await asyncio.gather(*requests)

    async def _one(self, ec2: Any, n: int) -> None:
        sent = time.perf_counter()
        code: str | None = None
        try:
            await ec2.create_tags(
                Resources=[self._world.vpc_id], Tags=[{"Key": "neighbour", "Value": str(n)}]
            )
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", "Unknown"))
        except Exception as err:  # counted, never retried: an independent client
            code = type(err).__name__
        self.answers.append(Answer(sent_at=sent, code=code))

    def figures(self, since: float, until: float) -> NeighbourFigures:
        window = [a for a in self.answers if since <= a.sent_at < until]
        seconds = until - since
        ok = sum(1 for a in window if a.code is None)
        throttled = sum(1 for a in window if a.code == THROTTLED)
        other: dict[str, int] = {}
        for a in window:
            if a.code not in (None, THROTTLED):
                other[str(a.code)] = other.get(str(a.code), 0) + 1
        achieved = ok / seconds if seconds else 0.0
        return NeighbourFigures(
            demanded_per_second=self.rate,
            sent=len(window),
            answered_ok=ok,
            throttled=throttled,
            other_errors=other,
            seconds=round(seconds, 2),
            achieved_per_second=round(achieved, 3),
            rate_share=round(achieved / self.rate, 4),
            throttled_share=round(throttled / len(window), 4) if window else 0.0,
        )


def _judge(result: NeighbourResult) -> None:
    values: dict[str, float | None] = {
        "neighbour_rate_share": result.neighbour.rate_share,
        "neighbour_throttled_share": result.neighbour.throttled_share,
        "controller_throttled_share": result.controller.throttled_share,
        "ratio_to_share_minimum": result.controller.ratio_to_share_minimum,
    }
    result.targets = {}
    for key, (text, limit, op) in TARGETS.items():
        value = values[key]
        if value is not None:
            met = value >= limit if op == ">=" else value <= limit
            result.targets[key] = {"target": text, "value": value, "met": met}


async def run(
    scenario: Scenario, settings: Settings, *, state: Path, rate: float
) -> NeighbourResult:
    load = {"start": measure.loadavg()}
    env = await start_env(state)
    run_ = ScenarioRun(env, scenario, settings)
    try:
        env.realism.reset()
        env.realism.aws_rules()
        await run_.add_nodes(scenario.nodes)
        await run_.start_controller(product_buckets=True)
        env.realism.configure(throttle=RealismControl.AWS_THROTTLE)
        bodies = run_.nodeeni_bodies()
        expected = {b["metadata"]["name"]: scenario.nodes for b in bodies}
        neighbour = Neighbour(env.world, rate=rate)
        async with (
            measure.NodeENITracker(
                api=env.api, label_selector=f"{SCENARIO_LABEL}={scenario.name}"
            ) as tracker,
            neighbour.running(),
        ):
            await asyncio.sleep(WARM_UP_SECONDS)
            before = run_.snapshot()
            start = time.perf_counter()
            await run_.apply(bodies)
            await run_.converge(tracker, expected=expected)
            end = time.perf_counter()
            after = run_.snapshot()
        load["end"] = measure.loadavg()
        calls = {
            a: n
            for a, n in measure.delta(after.calls, before.calls).items()
            if a not in BENCH_ACTIONS
        }
        errors = measure.delta(after.errors, before.errors)
        theirs = neighbour.figures(start, end)
        during = [a for a in neighbour.answers if before.at <= a.sent_at < after.at]
        ours = {**calls, NEIGHBOUR_ACTION: calls.get(NEIGHBOUR_ACTION, 0) - len(during)}
        ours = {a: n for a, n in ours.items() if n}
        our_throttles = errors.get(THROTTLED, 0) - sum(1 for a in during if a.code == THROTTLED)
        requests = sum(ours.values())
        enis = scenario.enis
        needed = 3 * enis
        minimum = minimum_seconds(needed, PRODUCT_LIMITS.mutating)
        seconds = end - start
        result = NeighbourResult(
            shape=scenario.title,
            aws_mutating_bucket=bucket_text(AWS_DEFAULT_LIMITS.mutating),
            budget_share=DEFAULT_BUDGET_SHARE,
            neighbour=theirs,
            controller=ControllerFigures(
                enis=enis,
                succeeded=measure.attached_count(tracker.objects.values()),
                seconds=round(seconds, 1),
                mutating_calls_needed=needed,
                client_mutating_bucket=bucket_text(PRODUCT_LIMITS.mutating),
                share_min_seconds=round(minimum, 1),
                ratio_to_share_minimum=round(seconds / minimum, 3) if minimum else None,
                ec2_requests=requests,
                throttled=our_throttles,
                throttled_share=round(our_throttles / requests, 4) if requests else 0.0,
                ec2_calls=ours,
            ),
            load=load,
            notes=[
                f"the neighbour's figures count requests sent during the rollout "
                f"({theirs.seconds} s), after a {WARM_UP_SECONDS:g} s warm-up alone",
                "the controller's throttled answers: every RequestLimitExceeded the realism "
                "layer gave between the snapshots, less the neighbour's",
            ],
        )
        _judge(result)
        return result
    finally:
        run_.stop_controller()
        await env.close()


def summary(r: NeighbourResult) -> str:
    n, c = r.neighbour, r.controller
    lines = [
        f"Neighbour: {r.shape}; AWS mutating bucket {r.aws_mutating_bucket}, shared",
        f"  neighbour demanded {n.demanded_per_second}/s, achieved {n.achieved_per_second}/s "
        f"({100 * n.rate_share:.1f}%), throttled {n.throttled}/{n.sent} "
        f"({100 * n.throttled_share:.2f}%), other errors {n.other_errors}",
        f"  controller {c.succeeded}/{c.enis} ENIs in {c.seconds}s; minimum for its share "
        f"({c.client_mutating_bucket}) {c.share_min_seconds}s: ratio {c.ratio_to_share_minimum}; "
        f"throttled {c.throttled}/{c.ec2_requests} ({100 * c.throttled_share:.2f}%)",
    ]
    for t in r.targets.values():
        lines.append(f"  {t['target']}: {t['value']} {'met' if t['met'] else 'MISSED'}")
    lines.append(f"  load average {r.load}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument(
        "--enis-per-node", type=int, default=10, choices=range(1, MAX_SUBNETS + 1), metavar="N"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=AWS_DEFAULT_LIMITS.mutating.refill_per_second / 2,
        help="the neighbour's requests per second (default: half the mutating refill)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    scenario = scale_scenarios(nodes=args.nodes, enis_per_node=args.enis_per_node)["throttled"]
    settings = Settings(timeout_seconds=args.timeout)
    with tempfile.TemporaryDirectory(prefix="eni-bench-neighbour-") as state:
        result = asyncio.run(run(scenario, settings, state=Path(state), rate=args.rate))
    print(summary(result))
    report.save(result.to_json(), out=args.out, regenerate=not args.no_report)


if __name__ == "__main__":
    main()

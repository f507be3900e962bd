"""Chaos case 4, EC2 fault storm: a 200-ENI rollout and teardown while EC2 fails
the way it does on a bad day, all at once: 5xx answers (InternalError,
Unavailable), timeouts (the request is executed, the answer held past the
controller's client timeout), throttling by the account's token buckets,
eventual consistency (a new ENI answers NotFound for a while) and AWS-like
attach and detach latencies.

Why: retries are where controllers leak and double. A create whose answer was
lost and is sent again must not make a second ENI (ClientToken); an attach
whose answer was lost must be described, not repeated; a permanent error must
not be retried into a hot loop. The case shows, for one NodeENI over 100 nodes
x 2 subnets (m5.large: the primary ENI + our 2 is its limit of 3, with the AWS
rules on):

- 100% converge: every slot filled, attached and in status, Ready, the
  invariants of tests/harness/invariants.py clean;
- 0 duplicates over the whole run (DuplicateWatch: EC2 sampled every 0.25 s
  as an observer the realism layer leaves out of its figures, and no ENI made,
  by the EC2 call journal, while an older one of its slot was alive; a
  ClientToken replay is the same ENI), and a teardown that leaves no ENI;
- retries by code only: every request is logged with the code it was answered
  (tests/harness/attempts.py) and the log matches the realism layer's own
  counters request for request and code for code; a retry only ever follows an
  injected code (InternalError, Unavailable, RequestLimitExceeded, or a read
  timeout of an idempotent action); every other code the server answered is one
  the AWS rules explain (STORM_RULE_CODES) and ended its call;
- the price: calls per action, errors per code, timeouts, converge seconds, and
  mutating calls beyond a clean run of the same rollout and teardown, measured
  first in the same case on the same nodes (AWS rules on, no storm).

The account's buckets are smaller than what the controller is configured to
use (other tenants of the account, such as the VPC CNI, spend the rest), so
throttling really happens; both are scaled up from AWS's defaults so the
rollout fits the chaos suite's time budget. The controller's EC2 read timeout
is cut from the product's 30 s to CLIENT_READ_TIMEOUT, and injected timeouts
hold the answer longer than that, for the same reason.

The 200-ENI run is `slow` (two seeds: `chaos_runs(2)`); a 10-ENI smoke with the
same storm runs in `make test`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from eni_controller.aws.ratelimit import BucketSpec, RateLimits
from eni_controller.model import AttachmentState
from tests.harness.attempts import (
    OK,
    AttemptLog,
    LoggedCall,
    attempts_by_action,
    codes_answered,
    codes_by_action,
    given_up,
    retried_codes,
    wrongly_retried,
)
from tests.harness.chaos import ChaosCase, chaos_case
from tests.harness.controller import (
    AWSEnv,
    condition,
    controller_config,
    is_ready,
    quiet,
    read_nodeeni,
    running_controller,
)
from tests.harness.ec2world import AZ_A, Instance, launch_instances
from tests.harness.ec2world import MULTUS_SUBNETS_A as SUBNETS
from tests.harness.ec2world import SMALL_INSTANCE_TYPE as INSTANCE_TYPE
from tests.harness.fleet import nodeeni_spec, wait_gone
from tests.harness.invariants import (
    DuplicateWatch,
    Slot,
    journal_position,
    nodeeni_violations,
    observer_client,
    tagged_enis,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

CLIENT_READ_TIMEOUT: Final = 2.0
# Injected faults, drawn per request from the case's seed. 10% 5xx (half 500
# InternalError, half 503 Unavailable), 5% answers held past the client's timeout.
RATE_5XX: Final = 0.05
RATE_UNAVAILABLE: Final = 0.05
RATE_TIMEOUT: Final = 0.05
HELD_SECONDS: Final = CLIENT_READ_TIMEOUT + 1.0
# AWS-like: attachments take about a second, detachments a few; a new ENI can
# answer NotFound for about a second.
ATTACH_LATENCY: Final = 1.0
DETACH_LATENCY: Final = 2.0
CONSISTENCY_WINDOW: Final = 1.0
# The controller's configured share of the account's buckets is this many times
# what the account has left for it.
OVERSUBSCRIBED: Final = 2.0
HOLD: Final = 1.0  # converged: still clean, and no mutating call, this long after

INJECTED: Final = frozenset({"InternalError", "Unavailable", "RequestLimitExceeded"})
CLIENT_TIMEOUT_CODE: Final = "ReadTimeoutError"  # botocore's, as the EC2 client classifies it
NOT_IDEMPOTENT: Final = frozenset({"AttachNetworkInterface"})
# Codes the AWS rules answer during a storm, and the actions a storm explains
# them on; any other code, or one of these on another action, is a finding.
STORM_RULE_CODES: Final[Mapping[str, frozenset[str]]] = {
    # an ENI still inside the consistency window (attached, its attribute set or,
    # after a failed attach, deleted right after its creation); or a delete sent
    # again after a timed-out one that EC2 had carried out
    "InvalidNetworkInterfaceID.NotFound": frozenset(
        {"AttachNetworkInterface", "ModifyNetworkInterfaceAttribute", "DeleteNetworkInterface"}
    ),
    # a detach sent again after a timed-out one had ended the attachment, or an
    # attribute change naming an attachment a detach has ended
    "InvalidAttachmentID.NotFound": frozenset(
        {"DetachNetworkInterface", "ModifyNetworkInterfaceAttribute"}
    ),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Shape:
    nodes: int
    # what the account's buckets have left for the controller: (capacity, refill/s)
    describe: tuple[float, float]
    mutating: tuple[float, float]
    converge_within: float
    teardown_within: float

    def account_buckets(self) -> dict[str, Any]:
        return {"buckets": {"describe": list(self.describe), "mutating": list(self.mutating)}}

    def controller_limits(self) -> RateLimits:
        def share(bucket: tuple[float, float]) -> BucketSpec:
            capacity, refill = bucket
            return BucketSpec(
                capacity=capacity * OVERSUBSCRIBED, refill_per_second=refill * OVERSUBSCRIBED
            )

        return RateLimits(describe=share(self.describe), mutating=share(self.mutating))


FULL: Final = Shape(
    nodes=100,
    describe=(100.0, 40.0),
    mutating=(50.0, 20.0),
    converge_within=150.0,
    teardown_within=120.0,
)
SMOKE: Final = Shape(
    nodes=5,
    describe=(10.0, 10.0),
    mutating=(5.0, 5.0),
    converge_within=40.0,
    teardown_within=40.0,
)


@dataclass(kw_only=True)
class Counters:
    """The realism layer's counters between two readings."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    timeouts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, env: AWSEnv) -> Counters:
        raw = env.realism.counters()
        return cls(
            calls=Counter(raw["calls"]),
            errors=Counter(raw["errors"]),
            timeouts=Counter(raw["timeouts"]),
        )

    def __sub__(self, before: Counters) -> Counters:
        return Counters(
            calls=self.calls - before.calls,
            errors=self.errors - before.errors,
            timeouts=self.timeouts - before.timeouts,
        )

    @property
    def mutating(self) -> int:
        return sum(n for action, n in self.calls.items() if not action.startswith("Describe"))


@dataclass(kw_only=True)
class Run:
    """One rollout and teardown of one NodeENI: what it cost and how it went."""

    name: str
    rollout: Counters
    teardown: Counters
    calls: list[LoggedCall]
    converge_seconds: float | None
    teardown_seconds: float | None
    problems: list[str]
    leaks: int
    creates: int = 0  # ENIs EC2 made (DuplicateWatch.made)
    create_requests: int = 0
    coexisting: list[str] = field(default_factory=list)
    journal_overlaps: list[str] = field(default_factory=list)
    explained: str = ""  # DuplicateWatch.explain(), if it found duplicates
    enis_seen: int = 0
    samples: int = 0

    @property
    def total(self) -> Counters:
        return Counters(
            calls=self.rollout.calls + self.teardown.calls,
            errors=self.rollout.errors + self.teardown.errors,
            timeouts=self.rollout.timeouts + self.teardown.timeouts,
        )


def _attached(obj: Mapping[str, Any]) -> int:
    return sum(
        a.get("status") == AttachmentState.ATTACHED
        for a in (obj.get("status") or {}).get("attachments") or []
    )


async def _make_fleet(env: AWSEnv, count: int) -> list[tuple[str, Instance]]:
    """`count` Nodes labelled `test=<unique>` on fresh m5.large instances in one AZ."""
    instances = await asyncio.to_thread(
        launch_instances, env.world.endpoint, az=AZ_A, instance_type=INSTANCE_TYPE, count=count
    )
    made = [(f"{env.unique}-n{i:03d}", instance) for i, instance in enumerate(instances)]
    for start in range(0, len(made), 20):
        await asyncio.gather(
            *(
                env.nodes.create(name=name, instance=instance, labels={"test": env.unique})
                for name, instance in made[start : start + 20]
            )
        )
    return made


async def _terminate(env: AWSEnv, instances: list[Instance]) -> None:
    ec2 = await asyncio.to_thread(observer_client, env.world.endpoint)
    await asyncio.to_thread(ec2.terminate_instances, InstanceIds=[i.id for i in instances])


async def _converge(
    env: AWSEnv, ec2: Any, name: str, wanted: set[Slot], *, since: float, within: float
) -> tuple[float | None, list[str]]:
    """Seconds from `since` until every wanted slot is filled and attached, the
    NodeENI Ready and its invariants clean, held HOLD seconds without a mutating
    call; None and what was still wrong after `within` seconds."""
    deadline = since + within
    while True:
        obj = await read_nodeeni(env.api, name)
        problems = await nodeeni_violations(env.api, env.world, name, wanted=wanted, ec2=ec2)
        if not is_ready(obj):
            problems.append(f"not Ready: {condition(obj, 'Ready')}")
        if _attached(obj) != len(wanted):
            problems.append(f"{_attached(obj)} of {len(wanted)} attachments attached")
        if not problems:
            converged = time.monotonic() - since
            mutating = Counters.read(env).mutating
            await asyncio.sleep(HOLD)
            problems = await nodeeni_violations(env.api, env.world, name, wanted=wanted, ec2=ec2)
            if not problems and Counters.read(env).mutating == mutating:
                return converged, []
        if time.monotonic() >= deadline:
            ready = condition(obj, "Ready")
            return None, [*problems[:10], f"Ready: {ready}"]
        await asyncio.sleep(0.5)


async def _until_no_enis(ec2: Any, uid: str, *, within: float) -> list[dict[str, Any]]:
    """The NodeENI `uid`'s ENIs once there are none, or those left after `within`."""
    deadline = time.monotonic() + within
    while True:
        left = await asyncio.to_thread(tagged_enis, ec2, uid)
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.25)


async def _rollout_and_teardown(
    env: AWSEnv, log: AttemptLog, ec2: Any, *, name: str, wanted: set[Slot], shape: Shape
) -> Run:
    """Create one NodeENI over the fleet, wait until it converges, delete it and
    wait until it and its ENIs are gone; sample EC2 for duplicates throughout."""
    before = Counters.read(env)
    mark = log.mark()
    created_before = await asyncio.to_thread(journal_position, env.realism)
    started = time.monotonic()
    created = await env.nodeenis.create(name, nodeeni_spec(env.unique, env.world, *SUBNETS))
    uid = created["metadata"]["uid"]
    watch = DuplicateWatch(env.world, env.realism, (uid,), ec2=ec2)
    await watch.start(created_before=created_before)
    sampler = asyncio.create_task(watch.run())
    teardown_seconds: float | None = None
    try:
        converged, problems = await _converge(
            env, ec2, name, wanted, since=started, within=shape.converge_within
        )
        rolled_out = Counters.read(env)
        leaks = 0
        if converged is not None:
            deleting = time.monotonic()
            await env.nodeenis.custom.delete_cluster_custom_object(
                "networking.k8s.aws", "v1alpha1", "nodeenis", name
            )
            try:
                await wait_gone(env.api, name, within=shape.teardown_within)
            except TimeoutError:
                problems.append(f"{name} still there {shape.teardown_within:.0f}s after delete")
            left = await _until_no_enis(ec2, uid, within=5.0)
            leaks = len(left)
            problems += [f"left after teardown: {e['NetworkInterfaceId']}" for e in left]
            if not problems:
                teardown_seconds = time.monotonic() - deleting
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    await watch.finish()
    after = Counters.read(env)
    return Run(
        name=name,
        rollout=rolled_out - before,
        teardown=after - rolled_out,
        calls=log.since(mark),
        converge_seconds=None if converged is None else round(converged, 2),
        teardown_seconds=None if teardown_seconds is None else round(teardown_seconds, 2),
        problems=problems,
        leaks=leaks,
        creates=watch.made,
        create_requests=watch.create_requests,
        coexisting=sorted(watch.coexisting),
        journal_overlaps=sorted(watch.overlaps),
        explained=watch.explain() if watch.duplicates else "",
        enis_seen=len(watch.seen),
        samples=watch.samples,
    )


def _per_action(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items()))


def _retry_checks(storm: Run) -> tuple[dict[str, Any], list[str]]:
    """The storm's request log against the realism layer's counters: figures, and
    what contradicts "retries by code only"."""
    calls = storm.calls
    answered = codes_answered(calls)
    client_timeouts = answered.pop(CLIENT_TIMEOUT_CODE, 0)
    cancelled = answered.pop("cancelled", 0)
    server = storm.total
    problems: list[str] = []
    if attempts_by_action(calls) != server.calls:
        problems.append(
            f"requests logged {_per_action(attempts_by_action(calls))} != "
            f"counted by the server {_per_action(server.calls)}"
        )
    # The server counts the code of a request whose answer it then held past the
    # client's timeout; the client saw ReadTimeoutError instead. So the server's
    # codes are the client's plus at most one per held answer, and nothing else.
    unseen = server.errors - answered
    if answered - server.errors or sum(unseen.values()) > sum(server.timeouts.values()):
        problems.append(
            f"codes logged {_per_action(answered)} do not match those answered by the "
            f"server {_per_action(server.errors)} with {sum(server.timeouts.values())} held"
        )
    unexplained = sorted(set(server.errors) - INJECTED - set(STORM_RULE_CODES))
    if unexplained:
        problems.append(f"codes neither injected nor explained by the AWS rules: {unexplained}")
    by_action = codes_by_action(calls)
    problems += [
        f"{action} answered {code} ({n}x): not explained by the storm"
        for (action, code), n in sorted(by_action.items())
        if code in STORM_RULE_CODES and action not in STORM_RULE_CODES[code]
    ]
    problems += wrongly_retried(
        calls,
        retryable=INJECTED,
        retryable_if_idempotent={CLIENT_TIMEOUT_CODE},
        not_idempotent=NOT_IDEMPOTENT,
    )
    injected_timeouts = sum(server.timeouts.values())
    if client_timeouts < injected_timeouts:
        problems.append(
            f"{injected_timeouts} answers held past the timeout, the client saw {client_timeouts}"
        )
    figures = {
        "logical_calls": dict(sorted(Counter(c.action for c in calls).items())),
        "retries_by_code": _per_action(retried_codes(calls)),
        "given_up_by_code": _per_action(given_up(calls)),
        "answered_by_code": _per_action(server.errors),
        "codes_by_action": {
            f"{action} {code}": n for (action, code), n in sorted(by_action.items())
        },
        "answered_behind_held_answers": _per_action(unseen),
        "injected_timeouts": _per_action(server.timeouts),
        "client_read_timeouts": client_timeouts,
        "cancelled_requests": cancelled,
        "calls_failed": sum(1 for c in calls if c.done and c.outcome != OK),
    }
    return figures, problems


async def _storm(env: AWSEnv, case: ChaosCase, *, shape: Shape) -> None:
    result = case.result
    log = AttemptLog()
    config = controller_config(  # the test account is shared with no one: the whole pace
        env.world, ec2_rate_limits=shape.controller_limits(), ec2_budget_share=1.0
    )
    made = await _make_fleet(env, shape.nodes)
    ec2 = await asyncio.to_thread(observer_client, env.world.endpoint)
    wanted = {(node, env.world.subnet(s).id) for node, _ in made for s in SUBNETS}
    try:
        async with running_controller(
            env.api, config, read_timeout_seconds=CLIENT_READ_TIMEOUT, on_ec2=log.install
        ) as controller:
            await quiet(controller, env.unique)
            clean = await _rollout_and_teardown(
                env, log, ec2, name=f"{env.unique}-clean", wanted=wanted, shape=shape
            )
            assert not clean.problems, f"the clean run failed: {clean.problems}"
            await quiet(controller, env.unique)
            env.realism.configure(
                attach_latency=ATTACH_LATENCY,
                detach_latency=DETACH_LATENCY,
                consistency_window=CONSISTENCY_WINDOW,
                throttle=shape.account_buckets(),
                faults={
                    "rate_5xx": RATE_5XX,
                    "rate_unavailable": RATE_UNAVAILABLE,
                    "rate_timeout": RATE_TIMEOUT,
                    "timeout_seconds": HELD_SECONDS,
                    "seed": case.seed,
                },
            )
            storm = await _rollout_and_teardown(
                env, log, ec2, name=f"{env.unique}-storm", wanted=wanted, shape=shape
            )
            env.realism.configure(throttle=None, faults=None)
            live = controller.live()
    finally:
        await _terminate(env, [instance for _, instance in made])

    retries, retry_problems = _retry_checks(storm)
    extra = storm.total.mutating - clean.total.mutating
    result.converge_seconds = storm.converge_seconds
    result.leaks = storm.leaks
    result.duplicates = len({*storm.coexisting, *storm.journal_overlaps})
    result.extra_mutating_calls = extra
    result.violations = [*storm.problems, *retry_problems]
    slots = len(wanted)
    result.details = {
        "nodes": shape.nodes,
        "enis": slots,
        "storm": {
            "rate_5xx": RATE_5XX,
            "rate_unavailable": RATE_UNAVAILABLE,
            "rate_timeout": RATE_TIMEOUT,
            "held_seconds": HELD_SECONDS,
            "client_read_timeout": CLIENT_READ_TIMEOUT,
            "attach_latency": ATTACH_LATENCY,
            "detach_latency": DETACH_LATENCY,
            "consistency_window": CONSISTENCY_WINDOW,
            "account_buckets": shape.account_buckets()["buckets"],
            "controller_buckets": {
                "describe": [
                    config.ec2_rate_limits.describe.capacity,
                    config.ec2_rate_limits.describe.refill_per_second,
                ],
                "mutating": [
                    config.ec2_rate_limits.mutating.capacity,
                    config.ec2_rate_limits.mutating.refill_per_second,
                ],
            },
        },
        "attached": slots if storm.converge_seconds is not None else None,
        "teardown_seconds": storm.teardown_seconds,
        "clean_converge_seconds": clean.converge_seconds,
        "clean_teardown_seconds": clean.teardown_seconds,
        "calls": {
            "rollout": _per_action(storm.rollout.calls),
            "teardown": _per_action(storm.teardown.calls),
            "clean_rollout": _per_action(clean.rollout.calls),
            "clean_teardown": _per_action(clean.teardown.calls),
        },
        "mutating": {
            "storm": storm.total.mutating,
            "clean": clean.total.mutating,
            "extra": extra,
            "extra_per_eni": round(extra / slots, 3),
        },
        "errors_by_code": _per_action(storm.total.errors),
        "timeouts_by_action": _per_action(storm.total.timeouts),
        **retries,
        "enis_created": storm.creates,
        "create_requests": storm.create_requests,
        "coexisting_enis": storm.coexisting,
        "journal_overlaps": storm.journal_overlaps,
        "enis_seen": storm.enis_seen,
        "samples": storm.samples,
        "controller_live": list(live),
    }
    print(
        f"FIGURE ec2-storm seed={case.seed}: {slots} ENIs converged in "
        f"{result.converge_seconds}s (clean {clean.converge_seconds}s), teardown "
        f"{storm.teardown_seconds}s (clean {clean.teardown_seconds}s); mutating "
        f"{storm.total.mutating} vs clean {clean.total.mutating} (+{extra}); errors "
        f"{_per_action(storm.total.errors)}; timeouts {sum(storm.total.timeouts.values())}; "
        f"retries by code {retries['retries_by_code']}; {result.duplicates} duplicates, "
        f"{result.leaks} leaks"
    )
    assert storm.converge_seconds is not None, f"not converged: {storm.problems}"
    assert storm.problems == []
    assert storm.leaks == 0
    assert result.duplicates == 0, storm.explained
    assert storm.enis_seen == slots, f"{storm.enis_seen} ENIs for {slots} slots"
    assert retry_problems == [], retry_problems
    assert live == (True, ""), live


@pytest.mark.slow
@pytest.mark.chaos_runs(2)
@pytest.mark.timeout(300)
async def test_ec2_storm(aws_env: AWSEnv, chaos_seed: int) -> None:
    async with chaos_case("ec2-storm", chaos_seed, bound=280) as case:
        await _storm(aws_env, case, shape=FULL)


@pytest.mark.timeout(90)
async def test_ec2_storm_smoke(aws_env: AWSEnv, chaos_seed: int) -> None:
    async with chaos_case("ec2-storm-smoke", chaos_seed, bound=80) as case:
        await _storm(aws_env, case, shape=SMOKE)

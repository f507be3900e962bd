"""Chaos case 7, leader failover with work in flight: two controller replicas
(real processes, leader election on a Lease with short timings), the leader
killed with SIGKILL in the middle of its work, 5 times: 3 times during a
rollout to 40 nodes x 2 subnets = 80 ENIs and twice during its teardown. The
killed replica is started again at once, so there are always two.

What a failover must not do, and is checked here, from the realism layer's call
journal (every mutating EC2 call with the process that made it: each process
signs with an access key of its own) and the Lease:

- two processes acting on one ENI: no ENI gets an Attach, a Detach or a
  Delete from two processes (an old leader's half-done cleanup must be
  finished, not done again), and no slot gets two ENIs (duplicates, counted as
  in case 1: distinct ENIs creates returned per (node, subnet), plus the
  DuplicateWatch's);
- two processes acting at once: each process's mutating calls form one
  unbroken run in the journal, and only processes seen holding the Lease make
  any;
- a slow takeover: the Lease's holder changes to the standby within
  LEASE + 2 x (1 + jitter) x RETRY (+ SLACK for the test's 50 ms polling) of
  the kill, and not before LEASE - RETRY. That is client-go's bound: the
  standby first sees the dead leader's last renewal up to one jittered retry
  period after it was written, waits a lease duration from then, and notices
  the expiry at its next jittered retry. Each kill's takeover seconds are
  reported (Lease holder change, and the new leader's first mutating call),
  with how many were within LEASE + RETRY.

And the end states of case 1: after the rollout the NodeENI's status equals
EC2 with one ENI per wanted slot; after the teardown the NodeENI is gone and no
ENI carries its uid; extra mutating calls beyond 3 per ENI to roll out and 2 to
tear down (a clean run's cost, measured in case 1), no more than the calls the
killed leaders never heard back about.

The full case is `slow` + `chaos`, two seeds (`chaos_runs(2)`: about 1.5
minutes each on a 2-core machine); the smoke version (3 nodes, one kill in
each phase, about 25 s) runs in `make test`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from eni_controller.kube.leader import ACQUIRE_JITTER
from tests.harness.chaos import (
    ROLLOUT_CALLS_PER_ENI,
    TEARDOWN_CALLS_PER_ENI,
    ChaosCase,
    chaos_case,
)
from tests.harness.controller import AWSEnv
from tests.harness.ec2world import AZ_A, Instance
from tests.harness.ec2world import MULTUS_SUBNETS_A as SUBNETS
from tests.harness.ec2world import SMALL_INSTANCE_TYPE as INSTANCE_TYPE
from tests.harness.fleet import make_nodes, terminate
from tests.harness.invariants import (
    Slot,
    acted_twice,
    create_replays,
    created_by_slot,
    mutating_calls,
)
from tests.harness.kills import (
    Incarnation,
    Replicas,
    disturbed_run,
    first_mutating_call,
    half_way,
    lease_watch,
    no_nodeenis,
    own_calls,
    splits,
    unanswered,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

REPLICAS = ("a", "b")
LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
SLACK = 0.3  # the test's Lease polling (50 ms) and two API round trips on a busy machine
TAKEOVER_MAX = LEASE + 2 * (1 + ACQUIRE_JITTER) * RETRY + SLACK
TAKEOVER_MIN = LEASE - RETRY - 0.2  # the last renewal was at most a retry (+ a write) before
SETTINGS = {
    "LEADER_ELECTION_LEASE_DURATION": f"{LEASE:g}s",
    "LEADER_ELECTION_RENEW_DEADLINE": f"{RENEW:g}s",
    "LEADER_ELECTION_RETRY_PERIOD": f"{RETRY * 1000:g}ms",
}
ONE_PROCESS_PER_ENI = ("AttachNetworkInterface", "DetachNetworkInterface", "DeleteNetworkInterface")
WORK_WINDOW = 1.5  # a kill comes 0..WORK_WINDOW s after the leader's first mutating call
LEADER_WAIT = 30.0  # the first leader: a Lease left by an earlier test may have to expire
LEFTOVERS_WAIT = 60.0  # for the leader to finish earlier tests' deleted NodeENIs
FIRST_CALL_WAIT = 30.0
HOLD = 1.0
WATCH_EVERY = 0.5


@dataclass(frozen=True, kw_only=True)
class Shape:
    nodes: int
    rollout_kills: int
    teardown_kills: int
    mutating_rate: int  # EC2_MUTATING_RATE and _BURST: each term does a slice of the work
    converge_within: float


FULL = Shape(nodes=40, rollout_kills=3, teardown_kills=2, mutating_rate=8, converge_within=90.0)
SMOKE = Shape(nodes=3, rollout_kills=1, teardown_kills=1, mutating_rate=3, converge_within=45.0)
REALISM = {
    "attach_latency": 0.3,
    "detach_latency": 0.5,
    "consistency_window": 0.5,
    "answer_latency": 0.15,  # a kill mid-call leaves EC2's change made and unanswered
}


@dataclass(kw_only=True)
class Takeover:
    phase: str
    number: int
    delay: float  # drawn: seconds after the leader's first mutating call
    killed: str = ""
    at: float = 0.0  # monotonic time of the SIGKILL
    new_leader: str = ""
    holder_change: float | None = None  # kill to the Lease naming the new leader
    first_call: float | None = None  # kill to the new leader's first mutating call
    killed_calls: int = 0  # mutating calls of the killed process
    unanswered: int = 0  # its calls still awaiting their answer when it died (kills.unanswered)
    split: dict[str, int] | None = None  # ENIs it left half-way (kills.splits)


async def _leader(
    api: client.ApiClient,
    replicas: Replicas,
    changes: list[tuple[float, str]],
    *,
    within: float,
    other_than: Incarnation | None = None,
) -> Incarnation:
    """The live process the Lease names (waiting up to `within` s for one other
    than `other_than`)."""
    deadline = time.monotonic() + within
    while True:
        holder = changes[-1][1] if changes else ""
        process = replicas.holding(holder)
        if process is not None and process.alive and process is not other_than:
            return process
        if time.monotonic() >= deadline:
            raise AssertionError(f"no new leader within {within:.1f}s: Lease changes {changes}")
        await asyncio.sleep(0.02)


async def _failovers(
    env: AWSEnv,
    case: ChaosCase,
    replicas: Replicas,
    changes: list[tuple[float, str]],
    plan: Sequence[Takeover],
    *,
    finished: Callable[[], Awaitable[bool]],
) -> float | None:
    """Kill the leader at each planned moment, start its replica again and wait for
    the standby to take over; returns when the last SIGKILL went out."""
    last = None
    for takeover in plan:
        leader = await _leader(env.api, replicas, changes, within=LEADER_WAIT)
        calls = await asyncio.to_thread(mutating_calls, env.realism)
        first = await first_mutating_call(env.realism, after=calls, within=FIRST_CALL_WAIT)
        assert first is not None, f"leader {leader.name} made no EC2 call in {FIRST_CALL_WAIT}s"
        await asyncio.sleep(max(0.0, first + takeover.delay - time.monotonic()))
        assert not await finished(), f"{takeover.phase} finished before kill {takeover.number}"
        takeover.killed = leader.name
        last = takeover.at = await replicas.kill(leader)
        replicas.start(leader.replica)
        successor = await _leader(
            env.api, replicas, changes, within=TAKEOVER_MAX + 5.0, other_than=leader
        )
        takeover.new_leader = successor.name
        # None if the Lease named it already before the kill: a takeover no one waited for
        seen = next((t for t, h in changes if t > takeover.at and successor.holds(h)), None)
        takeover.holder_change = None if seen is None else round(seen - takeover.at, 2)
    return last


def _plan(case: ChaosCase, phase: str, kills: int) -> list[Takeover]:
    return [
        Takeover(phase=phase, number=n, delay=case.rng.uniform(0, WORK_WINDOW))
        for n in range(1, kills + 1)
    ]


def _runs(calls: Sequence[Mapping[str, Any]], who: Mapping[str, str]) -> list[str]:
    """The processes in journal order, one entry per unbroken run of their calls."""
    runs: list[str] = []
    for entry in calls:
        name = who[entry["caller"]]
        if not runs or runs[-1] != name:
            runs.append(name)
    return runs


async def _failover_case(
    env: AWSEnv, case: ChaosCase, kubeconfig: Path, state_dir: Path, *, shape: Shape
) -> None:
    env.realism.configure(**REALISM)
    rollout_plan = _plan(case, "rollout", shape.rollout_kills)
    teardown_plan = _plan(case, "teardown", shape.teardown_kills)
    settings = {
        **SETTINGS,
        "EC2_MUTATING_RATE": str(shape.mutating_rate),
        "EC2_MUTATING_BURST": str(shape.mutating_rate),
    }
    made: list[tuple[str, Instance]] = []
    try:
        made = await make_nodes(
            env.nodes,
            env.world,
            env.unique,
            az=AZ_A,
            count=shape.nodes,
            instance_type=INSTANCE_TYPE,
        )
        wanted = {(name, env.world.subnet(s).id) for name, _ in made for s in SUBNETS}
        replicas = Replicas(env.world, kubeconfig, state_dir, settings, realism=env.realism)
        async with replicas, lease_watch(env.api) as changes:
            await _run(env, case, replicas, changes, shape, wanted, rollout_plan, teardown_plan)
    finally:
        await asyncio.to_thread(terminate, env.world, [instance for _, instance in made])
    result = case.result
    details = result.details
    assert result.violations == [], result.violations
    assert result.leaks == 0, details["leaked"]
    assert result.duplicates == 0, details["duplicate_enis"]
    assert details["acted_twice"] == {}, "ENIs acted on by two processes"
    assert details["interleaved"] == [], f"processes acting at once: {details['runs']}"
    assert details["calls_by_non_leaders"] == {}
    assert details["exited_early"] == []
    # the new leader may repeat only calls the old one never heard back about
    assert result.extra_mutating_calls <= details["unanswered_at_kills"], details["calls"]
    for takeover in details["takeovers"]:
        seconds = takeover["holder_change"]
        assert seconds is not None, f"no Lease change after the kill: {takeover}"
        assert TAKEOVER_MIN <= seconds <= TAKEOVER_MAX, takeover


async def _run(
    env: AWSEnv,
    case: ChaosCase,
    replicas: Replicas,
    changes: list[tuple[float, str]],
    shape: Shape,
    wanted: set[Slot],
    rollout_plan: list[Takeover],
    teardown_plan: list[Takeover],
) -> None:
    result = case.result
    for replica in REPLICAS:
        replicas.start(replica)
    await _leader(env.api, replicas, changes, within=LEADER_WAIT)
    await no_nodeenis(env.api, within=LEFTOVERS_WAIT)
    plans = {"rollout": rollout_plan, "teardown": teardown_plan}
    run = await disturbed_run(
        env,
        result,
        wanted=wanted,
        disturb=lambda phase, finished: _failovers(
            env, case, replicas, changes, plans[phase], finished=finished
        ),
        within=shape.converge_within,
        hold=HOLD,
        watch_every=WATCH_EVERY,
    )
    watch, remaining = run.watch, run.remaining
    rollout_converged, rollout_leaks = run.rollout_converged, run.rollout_leaks
    teardown_converged, left = run.teardown_converged, run.left

    who = {i.access_key: i.name for i in replicas.incarnations}
    calls = own_calls(env.realism.journal(), callers=who, nodes={node for node, _ in wanted})
    takeovers = [*rollout_plan, *teardown_plan]
    by_name = {i.name: i for i in replicas.incarnations}
    split = splits(calls, who)
    for takeover in takeovers:
        successor = by_name[takeover.new_leader]
        theirs = [e["at"] for e in calls if e["caller"] == successor.access_key]
        after = [at for at in theirs if at > takeover.at]
        takeover.first_call = round(after[0] - takeover.at, 2) if after else None
        killed = by_name[takeover.killed]
        takeover.killed_calls = sum(1 for e in calls if e["caller"] == killed.access_key)
        takeover.unanswered = unanswered(
            calls,
            caller=killed.access_key,
            killed_at=takeover.at,
            answer_latency=REALISM["answer_latency"],
        )
        takeover.split = dict(sorted(split.get(takeover.killed, Counter()).items()))
    all_splits = sum((Counter(t.split) for t in takeovers), Counter[str]())
    runs = _runs(calls, who)
    leaders = {p.name for _, holder in changes if (p := replicas.holding(holder)) is not None}
    by_slot = created_by_slot(calls)
    duplicate_enis = {eni for ids in by_slot.values() for eni in ids[1:]} | watch.duplicate_enis
    baseline = len(wanted) * (ROLLOUT_CALLS_PER_ENI + TEARDOWN_CALLS_PER_ENI)
    holder_changes = [t.holder_change for t in takeovers if t.holder_change is not None]
    result.leaks = rollout_leaks + len(remaining)
    result.duplicates = len(duplicate_enis)
    result.converge_seconds = None if teardown_converged is None else round(teardown_converged, 2)
    result.extra_mutating_calls = len(calls) - baseline
    result.details = {
        "nodes": shape.nodes,
        "enis": len(wanted),
        "shape": asdict(shape),
        "realism": REALISM,
        "rollout_kills": len(rollout_plan),
        "teardown_kills": len(teardown_plan),
        "lease": {"duration": LEASE, "renew_deadline": RENEW, "retry_period": RETRY},
        "takeover_bound": round(TAKEOVER_MAX, 2),
        "takeovers": [asdict(t) for t in takeovers],
        "takeover_max": max(holder_changes) if holder_changes else None,
        "splits": dict(all_splits),
        "enis_half_way": half_way(all_splits),
        "takeovers_within_lease_plus_retry": sum(s <= LEASE + RETRY for s in holder_changes),
        "rollout_converge_seconds": round(rollout_converged, 2),
        "teardown_converge_seconds": result.converge_seconds,
        "mutating_calls": len(calls),
        "clean_run_calls": baseline,
        "unanswered_at_kills": sum(t.unanswered for t in takeovers),
        "calls": dict(sorted(Counter(e["action"] for e in calls).items())),
        "errors": dict(Counter(e["error"] for e in calls if e["error"])),
        "create_replays": create_replays(calls),
        "duplicate_enis": sorted(duplicate_enis),
        "acted_twice": acted_twice(calls, actions=ONE_PROCESS_PER_ENI, who=who),
        "acted_twice_any": acted_twice(
            calls, actions={e["action"] for e in calls}, who=who
        ),  # creates (replays) and modifies too: reported, not asserted
        "runs": runs,
        "interleaved": sorted(name for name, n in Counter(runs).items() if n > 1),
        "calls_by_non_leaders": {
            name: n
            for name, n in Counter(who[e["caller"]] for e in calls).items()
            if name not in leaders
        },
        "leaked": {
            "after_rollout": rollout_leaks,
            "after_teardown": sorted(e["NetworkInterfaceId"] for e in remaining),
        },
        "torn_down": left,
        "lease_changes": len(changes),
        "exited_early": replicas.exited_early(),
        "samples": watch.samples,
    }
    print(
        f"FIGURE failover seed={case.seed}: {len(wanted)} ENIs, {len(takeovers)} leader kills, "
        f"takeover (Lease) {holder_changes}s (bound {TAKEOVER_MAX:.2f}s), first call of the "
        f"new leader {[t.first_call for t in takeovers]}s; rollout converged "
        f"{result.details['rollout_converge_seconds']}s, teardown {result.converge_seconds}s "
        f"after the last kill; {result.leaks} leaks, {result.duplicates} duplicates, "
        f"{result.extra_mutating_calls} extra mutating calls"
    )
    assert teardown_converged is not None, (
        f"teardown not done {shape.converge_within:.0f}s after the last kill: {left}"
    )


@pytest.mark.slow
@pytest.mark.chaos_runs(2)
@pytest.mark.timeout(300)
async def test_failover(aws_env: AWSEnv, chaos_seed: int, kubeconfig: Path, tmp_path: Path) -> None:
    async with chaos_case("failover", chaos_seed, bound=240) as case:
        await _failover_case(aws_env, case, kubeconfig, tmp_path, shape=FULL)


@pytest.mark.timeout(90)
async def test_failover_smoke(
    aws_env: AWSEnv, chaos_seed: int, kubeconfig: Path, tmp_path: Path
) -> None:
    async with chaos_case("failover-smoke", chaos_seed, bound=60) as case:
        await _failover_case(aws_env, case, kubeconfig, tmp_path, shape=SMOKE)

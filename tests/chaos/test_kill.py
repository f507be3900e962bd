"""Chaos case 1, kill -9 at random points: SPEC hard case 20 ("controller
restarted at any point of a large rollout or teardown") with SIGKILL, at scale.

The controller runs as a real process (`eni-controller run`: a SIGKILL leaves it
no `finally`, no buffered write) against the real API server and moto with the
realism layer's AWS rules on, plus attach and detach latency, a consistency
window, and every mutating answer held a while after EC2 acted (so most kills
land mid-call, the change made and its answer unread). One NodeENI is
rolled out to 100 m5.large nodes x 2 subnets = 200 ENIs (an m5.large takes 3
network interfaces: its primary and our two). During the rollout the process
is killed 20 times and started again each time; then the NodeENI is deleted
and 20 more kills hit the teardown. Each kill moment is drawn from the case's
seed as an anchor and a delay: `start` (0..START_WINDOW s after the process was
spawned: start-up, informer sync, the first describes and plans) or `work`
(0..WORK_WINDOW s after the process's first mutating EC2 call: creates,
attaches, status writes, detaches and deletes in flight).

Checked once the last process of each phase has been left alone: after the
rollout, the invariants (status equal to EC2, exactly one ENI per wanted slot,
Ready with all attached); after the teardown, the NodeENI is gone (finalizer
released) and no ENI carries its uid. Over the whole run:

- duplicates: for each (node, subnet) slot, ENIs beyond the first that any
  CreateNetworkInterface call returned, read from the realism layer's call
  journal (an ENI created and deleted again between two looks still counts),
  together with the DuplicateWatch's (ENIs seen sharing a slot with an older
  one, or made while an older one of their slot was alive).
  A create re-sent after a kill with the same ClientToken returns the same
  ENI: that is a replay, reported apart, not a duplicate. No create may
  arrive once the NodeENI is deleted.
- leaks: ENIs tagged with the uid beyond one per wanted slot after the
  rollout, plus every ENI still tagged with it after the teardown.
- extra mutating calls: mutating EC2 calls by the controller processes beyond
  what the same run without kills costs: 3 per ENI to roll out (Create,
  Attach, ModifyNetworkInterfaceAttribute: the spec's default
  DeleteOnTermination=true differs from attach's false) and 2 per ENI to tear
  down (Detach, Delete), 1,000 calls for 200 ENIs, as measured by running this
  case's FULL shape with no kills. They may not exceed the calls the killed
  processes never heard back about (`kills.unanswered`): a restarted
  controller learns the outcome of an answered call from EC2, it does not
  send it again.
- converge: seconds from the last kill of a phase until its end state held
  (restart included); the row's figure is the teardown's, after the last kill.

The processes run without leader election (one replica: a killed leader's
Lease would only add a lease duration to every restart; case 7 covers
election) and pace their mutating EC2 calls at `Shape.mutating_rate` per
second with a burst as big (8 in FULL; the controller's default burst is 45):
each process then gets through only a slice of the rollout, so 20 kills land
inside it, and the time to converge after the last kill is mostly the work
left at that pace.

The full case is `slow` + `chaos`, two seeds (`chaos_runs(2)`: about 2.5 minutes
each on a 2-core machine); the smoke version (3 nodes, 2 + 1 kills, about 20 s)
runs in `make test`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

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
    no_nodeenis,
    own_calls,
    splits,
    unanswered,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

REPLICA = "c"
START_SHARE = 0.3  # of the kills anchored at the process's start, the others at its work
START_WINDOW = 3.0
WORK_WINDOW = 1.0
FIRST_CALL_WAIT = 30.0  # a `work` kill waits this long for the first call, then kills anyway
HOLD = 1.0  # converged means: still so, and no mutating call, this long after
WATCH_EVERY = 0.5  # DuplicateWatch samples: 200 ENIs per describe, through moto's one lock
LEFTOVERS_WAIT = 60.0  # for the first process to finish earlier tests' deleted NodeENIs


@dataclass(frozen=True, kw_only=True)
class Shape:
    nodes: int
    rollout_kills: int
    teardown_kills: int
    mutating_rate: int  # EC2_MUTATING_RATE and EC2_MUTATING_BURST of every process
    attach_latency: float
    detach_latency: float
    consistency_window: float  # a new ENI answers NotFound this long (EC2 is eventually so)
    answer_latency: float  # a mutating call's answer comes this long after EC2 acted
    converge_within: float


FULL = Shape(
    nodes=100,
    rollout_kills=20,
    teardown_kills=20,
    mutating_rate=8,
    attach_latency=0.3,
    detach_latency=0.5,
    consistency_window=0.5,
    answer_latency=0.15,
    converge_within=150.0,
)
SMOKE = Shape(
    nodes=3,
    rollout_kills=2,
    teardown_kills=1,
    mutating_rate=2,
    attach_latency=0.3,
    detach_latency=0.5,
    consistency_window=0.5,
    answer_latency=0.15,
    converge_within=45.0,
)


@dataclass(kw_only=True)
class Kill:
    """One SIGKILL: what was drawn, and what the killed process had done."""

    phase: str
    number: int
    anchor: str  # start | work | idle (a `work` kill whose process made no call in time)
    delay: float
    process: str = ""
    uptime: float = 0.0  # spawn to kill
    during: bool = True  # the phase had not finished right before the kill
    calls: int = 0  # mutating EC2 calls the process made
    first_call: float | None = None  # spawn to its first mutating call
    last_call: str | None = None  # its last mutating call's action
    since_last_call: float | None = None  # seconds from that call's arrival to the kill
    # ENIs it began and a later process went on with, by the calls around it (kills.splits)
    split: dict[str, int] = field(default_factory=dict)
    done: int = 0  # ENIs attached (rollout) or deleted (teardown) when it was killed
    unanswered: int = 0  # its calls still awaiting their answer when it died (kills.unanswered)
    at: float = 0.0  # monotonic time of the SIGKILL


def _plan(case: ChaosCase, phase: str, kills: int) -> list[Kill]:
    """The seeded schedule: an anchor and a delay per kill, drawn before anything runs."""
    plan = []
    for number in range(1, kills + 1):
        anchor = "start" if case.rng.random() < START_SHARE else "work"
        window = START_WINDOW if anchor == "start" else WORK_WINDOW
        plan.append(
            Kill(phase=phase, number=number, anchor=anchor, delay=case.rng.uniform(0, window))
        )
    return plan


async def _kill_rounds(
    env: AWSEnv,
    replicas: Replicas,
    plan: Sequence[Kill],
    *,
    finished: Callable[[], Awaitable[bool]],
) -> float | None:
    """Kill the running process at each planned moment and start another; returns
    when (monotonic) the last SIGKILL went out (None: no kill planned). A kill's
    anchor is its process's start or first mutating call, but never earlier than
    the phase's own start (the teardown's first process began in the rollout)."""
    phase_started = time.monotonic()
    phase_calls = await asyncio.to_thread(mutating_calls, env.realism)
    last = None
    for kill in plan:
        process = replicas.current(REPLICA)
        assert process is not None
        assert process.alive, replicas.exited_early()
        anchored = max(process.started, phase_started)
        if kill.anchor == "work":
            first = await first_mutating_call(
                env.realism,
                after=max(process.calls_at_spawn, phase_calls),
                within=FIRST_CALL_WAIT,
            )
            if first is None:
                kill.anchor, first = "idle", time.monotonic()
            anchored = first
        await asyncio.sleep(max(0.0, anchored + kill.delay - time.monotonic()))
        kill.during = not await finished()
        kill.process = process.name
        last = kill.at = await replicas.kill(process)
        kill.uptime = round(kill.at - process.started, 2)
        replicas.start(REPLICA)
    return last


def _annotate(
    kills: Sequence[Kill],
    journal: Sequence[Mapping[str, Any]],
    replicas: Replicas,
    *,
    answer_latency: float,
) -> None:
    """Fill each kill's figures from the call journal: what its process did, and
    which ENIs it left half-way (their next call came from a later process)."""
    by_name = {i.name: i for i in replicas.incarnations}
    split = splits(journal, {i.access_key: i.name for i in replicas.incarnations})
    for kill in kills:
        process = by_name[kill.process]
        mine = [e for e in journal if e["caller"] == process.access_key]
        kill.calls = len(mine)
        kill.unanswered = unanswered(
            journal, caller=process.access_key, killed_at=kill.at, answer_latency=answer_latency
        )
        if mine:
            kill.first_call = round(mine[0]["at"] - process.started, 2)
            kill.last_call = mine[-1]["action"]
            kill.since_last_call = round(kill.at - mine[-1]["at"], 2)
        kill.split = dict(sorted(split.get(process.name, Counter()).items()))
        step = "AttachNetworkInterface" if kill.phase == "rollout" else "DeleteNetworkInterface"
        kill.done = len(
            {
                e["eni_id"]
                for e in journal
                if e["action"] == step and not e["error"] and e["at"] < kill.at
            }
        )


def _log_tail(process: Incarnation | None, lines: int = 30) -> str:
    path: Path | None = process.log_path if process is not None else None
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def _kill_case(
    env: AWSEnv, case: ChaosCase, kubeconfig: Path, state_dir: Path, *, shape: Shape
) -> None:
    result = case.result
    env.realism.configure(attach_latency=shape.attach_latency, detach_latency=shape.detach_latency)
    rollout_plan = _plan(case, "rollout", shape.rollout_kills)
    teardown_plan = _plan(case, "teardown", shape.teardown_kills)
    made: list[tuple[str, Instance]] = []
    settings = {
        "ENABLE_LEADER_ELECTION": "false",
        "EC2_MUTATING_RATE": str(shape.mutating_rate),
        "EC2_MUTATING_BURST": str(shape.mutating_rate),
    }
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
        async with replicas:
            await _run(env, case, replicas, shape, wanted, rollout_plan, teardown_plan)
    finally:
        await asyncio.to_thread(terminate, env.world, [instance for _, instance in made])
    assert result.violations == [], result.violations
    assert result.leaks == 0, result.details["leaked"]
    assert result.duplicates == 0, result.details["duplicate_enis"]
    assert result.details["creates_after_delete"] == 0
    # a restarted process may repeat only calls its predecessor never heard back about
    assert result.extra_mutating_calls <= result.details["unanswered_at_kills"], (
        result.details["calls"],
        result.details["errors"],
    )
    assert result.details["exited_early"] == []
    assert all(k["during"] for k in result.details["kills"]), "a kill landed after its phase"


async def _run(
    env: AWSEnv,
    case: ChaosCase,
    replicas: Replicas,
    shape: Shape,
    wanted: set[Slot],
    rollout_plan: list[Kill],
    teardown_plan: list[Kill],
) -> None:
    result = case.result
    replicas.start(REPLICA)
    await no_nodeenis(env.api, within=LEFTOVERS_WAIT)
    plans = {"rollout": rollout_plan, "teardown": teardown_plan}
    run = await disturbed_run(
        env,
        result,
        wanted=wanted,
        disturb=lambda phase, finished: _kill_rounds(
            env, replicas, plans[phase], finished=finished
        ),
        within=shape.converge_within,
        hold=HOLD,
        watch_every=WATCH_EVERY,
        explain=lambda: _log_tail(replicas.current(REPLICA)),
    )
    watch, remaining, deleted_at = run.watch, run.remaining, run.deleted_at
    rollout_converged, rollout_leaks = run.rollout_converged, run.rollout_leaks
    teardown_converged, left = run.teardown_converged, run.left

    calls = own_calls(
        env.realism.journal(),
        callers={i.access_key for i in replicas.incarnations},
        nodes={node for node, _ in wanted},
    )
    kills = [*rollout_plan, *teardown_plan]
    _annotate(kills, calls, replicas, answer_latency=shape.answer_latency)
    by_slot = created_by_slot(calls)
    duplicate_enis = {eni for ids in by_slot.values() for eni in ids[1:]} | watch.duplicate_enis
    after_delete = [
        e for e in calls if e["action"] == "CreateNetworkInterface" and e["at"] >= deleted_at
    ]
    baseline = len(wanted) * (ROLLOUT_CALLS_PER_ENI + TEARDOWN_CALLS_PER_ENI)
    actions = Counter(e["action"] for e in calls)
    firsts = [k.first_call for k in kills if k.first_call is not None]
    all_splits = sum((Counter(k.split) for k in kills), Counter[str]())
    result.leaks = rollout_leaks + len(remaining)
    result.duplicates = len(duplicate_enis)
    result.converge_seconds = None if teardown_converged is None else round(teardown_converged, 2)
    result.extra_mutating_calls = len(calls) - baseline
    result.details = {
        "nodes": shape.nodes,
        "enis": len(wanted),
        "shape": asdict(shape),
        "rollout_kills": len(rollout_plan),
        "teardown_kills": len(teardown_plan),
        "rollout_converge_seconds": round(rollout_converged, 2),
        "teardown_converge_seconds": result.converge_seconds,
        "mutating_calls": len(calls),
        "clean_run_calls": baseline,
        "unanswered_at_kills": sum(k.unanswered for k in kills),
        "calls": dict(sorted(actions.items())),
        "errors": dict(Counter(e["error"] for e in calls if e["error"])),
        "create_replays": create_replays(calls),
        "enis_created": sum(len(ids) for ids in by_slot.values()),
        "duplicate_enis": sorted(duplicate_enis),
        "coexisting_enis": sorted(watch.coexisting),
        "creates_after_delete": len(after_delete),
        "leaked": {
            "after_rollout": rollout_leaks,
            "after_teardown": sorted(e["NetworkInterfaceId"] for e in remaining),
        },
        "torn_down": left,
        "kills_splitting_an_eni": sum(half_way(k.split) > 0 for k in kills),
        "enis_half_way": half_way(all_splits),
        # its last call's answer was still held (answer_latency) when it died
        "kills_mid_call": sum(
            k.since_last_call is not None and k.since_last_call < shape.answer_latency
            for k in kills
        ),
        "splits": dict(all_splits),
        "first_call_after_spawn_p50": round(statistics.median(firsts), 2) if firsts else None,
        "first_call_after_spawn_max": max(firsts) if firsts else None,
        "kills": [asdict(k) for k in kills],
        "exited_early": replicas.exited_early(),
        "samples": watch.samples,
    }
    details = result.details
    print(
        f"FIGURE kill seed={case.seed}: {len(wanted)} ENIs, {len(kills)} kills "
        f"({details['kills_mid_call']} mid-call, {details['kills_splitting_an_eni']} left "
        f"an ENI half-way); rollout converged {details['rollout_converge_seconds']}s and teardown "
        f"{result.converge_seconds}s after the last kill; {result.leaks} leaks, "
        f"{result.duplicates} duplicates, {details['create_replays']} create replays, "
        f"{result.extra_mutating_calls} extra mutating calls ({len(calls)} vs {baseline})"
    )
    assert teardown_converged is not None, (
        f"teardown not done {shape.converge_within:.0f}s after the last kill: {left}\n"
        f"{_log_tail(replicas.current(REPLICA))}"
    )


@pytest.mark.slow
@pytest.mark.chaos_runs(2)
@pytest.mark.timeout(540)
async def test_kill(aws_env: AWSEnv, chaos_seed: int, kubeconfig: Path, tmp_path: Path) -> None:
    async with chaos_case("kill", chaos_seed, bound=420) as case:
        await _kill_case(aws_env, case, kubeconfig, tmp_path, shape=FULL)


@pytest.mark.timeout(90)
async def test_kill_smoke(
    aws_env: AWSEnv, chaos_seed: int, kubeconfig: Path, tmp_path: Path
) -> None:
    async with chaos_case("kill-smoke", chaos_seed, bound=60) as case:
        await _kill_case(aws_env, case, kubeconfig, tmp_path, shape=SMOKE)

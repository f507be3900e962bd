"""Chaos case 5, flapping: a node's label toggled about every second, the
NodeENI's subnet list edited back and forth about every 1.5 s, and the other
node replaced (deleted and created again under its name on a new instance)
about every 6 s (seeded jitter), then all left where they started. The
controller, running in-process against the real API server and moto with AWS
rules on, must end with exactly the wanted ENIs (one per (node, subnet),
invariants clean), never hold two ENIs in one slot along the way, and spend a
bounded number of mutating EC2 calls per flip. Since the case ends where it
started, every mutating call is churn: all of them count as extra. A
replacement must give the node new ENIs on its new instance: a ClientToken that
ignored the instance would hand back the old instance's ENI instead. Beside its
ENIs the case plants neighbours (case 8): an orphan of this cluster, which the
orphan sweep (every 2 s, 1 s grace) must reclaim meanwhile, and another
cluster's ENI and one without a cluster tag, which nothing may touch.

The full 30 s run (AWS-like detach latency) is `slow` + `chaos`; a 5 s smoke
runs in `make test`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.harness.chaos import ChaosCase, chaos_case
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    quiet,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, launch_instance
from tests.harness.ec2world import MULTUS_SUBNETS_A as SUBNETS
from tests.harness.fleet import label_node, make_nodes, nodeeni_spec
from tests.harness.invariants import (
    DuplicateWatch,
    Neighbours,
    attached_count,
    instance_devices,
    mutating_calls,
    neighbour_violations,
    nodeeni_violations,
    plant_neighbours,
    slots_of,
    tagged_enis,
    wait_converged,
)
from tests.harness.kube import merge_patch_nodeeni

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

LABEL_PERIOD = 1.0
SUBNET_PERIOD = 1.5
JITTER = 0.3  # +- seconds on each period, drawn from the case's seed
CONVERGE_WITHIN = 60.0
SWEEP_INTERVAL = 2.0
SWEEP_GRACE = 1.0
NEIGHBOURS_WITHIN = 20.0  # the orphan reclaimed: a few sweeps after convergence at most
HOLD = 1.0  # converged means: still clean, and no mutating call, this long after
# A flip changes at most 2 slots (the node's two subnets, or one subnet on two
# nodes); a slot costs Create + Attach + Modify on the way in and Detach +
# Delete on the way out: 6 calls per flip at most when every flip is carried out.
MAX_MUTATING_PER_FLIP = 6.0
REPLACE_PERIOD = 6.0
# A replacement moves both of the node's slots: 2 x (Detach + Delete) on the old
# instance, 2 x (Create + Attach + Modify) on the new one.
MAX_MUTATING_PER_REPLACEMENT = 10.0
INSTANCE_TYPE = "m5.large"


async def _flipper(
    case: ChaosCase, period: float, until: float, flip: Any, counts: dict[str, int], key: str
) -> None:
    """Call `flip(on)` with on alternating False, True, ... every period +- jitter."""
    on = True
    while True:
        await asyncio.sleep(period + case.rng.uniform(-JITTER, JITTER))
        if time.monotonic() >= until:
            return
        on = not on
        await flip(on)
        counts[key] += 1


async def _settled_neighbours(ec2: Any, planted: Neighbours) -> list[str]:
    """The planted neighbours' problems once the orphan is reclaimed, or as they
    stand after NEIGHBOURS_WITHIN."""
    deadline = time.monotonic() + NEIGHBOURS_WITHIN
    while True:
        problems = await asyncio.to_thread(neighbour_violations, ec2, planted)
        if not problems or time.monotonic() >= deadline:
            return problems
        await asyncio.sleep(0.5)


async def _flapping(env: AWSEnv, case: ChaosCase, *, seconds: float, detach_latency: float) -> None:
    result = case.result
    env.realism.configure(detach_latency=detach_latency)
    custom = client.CustomObjectsApi(env.api)
    core = client.CoreV1Api(env.api)
    both = nodeeni_spec(env.unique, env.world, *SUBNETS)
    first = nodeeni_spec(env.unique, env.world, SUBNETS[0])
    config = controller_config(
        env.world,
        cluster_name=env.unique,
        orphan_sweep_interval_seconds=SWEEP_INTERVAL,
        orphan_grace_period_seconds=SWEEP_GRACE,
    )
    async with running_controller(env.api, config) as controller:
        made = await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=2)
        names = [name for name, _ in made]
        planted = await asyncio.to_thread(
            plant_neighbours, env.world, cluster=env.unique, subnet=SUBNETS[0], node=names[1]
        )
        created = await env.nodeenis.create(env.unique, both)
        uid = created["metadata"]["uid"]
        wanted = {(n, env.world.subnet(s).id) for n in names for s in SUBNETS}
        await wait_for_nodeeni(
            env.api,
            env.unique,
            lambda o: is_ready(o) and attached_count(o) == len(wanted),
            within=60,
        )
        await quiet(controller, env.unique)

        async def flip_label(on: bool) -> None:
            await label_node(env.api, names[0], {"test": env.unique if on else None})

        async def flip_subnets(on: bool) -> None:
            await merge_patch_nodeeni(custom, env.unique, {"spec": both if on else first})

        instances = dict(made)

        async def replace_node(_: bool) -> None:
            instance = await asyncio.to_thread(
                launch_instance, env.world.endpoint, az=AZ_A, instance_type=INSTANCE_TYPE
            )
            await core.delete_node(names[1])
            await env.nodes.create(name=names[1], instance=instance, labels={"test": env.unique})
            instances[names[1]] = instance

        watch = DuplicateWatch(env.world, env.realism, (uid,))
        await watch.start()
        calls_before = env.realism.calls()
        mutating_before = mutating_calls(env.realism)
        counts = {"label": 0, "subnets": 0, "replacements": 0}
        sampler = asyncio.create_task(watch.run())
        try:
            until = time.monotonic() + seconds
            await asyncio.gather(
                _flipper(case, LABEL_PERIOD, until, flip_label, counts, "label"),
                _flipper(case, SUBNET_PERIOD, until, flip_subnets, counts, "subnets"),
                _flipper(case, REPLACE_PERIOD, until, replace_node, counts, "replacements"),
            )
            # left alone where it started: labelled, both subnets
            await flip_label(True)
            await flip_subnets(True)
            last_flip = time.monotonic()
            converged, unconverged = await wait_converged(
                env.api,
                env.world,
                env.unique,
                wanted=wanted,
                realism=env.realism,
                since=last_flip,
                within=CONVERGE_WITHIN,
                hold=HOLD,
                ec2=watch.ec2,
            )
            neighbours = await _settled_neighbours(watch.ec2, planted)
            if converged is None:
                for name, instance in instances.items():
                    devices = await asyncio.to_thread(instance_devices, watch.ec2, instance.id)
                    unconverged.append(f"{name} ({instance.id}): {devices}")
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        await watch.finish()

        flips = counts["label"] + counts["subnets"] + counts["replacements"]
        bound = (
            MAX_MUTATING_PER_FLIP * (counts["label"] + counts["subnets"])
            + MAX_MUTATING_PER_REPLACEMENT * counts["replacements"]
        )
        mutating = mutating_calls(env.realism) - mutating_before
        calls_after = env.realism.calls()
        enis = await asyncio.to_thread(tagged_enis, watch.ec2, uid)
        slots = slots_of(enis)
        result.converge_seconds = None if converged is None else round(converged, 2)
        result.violations = [
            *await nodeeni_violations(env.api, env.world, env.unique, wanted=wanted, ec2=watch.ec2),
            *neighbours,
        ]
        result.leaks = len(enis) - sum(1 for slot in wanted if slot in slots)
        result.duplicates = watch.duplicates
        result.extra_mutating_calls = mutating
        per_flip = mutating / flips if flips else 0.0
        result.details = {
            "flap_seconds": seconds,
            "detach_latency": detach_latency,
            "label_flips": counts["label"],
            "subnet_flips": counts["subnets"],
            "replacements": counts["replacements"],
            "flips": flips,
            "mutating_bound": bound,
            "mutating_calls": mutating,
            "mutating_per_flip": round(per_flip, 2),
            "creates": watch.made,
            "create_requests": watch.create_requests,
            "coexisting_enis": sorted(watch.coexisting),
            "journal_overlaps": sorted(watch.overlaps),
            "enis_seen": len(watch.seen),
            "neighbour_problems": neighbours,
            "samples": watch.samples,
            "calls": {
                action: n - calls_before.get(action, 0)
                for action, n in sorted(calls_after.items())
                if n != calls_before.get(action, 0)
            },
        }
        print(
            f"FIGURE flapping seed={case.seed}: {flips} flips in {seconds:.0f}s, "
            f"{mutating} mutating calls ({per_flip:.2f}/flip), "
            f"converged {result.converge_seconds}s after the last flip; "
            f"{result.leaks} leaks, {result.duplicates} duplicates"
        )
        assert converged is not None, f"not converged in {CONVERGE_WITHIN:.0f}s: {unconverged}"
        assert result.violations == []
        assert result.leaks == 0
        assert watch.duplicates == 0, watch.explain()
        # no answer is lost here, so no create may be a replay: one that made no ENI
        # handed back an existing one for a ClientToken it should not have reused
        assert watch.create_requests == watch.made, result.details
        assert flips > 0
        assert mutating <= bound, result.details
        # on its new instance, every slot of the replaced node is attached there
        status = await wait_for_nodeeni(env.api, env.unique, lambda o: True)
        on = {a["instanceID"] for a in status["status"]["attachments"] if a["nodeID"] == names[1]}
        assert on == {instances[names[1]].id}, on


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_flapping(aws_env: AWSEnv, chaos_seed: int) -> None:
    async with chaos_case("flapping", chaos_seed, bound=200) as case:
        await _flapping(aws_env, case, seconds=30.0, detach_latency=2.0)


@pytest.mark.timeout(120)
async def test_flapping_smoke(aws_env: AWSEnv, chaos_seed: int) -> None:
    async with chaos_case("flapping-smoke", chaos_seed, bound=90) as case:
        await _flapping(aws_env, case, seconds=5.0, detach_latency=0.5)

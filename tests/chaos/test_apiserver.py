"""Chaos cases 2 and 3: the Kubernetes API server goes away, cuts watches, and
fails writes. The controller's every decision rests on its informers and its
writes to that server; these cases check that losing it, for seconds or for a
fraction of requests, costs time but never an ENI: no duplicate, no leak, no
key pinned, no relist storm.

- 2a, API server restart: the case's own kube-apiserver (etcd kept, so every
  object and resourceVersion survives) is stopped (seeded: SIGKILL, or SIGTERM
  with 1-4 s to drain), left down 0.5-3 s and started again on the same port,
  once in the middle of a rollout (after a seeded number of its Create, Attach
  and Modify calls) and once in the middle of its teardown (after a seeded
  number of Detach and Delete calls). The controller runs in-process with the
  private server's client, which reaches the restarted process unchanged. How
  soon after each restart a change reaches the informers is measured too: the
  restarted server answers the informers' old resourceVersions with 410.
- 2b, watch cuts: the controller talks to the shared API server through
  KubeFaultProxy, which cuts every watch a seeded 0.2-2.5 s in, answers a
  seeded fraction of watches with the 410 Expired event etcd compaction
  causes, and delays a seeded fraction of other requests, while nodes' labels
  and the NodeENI's subnets are edited. The proxy counts LIST requests per
  resource: a cut watch must resume from its resourceVersion, so every relist
  beyond the first list is owed to a 410.
- 3, API server faults: through the proxy, a seeded fraction of the writes
  (NodeENI finalizers and status, Events) for a seeded half of several
  NodeENIs is answered 429 with Retry-After, 500, or hangs past
  KUBE_REQUEST_TIMEOUT (and lands late). The other NodeENIs must converge, and
  be torn down, while the faults are on; the faulty ones once they stop.

Each case: duplicates watched all along (`DuplicateWatch`: EC2 sampled, and
every ENI's life read from the EC2 call journal), the invariants of
tests/harness/invariants.py at the end, figures in the case's JSON row
(bench/results/chaos/). Full runs are `slow`; a smoke form of each (one seed,
well under 30 s) runs in `make test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client

from eni_controller.controller import Controller
from eni_controller.metrics import Metrics
from tests.conftest import NodeENIs
from tests.harness.apiserver import APIServerEndpoint, LocalAPIServer
from tests.harness.chaos import (
    ROLLOUT_CALLS_PER_ENI,
    TEARDOWN_CALLS_PER_ENI,
    ChaosCase,
    ChaosResult,
    chaos_case,
)
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    quiet,
    read_nodeeni,
    running_controller,
)
from tests.harness.ec2world import AZ_A, World, launch_instance
from tests.harness.ec2world import MULTUS_SUBNETS_A as SUBNETS
from tests.harness.fleet import delete_nodeeni, label_node, make_nodes, nodeeni_spec
from tests.harness.invariants import DuplicateWatch, Slot, enis_of_uids
from tests.harness.kube import (
    NodeFactory,
    api_client_from_kubeconfig,
    install_crd,
    merge_patch_nodeeni,
)
from tests.harness.kubeproxy import (
    ANSWER_429,
    Delay,
    Flaky,
    RequestInfo,
    WatchCuts,
    running_kube_proxy,
)
from tests.harness.realism.control import RealismControl
from tests.harness.settling import settled, torn_down

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

# An ENI costs Create + Attach + Modify(DeleteOnTermination) on the way in and
# Detach + Delete on the way out: every other mutating call is extra.
CONVERGE_WITHIN = 90.0
TEST_ACTIONS = frozenset({"RunInstances", "TerminateInstances"})  # the test's, not the controller's
ROLLOUT_ACTIONS = (
    "CreateNetworkInterface",
    "AttachNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
)
TEARDOWN_ACTIONS = ("DetachNetworkInterface", "DeleteNetworkInterface")
# case 3: the controller's request timeout (a hang outlasts it), the share of the
# faulty NodeENIs' writes that fail, and the MTU their spec edits toggle to
KUBE_REQUEST_TIMEOUT = 1.5
FAULT_RATE = 0.7
MTU_JUMBO = 9001
PROBE = "chaos-probe"  # a label / annotation the controller ignores: has its informer seen it?


# --- shared ---------------------------------------------------------------------------


def _wanted(nodes: list[str], world: World, subnets: tuple[str, ...]) -> set[Slot]:
    return {(node, world.subnet(s).id) for node in nodes for s in subnets}


async def _calls(realism: RealismControl) -> dict[str, int]:
    return await asyncio.to_thread(realism.calls)


def _mutating(calls: dict[str, int]) -> int:
    """The controller's mutating EC2 calls among `calls` (an action → count delta):
    not Describe*, and not the instances the test itself launches."""
    return sum(
        n
        for action, n in calls.items()
        if not action.startswith("Describe") and action not in TEST_ACTIONS
    )


async def _wait_calls(
    realism: RealismControl,
    actions: tuple[str, ...],
    *,
    at_least: int,
    since: dict[str, int],
    within: float,
) -> int:
    """Until the EC2 server has seen `at_least` calls of `actions` after the counts
    `since`; returns how many it had seen."""
    async with asyncio.timeout(within):
        while True:
            now = await _calls(realism)
            seen = sum(now.get(a, 0) - since.get(a, 0) for a in actions)
            if seen >= at_least:
                return seen
            await asyncio.sleep(0.05)


def _errors_by_class(metrics: Metrics) -> dict[str, int]:
    """Failed reconciles by error class, from the controller's own metric."""
    found: dict[str, int] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "eni_controller_reconcile_errors_total":
                found[sample.labels["error"]] = int(sample.value)
    return dict(sorted(found.items()))


def _call_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        action: n - before.get(action, 0)
        for action, n in sorted(after.items())
        if n != before.get(action, 0)
    }


@contextlib.asynccontextmanager
async def _sampling(
    watch: DuplicateWatch, *, also: list[asyncio.Task[None]] | None = None
) -> AsyncIterator[DuplicateWatch]:
    """`watch` sampling EC2 in the background for the block's duration, once more
    after, and its journal read (`finish`); the tasks `also` are cancelled at the
    end too, if still running."""
    tasks = list(also or ())
    try:
        await watch.start()
        tasks.append(asyncio.create_task(watch.run()))
        yield watch
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await watch.finish()


def _fill_common(result: ChaosResult, watch: DuplicateWatch, *, mutating: int, left: int) -> None:
    """Leaks (ENIs left), duplicates, and the mutating calls beyond each ENI's
    life cycle (every case ends with everything torn down)."""
    result.leaks = left
    result.duplicates = watch.duplicates
    result.extra_mutating_calls = (
        mutating - (ROLLOUT_CALLS_PER_ENI + TEARDOWN_CALLS_PER_ENI) * watch.made
    )


def _assert_common(result: ChaosResult, watch: DuplicateWatch) -> None:
    assert result.violations == []
    assert result.leaks == 0
    assert watch.duplicates == 0, watch.explain()


# --- case 2a: API server restart ------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Restartable:
    """The case's own API server, which it may stop and start again."""

    server: LocalAPIServer
    endpoint: APIServerEndpoint


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restartable]:
    if os.environ.get("ENI_TEST_KUBECONFIG"):
        pytest.skip("restarts a local kube-apiserver of its own; not with an existing cluster")
    server = LocalAPIServer(tmp_path_factory.mktemp("restartable-apiserver"))
    try:
        endpoint = server.start()
        yield Restartable(server=server, endpoint=endpoint)
    finally:
        server.stop()


@pytest.fixture
async def restart_env(
    restartable: Restartable, ec2_world: World, realism: RealismControl, unique: str
) -> AsyncIterator[AWSEnv]:
    """Like `aws_env`, against the case's own API server."""
    api = await api_client_from_kubeconfig(restartable.endpoint.kubeconfig)
    nodes, nodeenis = NodeFactory(api), NodeENIs(api)
    try:
        await install_crd(api)
        realism.aws_rules()
        yield AWSEnv(
            api=api,
            nodes=nodes,
            nodeenis=nodeenis,
            world=ec2_world,
            realism=realism,
            unique=unique,
        )
    finally:
        if not restartable.server.apiserver_running:  # the case failed while it was down
            await asyncio.to_thread(restartable.server.start_apiserver)
        await nodeenis.cleanup()
        await nodes.cleanup()
        await api.close()


@dataclass(kw_only=True)
class Restart:
    """One stop and start of the API server, as the case drew and saw it."""

    phase: str
    trigger: tuple[str, ...]  # the EC2 actions whose count decides when
    at_least: int  # calls of `trigger` since the phase began
    kill: bool
    grace: float  # SIGTERM: seconds to drain before SIGKILL (open watches keep it up)
    down: float  # seconds between stopped and started again
    seen_at_stop: int = 0
    outage: float = 0.0  # seconds from the stop until /readyz answered again
    converge: float | None = None
    informer_lag: float | None = None  # seconds until a change made then was seen

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "trigger": f"{'+'.join(self.trigger)} >= {self.at_least}",
            "signal": "SIGKILL" if self.kill else f"SIGTERM, {self.grace:.1f}s grace",
            "down_s": round(self.down, 2),
            "seen_at_stop": self.seen_at_stop,
            "outage_s": round(self.outage, 2),
            "converge_s": None if self.converge is None else round(self.converge, 2),
            "informer_lag_s": None if self.informer_lag is None else round(self.informer_lag, 2),
        }


def _draw_restart(case: ChaosCase, *, phase: str, trigger: tuple[str, ...], calls: int) -> Restart:
    """A stop somewhere in the first three quarters of a phase of `calls` calls."""
    return Restart(
        phase=phase,
        trigger=trigger,
        at_least=case.rng.randint(1, max(1, calls * 3 // 4)),
        kill=case.rng.random() < 0.5,
        grace=case.rng.uniform(1.0, 4.0),
        down=case.rng.uniform(0.5, 3.0),
    )


async def _restart_when(
    server: LocalAPIServer,
    realism: RealismControl,
    restart: Restart,
    *,
    since: dict[str, int],
    within: float,
) -> float:
    """Once the EC2 server has seen `restart.at_least` calls of its trigger actions
    after `since`, stop the API server, wait `restart.down`, start it; returns when
    it was ready again."""
    restart.seen_at_stop = await _wait_calls(
        realism, restart.trigger, at_least=restart.at_least, since=since, within=within
    )
    stopped = time.monotonic()
    # blocking process work off the loop: the in-process controller keeps running
    await asyncio.to_thread(server.stop_apiserver, kill=restart.kill, grace=restart.grace)
    await asyncio.sleep(restart.down)
    await asyncio.to_thread(server.start_apiserver)
    ready = time.monotonic()
    restart.outage = ready - stopped
    return ready


def _lag_bound(outage: float) -> float:
    """How long after a restart a change may take to reach the informers. While
    the server is down their watches back off exponentially, so the next attempt
    can come up to about as long after its return as the outage lasted (twice,
    for the jitter); the 410 the restarted server answers must add nothing (before
    the fix of informer._expired it added the outage's backoff again: 34 s after a
    5 s outage, seed 3). One second more for the probe's own round trips."""
    return 2 * outage + 1.0


async def _informer_lag(
    controller: Controller,
    api: client.ApiClient,
    *,
    node: str,
    nodeeni: str | None,
    within: float,
) -> float | None:
    """Seconds until the controller's informers hold a change made now: a probe
    label on `node` and, if given, a probe annotation on `nodeeni` (neither is
    read by the controller). None if not within `within`."""
    started = time.monotonic()
    stamp = f"{started:.3f}"
    await label_node(api, node, {PROBE: stamp})
    if nodeeni is not None:
        custom = client.CustomObjectsApi(api)
        await merge_patch_nodeeni(custom, nodeeni, {"metadata": {"annotations": {PROBE: stamp}}})

    def probe(obj: dict[str, Any] | None, field: str) -> str | None:
        return None if obj is None else (obj["metadata"].get(field) or {}).get(PROBE)

    while time.monotonic() - started < within:
        if probe(controller.nodes.get(node), "labels") == stamp and (
            nodeeni is None or probe(controller.nodeenis.get(nodeeni), "annotations") == stamp
        ):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def _apiserver_restart(
    env: AWSEnv,
    server: LocalAPIServer,
    case: ChaosCase,
    *,
    nodes: int,
    attach_latency: float,
    detach_latency: float,
) -> None:
    result = case.result
    env.realism.configure(attach_latency=attach_latency, detach_latency=detach_latency)
    metrics = Metrics()
    slots = nodes * len(SUBNETS)
    config = controller_config(env.world)
    async with running_controller(env.api, config, metrics=metrics) as controller:
        calls_before = await _calls(env.realism)
        # the NodeENI first, nodes after: no ENI exists before the watch starts counting
        created = await env.nodeenis.create(
            env.unique, nodeeni_spec(env.unique, env.world, *SUBNETS)
        )
        uid = created["metadata"]["uid"]
        watch = DuplicateWatch(env.world, env.realism, (uid,))
        restarts = [
            _draw_restart(
                case, phase="rollout", trigger=ROLLOUT_ACTIONS, calls=len(ROLLOUT_ACTIONS) * slots
            ),
            _draw_restart(
                case,
                phase="teardown",
                trigger=TEARDOWN_ACTIONS,
                calls=len(TEARDOWN_ACTIONS) * slots,
            ),
        ]
        rollout, teardown = restarts
        async with _sampling(watch):
            made = await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=nodes)
            wanted = _wanted([name for name, _ in made], env.world, SUBNETS)
            probed = made[0][0]
            back = await _restart_when(
                server, env.realism, rollout, since=calls_before, within=CONVERGE_WITHIN
            )
            lag = asyncio.create_task(
                _informer_lag(
                    controller, env.api, node=probed, nodeeni=env.unique, within=CONVERGE_WITHIN
                )
            )
            rollout.converge, unconverged = await settled(
                env.api,
                env.realism,
                watch.ec2,
                {env.unique: wanted},
                since=back,
                within=CONVERGE_WITHIN,
            )
            rollout.informer_lag = await lag
            assert rollout.converge is not None, f"rollout never converged: {unconverged}"

            teardown_from = await _calls(env.realism)
            await delete_nodeeni(env.nodeenis, env.unique)
            back = await _restart_when(
                server, env.realism, teardown, since=teardown_from, within=CONVERGE_WITHIN
            )
            lag = asyncio.create_task(
                _informer_lag(
                    controller, env.api, node=probed, nodeeni=None, within=CONVERGE_WITHIN
                )
            )
            teardown.converge, left = await torn_down(
                env.api, watch.ec2, {env.unique: uid}, since=back, within=CONVERGE_WITHIN
            )
            teardown.informer_lag = await lag
        calls = _call_delta(calls_before, await _calls(env.realism))
        mutating = _mutating(calls)
        remaining = await asyncio.to_thread(enis_of_uids, watch.ec2, [uid])

    result.violations = left
    _fill_common(result, watch, mutating=mutating, left=len(remaining))
    converged = [r.converge for r in restarts if r.converge is not None]
    result.converge_seconds = round(max(converged), 2) if len(converged) == len(restarts) else None
    result.details = {
        "nodes": nodes,
        "enis": slots,
        "attach_latency": attach_latency,
        "detach_latency": detach_latency,
        "restarts": [r.as_dict() for r in restarts],
        "converge_rollout_s": rollout.as_dict()["converge_s"],
        "converge_teardown_s": teardown.as_dict()["converge_s"],
        "mutating_calls": mutating,
        "create_requests": watch.create_requests,
        "enis_made": watch.made,
        "coexisting_enis": sorted(watch.coexisting),
        "journal_overlaps": sorted(watch.overlaps),
        "samples": watch.samples,
        "reconcile_errors": _errors_by_class(metrics),
        "calls": calls,
    }
    print(
        f"FIGURE apiserver-restart seed={case.seed}: {slots} ENIs; "
        + "; ".join(
            f"{r.phase}: {r.as_dict()['signal']} after {r.seen_at_stop} calls, "
            f"outage {r.outage:.1f}s, converged {r.as_dict()['converge_s']}s after, "
            f"informers {r.as_dict()['informer_lag_s']}s after"
            for r in restarts
        )
        + f"; {mutating} mutating calls (extra {result.extra_mutating_calls}), "
        f"{result.leaks} leaks, {result.duplicates} duplicates"
    )
    assert teardown.converge is not None, f"teardown never finished: {left}"
    _assert_common(result, watch)
    for restart in restarts:
        assert restart.informer_lag is not None, f"informers never saw the probe: {restart}"
        assert restart.informer_lag <= _lag_bound(restart.outage), restart.as_dict()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_apiserver_restart(
    restart_env: AWSEnv, restartable: Restartable, chaos_seed: int
) -> None:
    async with chaos_case("apiserver-restart", chaos_seed, bound=240) as case:
        await _apiserver_restart(
            restart_env,
            restartable.server,
            case,
            nodes=12,
            attach_latency=1.0,
            detach_latency=1.0,
        )


@pytest.mark.timeout(120)
async def test_apiserver_restart_smoke(
    restart_env: AWSEnv, restartable: Restartable, chaos_seed: int
) -> None:
    async with chaos_case("apiserver-restart-smoke", chaos_seed, bound=60) as case:
        await _apiserver_restart(
            restart_env,
            restartable.server,
            case,
            nodes=3,
            attach_latency=0.5,
            detach_latency=0.5,
        )


# --- case 2b: watch cuts --------------------------------------------------------------


async def _informer_caught_up(
    controller: Controller, api: client.ApiClient, nodes: list[str], nodeeni: str
) -> bool:
    """The controller's informers hold the server's current version of the case's
    Nodes and NodeENI."""
    core = client.CoreV1Api(api)
    for name in nodes:
        server = (await core.read_node(name)).metadata.resource_version
        cached = controller.nodes.get(name)
        if cached is None or cached["metadata"]["resourceVersion"] != server:
            return False
    server_obj = await read_nodeeni(api, nodeeni)
    cached = controller.nodeenis.get(nodeeni)
    return (
        cached is not None
        and cached["metadata"]["resourceVersion"] == server_obj["metadata"]["resourceVersion"]
    )


async def _watch_cuts(
    env: AWSEnv, kubeconfig: Path, case: ChaosCase, *, nodes: int, seconds: float
) -> None:
    result = case.result
    custom = client.CustomObjectsApi(env.api)
    both = nodeeni_spec(env.unique, env.world, *SUBNETS)
    first = nodeeni_spec(env.unique, env.world, SUBNETS[0])
    slots = nodes * len(SUBNETS)
    metrics = Metrics()
    # one stream per source of randomness: each replays whatever the others do
    cut_rng, delay_rng, churn_rng = (random.Random(case.rng.random()) for _ in range(3))
    async with running_kube_proxy(kubeconfig) as proxy, proxy.api_client() as proxied:
        cuts = WatchCuts(path_contains="/", rng=cut_rng, after=(0.2, 2.5), expire_probability=0.15)
        delays = Delay(
            method=None,
            path_contains="/",
            watch=False,
            rng=delay_rng,
            probability=0.3,
            seconds=(0.0, 0.3),
        )
        proxy.add(cuts)
        proxy.add(delays)
        config = controller_config(env.world)
        async with running_controller(proxied, config, metrics=metrics) as controller:
            await quiet(controller, env.unique)
            calls_before = await _calls(env.realism)
            created = await env.nodeenis.create(env.unique, both)
            uid = created["metadata"]["uid"]
            watch = DuplicateWatch(env.world, env.realism, (uid,))
            counts = {"label": 0, "subnets": 0}
            async with _sampling(watch):
                made = await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=nodes)
                names = [name for name, _ in made]
                wanted = _wanted(names, env.world, SUBNETS)
                labelled = dict.fromkeys(names, True)
                two_subnets = True
                until = time.monotonic() + seconds
                while True:
                    await asyncio.sleep(churn_rng.uniform(0.3, 1.2))
                    if time.monotonic() >= until:
                        break
                    if churn_rng.random() < 0.75:
                        node = churn_rng.choice(names)
                        labelled[node] = not labelled[node]
                        await label_node(
                            env.api, node, {"test": env.unique if labelled[node] else None}
                        )
                        counts["label"] += 1
                    else:
                        two_subnets = not two_subnets
                        spec = both if two_subnets else first
                        await merge_patch_nodeeni(custom, env.unique, {"spec": spec})
                        counts["subnets"] += 1
                # back where it started: every node labelled, both subnets
                for node in (n for n, on in labelled.items() if not on):
                    await label_node(env.api, node, {"test": env.unique})
                if not two_subnets:
                    await merge_patch_nodeeni(custom, env.unique, {"spec": both})
                last_change = time.monotonic()
                converged, unconverged = await settled(
                    env.api,
                    env.realism,
                    watch.ec2,
                    {env.unique: wanted},
                    since=last_change,
                    within=CONVERGE_WITHIN,
                )
                assert converged is not None, f"not converged with watch cuts: {unconverged}"
                caught_up = await _within(
                    lambda: _informer_caught_up(controller, env.api, names, env.unique),
                    within=CONVERGE_WITHIN,
                )
                traffic = {r: proxy.traffic.of(r).as_dict() for r in ("nodes", "nodeenis")}
                cut_total, expired_total = cuts.cuts, cuts.expired
                # the teardown, faults off: part of the net change, not of the cut figures
                proxy.remove(cuts)
                proxy.remove(delays)
                await delete_nodeeni(env.nodeenis, env.unique)
                gone, left = await torn_down(
                    env.api,
                    watch.ec2,
                    {env.unique: uid},
                    since=time.monotonic(),
                    within=CONVERGE_WITHIN,
                )
            calls = _call_delta(calls_before, await _calls(env.realism))
            mutating = _mutating(calls)
            remaining = await asyncio.to_thread(enis_of_uids, watch.ec2, [uid])

    result.violations = left
    _fill_common(result, watch, mutating=mutating, left=len(remaining))
    result.converge_seconds = round(converged, 2)
    relists = {r: traffic[r]["lists"] - 1 for r in traffic}
    result.details = {
        "nodes": nodes,
        "enis": slots,
        "churn_seconds": seconds,
        "label_flips": counts["label"],
        "subnet_flips": counts["subnets"],
        "watch_cuts": cut_total,
        "expired_injected": expired_total,
        "delayed_requests": delays.delayed,
        "traffic": traffic,
        "lists": {r: traffic[r]["lists"] for r in traffic},
        "watches": {r: traffic[r]["watches"] for r in traffic},
        "gone": {r: traffic[r]["gone"] for r in traffic},
        "relists": relists,
        "informer_caught_up_s": None if caught_up is None else round(caught_up, 2),
        "teardown_s": None if gone is None else round(gone, 2),
        "mutating_calls": mutating,
        "create_requests": watch.create_requests,
        "enis_made": watch.made,
        "coexisting_enis": sorted(watch.coexisting),
        "journal_overlaps": sorted(watch.overlaps),
        "samples": watch.samples,
        "reconcile_errors": _errors_by_class(metrics),
        "calls": calls,
    }
    print(
        f"FIGURE watch-cuts seed={case.seed}: {cut_total} cuts, {expired_total} expired, "
        f"{delays.delayed} delayed; lists {result.details['lists']}, "
        f"watches {result.details['watches']}, 410s {result.details['gone']}; "
        f"converged {result.converge_seconds}s after the last change; "
        f"{result.leaks} leaks, {result.duplicates} duplicates"
    )
    assert caught_up is not None, "the informers never caught up with the server"
    assert gone is not None, f"teardown never finished: {left}"
    _assert_common(result, watch)
    assert cut_total > 0
    for resource, counted in traffic.items():
        # a cut watch resumes from its resourceVersion: only a 410 may cost a relist
        assert counted["lists"] <= 1 + counted["gone"], (resource, counted)


async def _within(check: Any, *, within: float) -> float | None:
    """Seconds until the async `check()` is true; None if not within `within`."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started >= within:
            return None
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_watch_cuts(aws_env: AWSEnv, kubeconfig: Path, chaos_seed: int) -> None:
    async with chaos_case("watch-cuts", chaos_seed, bound=240) as case:
        await _watch_cuts(aws_env, kubeconfig, case, nodes=4, seconds=20.0)


@pytest.mark.timeout(120)
async def test_watch_cuts_smoke(aws_env: AWSEnv, kubeconfig: Path, chaos_seed: int) -> None:
    async with chaos_case("watch-cuts-smoke", chaos_seed, bound=60) as case:
        await _watch_cuts(aws_env, kubeconfig, case, nodes=2, seconds=5.0)


# --- case 3: API server faults on writes ----------------------------------------------


def _faulty_writes(names: frozenset[str]) -> Any:
    """Selects the writes about the NodeENIs `names`: their finalizer and status
    patches, and Events about them (named `<name>.<time in ns, hex>`)."""

    async def select(request: web.Request, info: RequestInfo) -> bool:
        if info.resource == "nodeenis":
            return info.name in names
        if info.resource == "events":
            if info.name:
                return info.name.rsplit(".", 1)[0] in names
            body = json.loads(await request.read() or b"{}")
            return (body.get("involvedObject") or {}).get("name") in names
        return False

    return select


def _after_429(log: list[tuple[float, RequestInfo, str]], retry_after: float) -> dict[str, Any]:
    """For each 429 on a NodeENI write: how soon the next write of that NodeENI came.
    `sooner` counts those that came before the Retry-After the answer asked for."""
    gaps: list[float] = []
    for i, (at, info, outcome) in enumerate(log):
        if outcome != ANSWER_429 or info.resource != "nodeenis":
            continue
        later = (
            t
            for t, other, _ in log[i + 1 :]
            if (other.resource, other.name) == (info.resource, info.name)
        )
        nxt = next(later, None)
        if nxt is not None:
            gaps.append(nxt - at)
    return {
        "answered_429": sum(1 for _, i, o in log if o == ANSWER_429 and i.resource == "nodeenis"),
        "retried": len(gaps),
        "sooner_than_retry_after": sum(1 for g in gaps if g < retry_after),
        "min_gap_s": round(min(gaps), 3) if gaps else None,
    }


async def _longest_busy(controller: Controller, longest: dict[str, Any]) -> None:
    """Until cancelled: the longest any worker has been on one key, and which."""
    while True:
        for busy in controller.workers.busy()[:1]:
            if busy.seconds > longest["seconds"]:
                longest.update(seconds=round(busy.seconds, 2), key=str(busy.key))
        await asyncio.sleep(0.1)


async def _make_slot_nodes(
    nodes: NodeFactory, world: World, unique: str, nodeeni: str, *, count: int
) -> list[str]:
    made = []
    for i in range(count):
        instance = launch_instance(world.endpoint, az=AZ_A, instance_type="m5.large")
        name = f"{nodeeni}-n{i}"
        await nodes.create(name=name, instance=instance, labels={"test": unique, "slot": nodeeni})
        made.append(name)
    return made


async def _churn_mtu(
    custom: client.CustomObjectsApi,
    alive: set[str],
    rng: random.Random,
    counts: dict[str, int],
) -> None:
    """Until cancelled: every 0.5-1.5 s toggle spec.mtu of one NodeENI of `alive`,
    so the controller has status writes to make (and to fail) all along."""
    mtu: dict[str, int] = {}
    while True:
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        if not alive:
            continue
        name = rng.choice(sorted(alive))
        mtu[name] = 1500 if mtu.get(name) == MTU_JUMBO else MTU_JUMBO
        await merge_patch_nodeeni(custom, name, {"spec": {"mtu": mtu[name]}})
        counts["mtu_edits"] += 1


async def _write_faults(
    env: AWSEnv,
    kubeconfig: Path,
    case: ChaosCase,
    *,
    nodeenis: int,
    nodes_each: int,
    min_fault_seconds: float,
) -> None:
    result = case.result
    # one stream per source of randomness: the fault's draws replay whatever the churn does
    fault_rng, churn_rng = (random.Random(case.rng.random()) for _ in range(2))
    names = [f"{env.unique}-{i}" for i in range(nodeenis)]
    faulty = frozenset(case.rng.sample(names, k=max(1, nodeenis // 2)))
    healthy = [n for n in names if n not in faulty]
    # deleted while the faults are on: one of each kind
    doomed = {case.rng.choice(sorted(faulty)), case.rng.choice(healthy)}
    slots_each = nodes_each * len(SUBNETS)
    metrics = Metrics()
    custom = client.CustomObjectsApi(env.api)
    async with running_kube_proxy(kubeconfig) as proxy, proxy.api_client() as proxied:
        flaky = Flaky(
            rng=fault_rng,
            rate=FAULT_RATE,
            hang_seconds=KUBE_REQUEST_TIMEOUT + 1.0,
            retry_after=1,
            select=_faulty_writes(faulty),
        )
        # fewer workers than faulty NodeENIs: a hung request holding its worker
        # would starve the healthy ones
        config = controller_config(
            env.world,
            kube_request_timeout_seconds=KUBE_REQUEST_TIMEOUT,
            max_concurrent_reconciles=2,
        )
        async with running_controller(proxied, config, metrics=metrics) as controller:
            await quiet(controller, env.unique)
            calls_before = await _calls(env.realism)
            proxy.add(flaky)
            faults_on = time.monotonic()
            uids: dict[str, str] = {}
            for name in names:
                spec = {
                    **nodeeni_spec(env.unique, env.world, *SUBNETS),
                    "nodeSelector": {"test": env.unique, "slot": name},
                }
                uids[name] = (await env.nodeenis.create(name, spec))["metadata"]["uid"]
            watch = DuplicateWatch(env.world, env.realism, tuple(uids.values()))
            busiest: dict[str, Any] = {"seconds": 0.0}
            counts = {"mtu_edits": 0}
            churned = set(faulty)
            samplers = [
                asyncio.create_task(_longest_busy(controller, busiest)),
                asyncio.create_task(_churn_mtu(custom, churned, churn_rng, counts)),
            ]
            async with _sampling(watch, also=samplers):
                wanted: dict[str, set[Slot]] = {}
                for name in names:
                    made = await _make_slot_nodes(
                        env.nodes, env.world, env.unique, name, count=nodes_each
                    )
                    wanted[name] = _wanted(made, env.world, SUBNETS)
                # the healthy ones converge, and are torn down, with the faults on
                healthy_converged, problems = await settled(
                    env.api,
                    env.realism,
                    watch.ec2,
                    {n: wanted[n] for n in healthy},
                    since=faults_on,
                    within=CONVERGE_WITHIN,
                )
                assert healthy_converged is not None, f"healthy NodeENIs, faults on: {problems}"
                churned.difference_update(doomed)
                for name in sorted(doomed):
                    await delete_nodeeni(env.nodeenis, name)
                deleted_at = time.monotonic()
                healthy_doomed = {n: uids[n] for n in doomed if n not in faulty}
                healthy_gone, left = await torn_down(
                    env.api, watch.ec2, healthy_doomed, since=deleted_at, within=CONVERGE_WITHIN
                )
                assert healthy_gone is not None, f"healthy NodeENI deleted, faults on: {left}"
                await asyncio.sleep(max(0.0, faults_on + min_fault_seconds - time.monotonic()))
                for task in samplers:  # the last mtu edit is in before the faults stop
                    task.cancel()
                await asyncio.gather(*samplers, return_exceptions=True)
                survivors = {n: wanted[n] for n in faulty if n not in doomed}
                already, _ = await settled(
                    env.api, env.realism, watch.ec2, survivors, since=0.0, within=0.0, hold=0.0
                )
                proxy.remove(flaky)
                faults_off = time.monotonic()
                fault_seconds = faults_off - faults_on
                live_at_off = controller.live()

                # the faulty ones converge once the faults stop
                faulty_converged, problems = await settled(
                    env.api,
                    env.realism,
                    watch.ec2,
                    survivors,
                    since=faults_off,
                    within=CONVERGE_WITHIN,
                )
                faulty_doomed = {n: uids[n] for n in doomed if n in faulty}
                faulty_gone, left = await torn_down(
                    env.api, watch.ec2, faulty_doomed, since=faults_off, within=CONVERGE_WITHIN
                )
                requeues = {n: controller.queue.num_requeues(n) for n in names}
                live_after = controller.live()
                # settled: no worker may still be on a key a request timeout could not end
                pinned = controller.workers.stuck(longer_than=2 * KUBE_REQUEST_TIMEOUT)
                # everything left torn down, faults off: the rest of the net change
                rest = {n: uids[n] for n in names if n not in doomed}
                for name in rest:
                    await delete_nodeeni(env.nodeenis, name)
                final_gone, final_left = await torn_down(
                    env.api, watch.ec2, rest, since=time.monotonic(), within=CONVERGE_WITHIN
                )
            calls = _call_delta(calls_before, await _calls(env.realism))
            mutating = _mutating(calls)
            remaining = await asyncio.to_thread(enis_of_uids, watch.ec2, list(uids.values()))

    result.violations = [*problems, *left, *final_left]
    _fill_common(result, watch, mutating=mutating, left=len(remaining))
    after_off = [t for t in (faulty_converged, faulty_gone) if t is not None]
    result.converge_seconds = round(max(after_off), 2) if len(after_off) == 2 else None
    injected = dict(sorted(flaky.outcomes_seen.items()))
    result.details = {
        "nodeenis": nodeenis,
        "faulty": sorted(faulty),
        "deleted_with_faults_on": sorted(doomed),
        "enis": slots_each * nodeenis,
        "fault_rate": flaky.rate,
        "kube_request_timeout": KUBE_REQUEST_TIMEOUT,
        "mtu_edits": counts["mtu_edits"],
        "faulty_converged_before_off": already is not None,
        "workers": config.max_concurrent_reconciles,
        "fault_seconds": round(fault_seconds, 2),
        "injected": injected,
        "faulty_writes_passed": flaky.passed,
        "after_429": _after_429(flaky.log, flaky.retry_after),
        "retry_after_s": flaky.retry_after,
        "healthy_converged_s": round(healthy_converged, 2),
        "healthy_torn_down_s": round(healthy_gone, 2),
        "faulty_converged_after_off_s": None
        if faulty_converged is None
        else round(faulty_converged, 2),
        "faulty_torn_down_after_off_s": None if faulty_gone is None else round(faulty_gone, 2),
        "final_teardown_s": None if final_gone is None else round(final_gone, 2),
        "requeues_at_end": requeues,
        "longest_busy_with_faults": busiest,
        "mutating_calls": mutating,
        "create_requests": watch.create_requests,
        "enis_made": watch.made,
        "coexisting_enis": sorted(watch.coexisting),
        "journal_overlaps": sorted(watch.overlaps),
        "samples": watch.samples,
        "reconcile_errors": _errors_by_class(metrics),
        "writes": {r: proxy.traffic.of(r).as_dict()["verbs"] for r in ("nodeenis", "events")},
        "calls": calls,
    }
    print(
        f"FIGURE api-faults seed={case.seed}: {nodeenis} NodeENIs ({len(faulty)} faulty), "
        f"injected {injected} over {fault_seconds:.1f}s; healthy converged in "
        f"{healthy_converged:.1f}s with faults on; faulty converged {faulty_converged}s and "
        f"torn down {faulty_gone}s after they stopped; {mutating} mutating calls "
        f"(extra {result.extra_mutating_calls}), {result.leaks} leaks, "
        f"{result.duplicates} duplicates"
    )
    assert faulty_converged is not None, f"faulty NodeENIs after the faults: {problems}"
    assert faulty_gone is not None, f"faulty NodeENI deleted: {left}"
    assert final_gone is not None, f"final teardown: {final_left}"
    assert sum(injected.values()) > 0
    assert live_at_off == (True, ""), live_at_off
    assert live_after == (True, ""), live_after
    assert pinned == [], pinned
    _assert_common(result, watch)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_api_faults(aws_env: AWSEnv, kubeconfig: Path, chaos_seed: int) -> None:
    async with chaos_case("api-faults", chaos_seed, bound=240) as case:
        await _write_faults(
            aws_env, kubeconfig, case, nodeenis=6, nodes_each=2, min_fault_seconds=15.0
        )


@pytest.mark.timeout(120)
async def test_api_faults_smoke(aws_env: AWSEnv, kubeconfig: Path, chaos_seed: int) -> None:
    async with chaos_case("api-faults-smoke", chaos_seed, bound=60) as case:
        await _write_faults(
            aws_env, kubeconfig, case, nodeenis=3, nodes_each=1, min_fault_seconds=5.0
        )

"""Controller processes to kill -9 and start again, each one told apart in EC2's journal.

A crash test needs the controller as a real process (a SIGKILL leaves no
`finally` to run, no buffered write to flush) and needs to know afterwards
which process made which EC2 call (`splits`: which ENIs a kill left
half-way). Every process started here is an *incarnation* of a named
replica (`a1`, `a2`, `b1`...): it signs its EC2 requests with an access key
of its own (moto maps every key to the same account), so the realism layer's
call journal (`RealismControl.journal()`) names the incarnation behind every
mutating call, and its Lease identity (`<hostname>-<pid>`) names it in the
leader Lease.

`Replicas` is an async context manager: whatever happens in the test, every
process it started is killed and reaped on the way out (no stray controllers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.kube.leader import DEFAULT_LEASE_NAME
from tests.harness.chaos import ChaosResult
from tests.harness.controller import AWSEnv, spawn_controller
from tests.harness.ec2world import MULTUS_SUBNETS_A as SUBNETS
from tests.harness.ec2world import World
from tests.harness.fleet import delete_nodeeni, nodeeni_spec
from tests.harness.invariants import (
    DuplicateWatch,
    Slot,
    gone,
    mutating_calls,
    nodeeni_violations,
    rolled_out,
    slots_of,
    tagged_enis,
    wait_converged,
    wait_torn_down,
)
from tests.harness.realism.control import RealismControl

REAP_SECONDS = 10.0
LEASE_NAMESPACE = "default"  # POD_NAMESPACE's default: where the controller's Lease lives


@dataclass(kw_only=True)
class Incarnation:
    """One controller process: replica `replica`'s `number`th start."""

    replica: str
    number: int
    proc: subprocess.Popen[bytes]
    access_key: str
    started: float  # time.monotonic() at spawn
    killed: float | None = None  # time.monotonic() right before the SIGKILL
    log_path: Path | None = None
    calls_at_spawn: int = 0  # the realism server's mutating-call count when it was started

    @property
    def name(self) -> str:
        return f"{self.replica}{self.number}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def holds(self, lease_holder: str) -> bool:
        """True if `lease_holder` (a Lease's holderIdentity) is this process."""
        return bool(lease_holder) and lease_holder.rsplit("-", 1)[-1] == str(self.pid)


def access_key(replica: str, number: int) -> str:
    """A fake access key id naming one incarnation (upper-case alphanumerics, like AWS's)."""
    return f"AKIACHAOS{replica.upper()}{number:04d}"


@dataclass
class Replicas:
    """Start, kill -9 and restart controller processes against `world` and `kubeconfig`.

    `settings` are environment variables every process gets (controller_env's
    names: LEADER_ELECTION_*, EC2_MUTATING_RATE...), over EC2_BUDGET_SHARE=1:
    the test account is shared with no one, so the rates a case sets are the
    controller's whole pace. Logs go to `state_dir`.
    With `realism`, each incarnation notes the server's mutating-call count at
    its start (`first_mutating_call(after=...)` waits for its first call).
    """

    world: World
    kubeconfig: Path
    state_dir: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    realism: RealismControl | None = None
    incarnations: list[Incarnation] = field(default_factory=list)

    async def __aenter__(self) -> Replicas:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_all()

    def start(self, replica: str) -> Incarnation:
        """A new process for `replica` (its previous one must be dead)."""
        previous = self.current(replica)
        if previous is not None and previous.alive:
            raise RuntimeError(f"{previous.name} is still running")
        number = 1 + sum(1 for i in self.incarnations if i.replica == replica)
        calls = mutating_calls(self.realism) if self.realism is not None else 0
        key = access_key(replica, number)
        name = f"{replica}{number}"
        proc = spawn_controller(
            self.world,
            self.kubeconfig,
            state_dir=self.state_dir,
            name=name,
            AWS_ACCESS_KEY_ID=key,
            **{"EC2_BUDGET_SHARE": "1", **self.settings},
        )
        incarnation = Incarnation(
            replica=replica,
            number=number,
            proc=proc,
            access_key=key,
            started=time.monotonic(),
            log_path=self.state_dir / f"{name}.log",
            calls_at_spawn=calls,
        )
        self.incarnations.append(incarnation)
        return incarnation

    def current(self, replica: str) -> Incarnation | None:
        """`replica`'s latest incarnation (alive or not), None before its first start."""
        mine = [i for i in self.incarnations if i.replica == replica]
        return mine[-1] if mine else None

    def alive(self) -> list[Incarnation]:
        return [i for i in self.incarnations if i.alive]

    def by_access_key(self) -> dict[str, Incarnation]:
        return {i.access_key: i for i in self.incarnations}

    def holding(self, lease_holder: str) -> Incarnation | None:
        """The incarnation whose Lease identity is `lease_holder`, if one of ours."""
        return next((i for i in self.incarnations if i.holds(lease_holder)), None)

    async def kill(self, incarnation: Incarnation) -> float:
        """SIGKILL `incarnation` and reap it; returns when (monotonic) the signal went out."""
        incarnation.killed = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            incarnation.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(incarnation.proc.wait, REAP_SECONDS)
        return incarnation.killed

    async def stop_all(self) -> None:
        """Kill and reap every process still running (test teardown)."""
        for incarnation in self.alive():
            await self.kill(incarnation)

    def exited_early(self) -> list[str]:
        """Incarnations that died without being killed (a crash of the controller)."""
        return [
            f"{i.name} exited with {i.proc.returncode}"
            for i in self.incarnations
            if i.killed is None and i.proc.poll() is not None
        ]


async def first_mutating_call(
    realism: RealismControl, *, after: int, within: float, every: float = 0.025
) -> float | None:
    """When (monotonic, to within `every`) the realism server's mutating-call count first
    exceeds `after`; None if it did not within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await asyncio.to_thread(mutating_calls, realism) > after:
            return time.monotonic()
        await asyncio.sleep(every)
    return None


async def lease_holder(api: client.ApiClient, *, name: str = DEFAULT_LEASE_NAME) -> str:
    """The controller Lease's holderIdentity ("" if none, or no Lease yet)."""
    try:
        lease = await client.CoordinationV1Api(api).read_namespaced_lease(name, LEASE_NAMESPACE)
    except ApiException as err:
        if err.status == HTTPStatus.NOT_FOUND:
            return ""
        raise
    holder: str = (lease.spec.holder_identity if lease.spec else None) or ""
    return holder


@contextlib.asynccontextmanager
async def lease_watch(
    api: client.ApiClient, *, every: float = 0.05
) -> AsyncIterator[list[tuple[float, str]]]:
    """Poll the controller Lease's holder every `every` seconds while the block runs;
    yields the list of (monotonic time first seen, holder) changes, growing."""
    changes: list[tuple[float, str]] = []

    async def poll() -> None:
        while True:
            with contextlib.suppress(ApiException, OSError, TimeoutError):
                holder = await lease_holder(api)
                if not changes or changes[-1][1] != holder:
                    changes.append((time.monotonic(), holder))
            await asyncio.sleep(every)

    task = asyncio.create_task(poll())
    try:
        yield changes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def splits(journal: Sequence[Mapping[str, Any]], who: Mapping[str, str]) -> dict[str, Counter[str]]:
    """Per process, the ENIs whose calls it began and a later process went on
    with, counted by the two calls around the hand-over: `Create|Attach` is an
    ENI created before a kill and attached after it (a crash between create and
    attach), `Create|Create` a create replayed with its ClientToken,
    `Detach|Delete` one detached before and deleted after. `who` maps an access
    key to a process name; other callers are left out."""
    by_eni: dict[str, list[tuple[str, str]]] = {}
    for entry in journal:
        if entry["eni_id"] and entry["caller"] in who:
            by_eni.setdefault(entry["eni_id"], []).append(
                (who[entry["caller"]], short_action(entry["action"]))
            )
    found: dict[str, Counter[str]] = {}
    for calls in by_eni.values():
        for (before, action), (after, following) in itertools.pairwise(calls):
            if before != after:
                found.setdefault(before, Counter())[f"{action}|{following}"] += 1
    return found


def unanswered(
    journal: Sequence[Mapping[str, Any]],
    *,
    caller: str,
    killed_at: float,
    answer_latency: float,
    margin: float = 0.05,
) -> int:
    """Mutating calls of a process (by its access key `caller`) killed at `killed_at`
    that it never heard back about: those that reached EC2 less than
    `answer_latency` (+ `margin`) before the SIGKILL, or after it (sent just
    before). Only these may a restarted controller send again: it must learn the
    outcome of every answered call from EC2, not repeat it."""
    since = killed_at - answer_latency - margin
    return sum(1 for e in journal if e["caller"] == caller and e["at"] >= since)


def own_calls(
    journal: Sequence[Mapping[str, Any]], *, callers: Collection[str], nodes: Collection[str]
) -> list[Mapping[str, Any]]:
    """The journal's calls by `callers` that concern the test's own ENIs: creates for
    one of its `nodes` and every call about an ENI such a create returned. What a
    controller does to an earlier test's leftovers (a deleted NodeENI's cleanup, the
    orphan sweep) is left out."""
    ours = {
        e["eni_id"]
        for e in journal
        if e["action"] == "CreateNetworkInterface" and e["node"] in nodes and e["eni_id"]
    }
    return [
        e
        for e in journal
        if e["caller"] in callers
        and (
            e["eni_id"] in ours or (e["action"] == "CreateNetworkInterface" and e["node"] in nodes)
        )
    ]


async def no_nodeenis(api: client.ApiClient, *, within: float) -> None:
    """Until the API server holds no NodeENI: earlier tests' deleted ones, held by
    their finalizer once their in-process controller stopped, are finished by the
    controller this test started, before the test's own work is measured."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + within
    while True:
        listed = await custom.list_cluster_custom_object(model.GROUP, model.VERSION, model.PLURAL)
        names = [item["metadata"]["name"] for item in listed.get("items") or []]
        if not names:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"NodeENIs of earlier tests still there after {within}s: {names}")
        await asyncio.sleep(0.2)


# An ENI rolled out by one process and torn down by another was not left half-way.
PHASE_BOUNDARY = "Modify|Detach"


def half_way(found: Mapping[str, int]) -> int:
    """ENIs left half-way in `splits`' counts: all but the rollout/teardown boundary."""
    return sum(n for split, n in found.items() if split != PHASE_BOUNDARY)


def short_action(action: str) -> str:
    """`CreateNetworkInterface` -> `Create`, `ModifyNetworkInterfaceAttribute` -> `Modify`."""
    return action.split("Network", 1)[0]


@dataclass(kw_only=True, slots=True)
class DisturbedRun:
    """What a rollout and teardown under disturbance left behind (see `disturbed_run`)."""

    uid: str
    watch: DuplicateWatch
    rollout_converged: float
    rollout_leaks: int  # ENIs of the NodeENI beyond its wanted slots after the rollout
    deleted_at: float  # time.monotonic() of the NodeENI's deletion
    teardown_converged: float | None
    left: Any  # what wait_torn_down reports as not torn down
    remaining: list[dict[str, Any]]  # the NodeENI's ENIs in EC2 at the end


Disturb = Callable[[str, Callable[[], Awaitable[bool]]], Awaitable[float | None]]


async def disturbed_run(
    env: AWSEnv,
    result: ChaosResult,
    *,
    wanted: set[Slot],
    disturb: Disturb,
    within: float,
    hold: float,
    watch_every: float,
    explain: Callable[[], str] = lambda: "",
) -> DisturbedRun:
    """A NodeENI over `wanted` rolled out, then deleted, while `disturb(phase,
    finished)` kills or fails over processes ("rollout", then "teardown"; it returns
    the time of its last disturbance, or None). Duplicates are watched throughout;
    the invariants after the rollout go into `result.violations`. A rollout that
    does not converge within `within` fails the case (`explain()` adds to why)."""
    created = await env.nodeenis.create(env.unique, nodeeni_spec(env.unique, env.world, *SUBNETS))
    uid = created["metadata"]["uid"]
    watch = DuplicateWatch(env.world, env.realism, (uid,), every=watch_every)
    await watch.start()
    sampler = asyncio.create_task(watch.run())
    try:
        last = await disturb("rollout", lambda: rolled_out(env.api, env.unique, count=len(wanted)))
        rollout_converged, unconverged = await wait_converged(
            env.api,
            env.world,
            env.unique,
            wanted=wanted,
            realism=env.realism,
            since=last or time.monotonic(),
            within=within,
            hold=hold,
            ec2=watch.ec2,
        )
        await watch.sample()
        result.violations = await nodeeni_violations(
            env.api, env.world, env.unique, wanted=wanted, ec2=watch.ec2
        )
        enis = await asyncio.to_thread(tagged_enis, watch.ec2, uid)
        filled = slots_of(enis)
        assert rollout_converged is not None, (
            f"rollout not converged {within:.0f}s after the last disturbance: "
            f"{unconverged[:10]}\n{explain()}"
        )
        deleted_at = time.monotonic()
        await delete_nodeeni(env.nodeenis, env.unique)
        last = await disturb("teardown", lambda: gone(env.api, env.unique))
        teardown_converged, left = await wait_torn_down(
            env.api,
            env.unique,
            uid=uid,
            ec2=watch.ec2,
            realism=env.realism,
            since=last or deleted_at,
            within=within,
            hold=hold,
        )
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    await watch.finish()
    return DisturbedRun(
        uid=uid,
        watch=watch,
        rollout_converged=rollout_converged,
        rollout_leaks=len(enis) - sum(1 for slot in wanted if slot in filled),
        deleted_at=deleted_at,
        teardown_converged=teardown_converged,
        left=left,
        remaining=await asyncio.to_thread(tagged_enis, watch.ec2, uid),
    )

"""Leader election against the real API server, with short timings
(lease 2 s, renew deadline 1.5 s, retry 0.3 s).

Covers: one leader among concurrent candidates, graceful hand-over through
release, takeover after a crash only once the lease has expired, a leader cut
off from the API stopping its work before anyone takes over, expiry judged by
observed time rather than the holder's renewTime, and lead() ending by itself.

A network partition is simulated by `Partitionable`, an ApiClient whose
requests fail with a connection error while `cut` is set; everything else is
the server's own behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.kube.leader import LeaderElector, micro_time

NAMESPACE = "default"
LEASE, RENEW, RETRY = 2.0, 1.5, 0.3
SLACK = 0.5  # scheduling and request latency on a 2-core CI machine


class Work:
    """A lead() that runs until cancelled and records when it started and stopped."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.stopped: list[float] = []
        self.cancelled = 0

    async def lead(self) -> None:
        self.started.append(time.monotonic())
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            await asyncio.sleep(0.1)  # some cleanup: the elector must wait for it
            raise
        finally:
            self.stopped.append(time.monotonic())

    @property
    def running(self) -> bool:
        return len(self.started) > len(self.stopped)


class Partitionable(client.ApiClient):
    """An ApiClient whose requests fail as if the API server were unreachable while `cut`."""

    cut = False

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.cut:
            return self._refused()
        return super().request(*args, **kwargs)

    async def _refused(self) -> Any:
        raise aiohttp.ClientConnectionError("partitioned (test)")


def elector(api: client.ApiClient, lease: str, identity: str, **kwargs: Any) -> LeaderElector:
    return LeaderElector(
        api,
        namespace=NAMESPACE,
        name=lease,
        identity=identity,
        lease_duration=LEASE,
        renew_deadline=RENEW,
        retry_period=RETRY,
        **kwargs,
    )


def leading(candidate: LeaderElector, work: Work) -> Callable[[], bool]:
    """Leader, and its lead() has started (is_leader turns True just before it does)."""
    return lambda: candidate.is_leader and work.running


async def until(check: Callable[[], bool], *, within: float) -> float:
    """Wait until check() holds; returns when (time.monotonic) it was first seen."""
    async with asyncio.timeout(within):
        while True:
            if check():
                return time.monotonic()
            await asyncio.sleep(0.01)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    async with asyncio.timeout(10):
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running(candidate: LeaderElector, work: Work) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(candidate.run(work.lead))
    try:
        yield task
    finally:
        await stop(task)


@pytest.fixture
async def lease(kube_api: client.ApiClient, unique: str) -> AsyncIterator[str]:
    """A Lease name for this test; the Lease is deleted at teardown."""
    name = f"{unique}-leader"
    yield name
    with contextlib.suppress(ApiException):
        await client.CoordinationV1Api(kube_api).delete_namespaced_lease(name, NAMESPACE)


async def read(api: client.ApiClient, name: str) -> client.V1LeaseSpec:
    lease = await client.CoordinationV1Api(api).read_namespaced_lease(name, NAMESPACE)
    return lease.spec


async def test_exactly_one_of_two_concurrent_candidates_leads(
    kube_api: client.ApiClient, lease: str
) -> None:
    works = {"a": Work(), "b": Work()}
    candidates = {n: elector(kube_api, lease, n) for n in works}
    async with running(candidates["a"], works["a"]), running(candidates["b"], works["b"]):
        await until(lambda: any(c.is_leader for c in candidates.values()), within=5)
        end = time.monotonic() + 2.0
        samples = 0
        while time.monotonic() < end:
            leaders = [n for n, c in candidates.items() if c.is_leader]
            assert len(leaders) == 1, leaders
            working = [n for n, w in works.items() if w.running]
            assert set(working) <= set(leaders), (working, leaders)
            samples += 1
            await asyncio.sleep(0.01)
        assert samples > 50
        (leader,) = [n for n, c in candidates.items() if c.is_leader]
        assert {n: len(w.started) for n, w in works.items()} == {n: int(n == leader) for n in works}
        spec = await read(kube_api, lease)
        assert spec.holder_identity == leader
        assert spec.lease_transitions == 0
        assert spec.lease_duration_seconds == LEASE


async def test_graceful_cancel_releases_and_standby_takes_over_at_once(
    kube_api: client.ApiClient, lease: str
) -> None:
    a = elector(kube_api, lease, "a")
    b = elector(kube_api, lease, "b")
    work_a, work_b = Work(), Work()
    task_a = asyncio.create_task(a.run(work_a.lead))
    try:
        await until(lambda: a.is_leader, within=5)
        async with running(b, work_b):
            await asyncio.sleep(3 * RETRY)
            assert a.is_leader
            assert not b.is_leader
            cancelled_at = time.monotonic()
            await stop(task_a)
            # run() returned only after lead() had finished its cleanup
            assert work_a.cancelled == 1
            assert not work_a.running
            assert not a.is_leader
            assert (len(work_a.started), len(work_a.stopped)) == (1, 1)
            took_over = await until(leading(b, work_b), within=LEASE)
            assert took_over - cancelled_at < LEASE / 2, "standby waited as if for expiry"
            assert work_a.stopped[-1] <= work_b.started[-1]
            spec = await read(kube_api, lease)
            assert spec.holder_identity == "b"
            assert spec.lease_transitions == 1
    finally:
        await stop(task_a)


async def test_release_empties_the_lease(kube_api: client.ApiClient, lease: str) -> None:
    a, work = elector(kube_api, lease, "a"), Work()
    task = asyncio.create_task(a.run(work.lead))
    try:
        await until(lambda: a.is_leader, within=5)
    finally:
        await stop(task)
    spec = await read(kube_api, lease)
    assert not spec.holder_identity
    assert spec.lease_duration_seconds == 1
    assert spec.lease_transitions == 0


async def test_crashed_leader_is_replaced_only_after_the_lease_expires(
    kube_api: client.ApiClient, lease: str
) -> None:
    crashing = Partitionable(kube_api.configuration)
    a = elector(crashing, lease, "a")
    b = elector(kube_api, lease, "b")
    work_a, work_b = Work(), Work()
    task_a = asyncio.create_task(a.run(work_a.lead))
    try:
        await until(lambda: a.is_leader, within=5)
        async with running(b, work_b):
            await asyncio.sleep(3 * RETRY)
            assert not b.is_leader
            crashed_at = time.monotonic()
            crashing.cut = True  # a crash: not even the release reaches the server
            await stop(task_a)  # to b this is a vanished leader
            assert (await read(kube_api, lease)).holder_identity == "a"
            took_over = await until(leading(b, work_b), within=LEASE + RETRY + 2 * SLACK)
            waited = took_over - crashed_at
            # b saw a's last renewal at most about one retry before the crash
            assert waited >= LEASE - RETRY - 0.1, f"took over after {waited:.2f}s"
            assert waited <= LEASE + RETRY + SLACK, f"took over after {waited:.2f}s"
            assert work_a.stopped[-1] <= work_b.started[-1]
            spec = await read(kube_api, lease)
            assert spec.holder_identity == "b"
            assert spec.lease_transitions == 1
    finally:
        await stop(task_a)
        await crashing.close()


async def test_partitioned_leader_stops_its_work_before_anyone_takes_over(
    kube_api: client.ApiClient, lease: str
) -> None:
    cut_off = Partitionable(kube_api.configuration)
    a = elector(cut_off, lease, "a")
    b = elector(kube_api, lease, "b")
    work_a, work_b = Work(), Work()
    try:
        async with running(a, work_a) as task_a:
            await until(lambda: a.is_leader, within=5)
            async with running(b, work_b):
                await asyncio.sleep(3 * RETRY)
                cut_off.cut = True
                cut_at = time.monotonic()
                stepped_down = await until(lambda: not a.is_leader, within=RENEW + SLACK)
                assert stepped_down - cut_at >= RENEW - RETRY - 0.1, "gave up before the deadline"
                assert work_a.cancelled == 1
                assert not work_a.running
                assert (len(work_a.started), len(work_a.stopped)) == (1, 1)
                await until(leading(b, work_b), within=LEASE + SLACK)
                t1, t2 = work_a.stopped[-1], work_b.started[-1]
                assert t1 <= t2, f"old leader stopped {t1 - t2:.3f}s after the new one started"
                assert t2 - cut_at >= LEASE - RETRY - 0.1, "b took over before the lease expired"
                assert not task_a.done(), "a must campaign again, not exit"
                # the partition heals: a sees b's lease and stays a follower
                cut_off.cut = False
                await asyncio.sleep(4 * RETRY)
                assert not a.is_leader
                assert a.holder == "b"
                assert len(work_a.started) == 1
                spec = await read(kube_api, lease)
                assert spec.holder_identity == "b"
                assert spec.lease_transitions == 1
    finally:
        await cut_off.close()


async def test_expiry_is_judged_by_observed_time_not_by_the_holders_renew_time(
    kube_api: client.ApiClient, lease: str
) -> None:
    long_ago = micro_time(datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1))
    await client.CoordinationV1Api(kube_api).create_namespaced_lease(
        NAMESPACE,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name=lease),
            spec=client.V1LeaseSpec(
                holder_identity="ghost",
                lease_duration_seconds=int(LEASE),
                acquire_time=long_ago,
                renew_time=long_ago,
                lease_transitions=4,
            ),
        ),
    )
    b, work = elector(kube_api, lease, "b"), Work()
    started = time.monotonic()
    async with running(b, work):
        # the ghost's renewTime is an hour old (its clock may be off): b must still wait
        await asyncio.sleep(LEASE - 2 * RETRY)
        assert not b.is_leader
        assert b.holder == "ghost"
        took_over = await until(leading(b, work), within=4 * RETRY + SLACK)
        assert took_over - started >= LEASE
        spec = await read(kube_api, lease)
        assert spec.holder_identity == "b"
        assert spec.lease_transitions == 5


async def test_lead_returning_ends_run_and_releases(kube_api: client.ApiClient, lease: str) -> None:
    a = elector(kube_api, lease, "a")
    ran: list[bool] = []

    async def lead() -> None:
        ran.append(a.is_leader)
        await asyncio.sleep(0.1)

    async with asyncio.timeout(5):
        await a.run(lead)
    assert ran == [True]
    assert not a.is_leader
    assert not (await read(kube_api, lease)).holder_identity


async def test_lead_raising_is_raised_by_run_after_release(
    kube_api: client.ApiClient, lease: str
) -> None:
    a, b, work_b = elector(kube_api, lease, "a"), elector(kube_api, lease, "b"), Work()
    fail = asyncio.Event()

    async def lead() -> None:
        await fail.wait()
        raise RuntimeError("boom")

    task_a = asyncio.create_task(a.run(lead))
    try:
        await until(lambda: a.is_leader, within=5)
        async with running(b, work_b):
            await asyncio.sleep(3 * RETRY)
            assert not b.is_leader
            fail.set()
            failed_at = time.monotonic()
            with pytest.raises(RuntimeError, match="boom"):
                async with asyncio.timeout(5):
                    await task_a
            assert not a.is_leader
            took_over = await until(leading(b, work_b), within=LEASE)
            assert took_over - failed_at < LEASE / 2, "a did not release"
    finally:
        if not task_a.done():
            await stop(task_a)

"""Leader election against the real API server, with short timings."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.kube.leader import LeaderElector

LEASE, RENEW, RETRY = 2.0, 1.5, 0.3


class Work:
    """A lead() that records when it ran."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.stopped: list[float] = []

    async def lead(self) -> None:
        self.started.append(time.monotonic())
        try:
            await asyncio.Event().wait()
        finally:
            self.stopped.append(time.monotonic())


async def _until(check: object, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            if check():  # type: ignore[operator]
                return
            await asyncio.sleep(0.05)


def test_timings_must_nest() -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        LeaderElector(None, namespace="default", identity="a", lease_duration=2, renew_deadline=3)  # type: ignore[arg-type]


def _elector(
    api: client.ApiClient, lease: str, identity: str, *, release_on_cancel: bool = True
) -> LeaderElector:
    return LeaderElector(
        api,
        namespace="default",
        name=lease,
        identity=identity,
        lease_duration=LEASE,
        renew_deadline=RENEW,
        retry_period=RETRY,
        release_on_cancel=release_on_cancel,
    )


async def test_one_leader_graceful_handover_and_crash_takeover(
    kube_api: client.ApiClient, unique: str
) -> None:
    works = {name: Work() for name in "abc"}
    electors = {name: _elector(kube_api, unique, name) for name in "ab"}
    electors["c"] = _elector(kube_api, unique, "c", release_on_cancel=False)
    tasks = {n: asyncio.create_task(electors[n].run(works[n].lead)) for n in "ab"}
    try:
        await _until(lambda: any(e.is_leader for e in electors.values()), within=10)
        for _ in range(40):  # ~2 s: never two leaders
            assert sum(e.is_leader for e in electors.values()) == 1
            await asyncio.sleep(0.05)
        first = next(n for n in "ab" if electors[n].is_leader)
        other = "b" if first == "a" else "a"
        # graceful: the leader releases, the standby takes over well before expiry
        released = time.monotonic()
        tasks[first].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[first]
        await _until(lambda: electors[other].is_leader, within=LEASE)
        assert works[first].stopped[-1] <= works[other].started[-1]
        assert works[other].started[-1] - released < LEASE
        # a crash: the leader vanishes without releasing; "c" waits for expiry
        tasks["c"] = asyncio.create_task(electors["c"].run(works["c"].lead))
        await asyncio.sleep(0.5)
        assert not electors["c"].is_leader
        electors[other]._release_on_cancel = False
        crashed = time.monotonic()
        tasks[other].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[other]
        await _until(lambda: electors["c"].is_leader, within=LEASE + 3)
        took = works["c"].started[-1] - crashed
        assert took >= LEASE - RETRY
        lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(unique, "default")
        assert lease.spec.holder_identity == "c"
        assert lease.spec.lease_transitions == 2
    finally:
        for task in tasks.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(ApiException):
            await client.CoordinationV1Api(kube_api).delete_namespaced_lease(unique, "default")

"""The reconcile workers: a reconcile that overruns RECONCILE_TIMEOUT or a Kubernetes
request that times out fails its key with the queue's backoff and never holds a
worker; a worker stuck on one key regardless fails /healthz, naming worker and key.

The Controller is real (its queue, metrics, worker loop and liveness); only the
reconciler is a fake, and nothing talks to a server. Worker loops are started
directly (`_worker`), without the informers and leader election around them.
"""

from __future__ import annotations

import asyncio
import collections
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from multidict import CIMultiDict, CIMultiDictProxy

from eni_controller.aws.ec2 import connect_ec2
from eni_controller.config import Config
from eni_controller.controller import WORKER_STUCK_GRACE_SECONDS, Controller
from eni_controller.health import Busy, HealthServer, WorkerActivity
from eni_controller.kube.timeouts import KubeRequestTimeout
from eni_controller.metrics import Metrics
from eni_controller.reconcile.reconciler import Reconciler
from tests.harness.clock import ManualClock
from tests.harness.waiting import until

WAIT = 10.0  # generous bound on anything that should happen; a failure never hangs
DEAD_ENDPOINT = "http://127.0.0.1:9"  # never contacted: the reconciler is a fake
pytestmark = pytest.mark.timeout(60)


class FakeReconciler:
    """Reconciles keys at once, except: keys in `hang` never finish (until cancelled),
    keys in `request_timeout` raise KubeRequestTimeout, keys in `shed` are answered
    429 asking for 30 s, and keys in `stubborn` ignore cancellation until `let_go`
    is set."""

    def __init__(
        self,
        *,
        hang: frozenset[str] = frozenset(),
        request_timeout: frozenset[str] = frozenset(),
        stubborn: frozenset[str] = frozenset(),
        shed: frozenset[str] = frozenset(),
    ) -> None:
        self.hang, self.request_timeout, self.stubborn = hang, request_timeout, stubborn
        self.shed = shed  # answered 429 with Retry-After: 30
        self.calls: collections.Counter[str] = collections.Counter()
        self.cancelled: collections.Counter[str] = collections.Counter()
        self.done: collections.Counter[str] = collections.Counter()
        self.let_go = asyncio.Event()

    async def reconcile(self, key: str) -> float | None:
        self.calls[key] += 1
        if key in self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled[key] += 1
                raise
        if key in self.request_timeout:
            raise KubeRequestTimeout(f"PATCH /nodeenis/{key}/status got no answer within 2s")
        if key in self.shed:
            err = ApiException(status=429, reason="Too Many Requests")
            err.headers = CIMultiDictProxy(CIMultiDict({"retry-after": "30"}))
            raise err
        while key in self.stubborn and not self.let_go.is_set():
            try:
                await self.let_go.wait()
            except asyncio.CancelledError:
                self.cancelled[key] += 1  # and carries on: a worker stuck for real
        self.done[key] += 1
        return None


@dataclass
class Harness:
    controller: Controller
    reconciler: FakeReconciler
    metrics: Metrics
    workers: list[asyncio.Task[None]]

    def start_workers(self, count: int) -> None:
        for number in range(count):
            self.workers.append(asyncio.create_task(self.controller._worker(number)))

    def errors(self, error: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "eni_controller_reconcile_errors_total", {"error": error}
        )
        return value or 0.0


async def _harness(
    reconciler: FakeReconciler, *, reconcile_timeout_seconds: float = 300.0
) -> AsyncIterator[Harness]:
    config = Config(
        aws_region="us-east-1",
        aws_endpoint_url=DEAD_ENDPOINT,
        enable_leader_election=False,
        reconcile_timeout_seconds=reconcile_timeout_seconds,
    )
    metrics = Metrics()
    api = client.ApiClient(client.Configuration(host=DEAD_ENDPOINT))
    try:
        async with connect_ec2(config, metrics=metrics) as ec2:
            controller = Controller(config=config, api=api, ec2=ec2, metrics=metrics)
            controller.reconciler = cast(Reconciler, reconciler)
            harness = Harness(controller, reconciler, metrics, [])
            try:
                yield harness
            finally:
                reconciler.let_go.set()
                await controller.queue.shutdown(drain=False)
                for task in harness.workers:
                    task.cancel()
                await asyncio.gather(*harness.workers, return_exceptions=True)
    finally:
        await api.close()


@pytest.fixture
async def overrun() -> AsyncIterator[Harness]:
    async for harness in _harness(
        FakeReconciler(hang=frozenset({"hung"})), reconcile_timeout_seconds=0.2
    ):
        yield harness


async def test_an_overrunning_reconcile_is_cancelled_and_retried_with_backoff(
    overrun: Harness,
) -> None:
    queue, fake = overrun.controller.queue, overrun.reconciler
    queue.add("hung")
    queue.add("a")
    overrun.start_workers(1)  # one worker: the hung key must not keep it
    await until(lambda: fake.calls["hung"] >= 3 and fake.done["a"] == 1, within=WAIT)
    queue.add("b")
    await until(lambda: fake.done["b"] == 1, within=WAIT)
    assert fake.cancelled["hung"] >= 2  # cancelled at its deadline, not abandoned running
    assert fake.done["hung"] == 0
    assert queue.num_requeues("hung") >= 2  # add_rate_limited: per-key exponential backoff
    assert queue.num_requeues("a") == queue.num_requeues("b") == 0
    assert overrun.errors("ReconcileTimeout") >= 2
    assert overrun.controller.live() == (True, "")


@pytest.fixture
async def request_timeouts() -> AsyncIterator[Harness]:
    async for harness in _harness(FakeReconciler(request_timeout=frozenset({"patchy"}))):
        yield harness


async def test_a_kubernetes_request_timeout_fails_only_its_key(
    request_timeouts: Harness,
) -> None:
    queue, fake = request_timeouts.controller.queue, request_timeouts.reconciler
    queue.add("patchy")
    queue.add("a")
    request_timeouts.start_workers(1)
    await until(lambda: fake.calls["patchy"] >= 3 and fake.done["a"] == 1, within=WAIT)
    assert queue.num_requeues("patchy") >= 2
    assert request_timeouts.errors("KubeRequestTimeout") >= 2
    assert request_timeouts.errors("ReconcileTimeout") == 0


@pytest.fixture
async def shedding() -> AsyncIterator[Harness]:
    async for harness in _harness(
        FakeReconciler(request_timeout=frozenset({"patchy"}), shed=frozenset({"busy"}))
    ):
        yield harness


async def test_a_key_answered_429_waits_the_retry_after_not_its_backoff(
    shedding: Harness,
) -> None:
    queue, fake = shedding.controller.queue, shedding.reconciler
    queue.add("busy")
    queue.add("patchy")
    shedding.start_workers(1)
    # patchy's backoff (5 ms, doubling) retries it again and again meanwhile
    await until(lambda: fake.calls["patchy"] >= 5, within=WAIT)
    assert fake.calls["busy"] == 1
    assert queue.num_requeues("busy") == 1


@pytest.fixture
async def stubborn() -> AsyncIterator[Harness]:
    async for harness in _harness(
        FakeReconciler(stubborn=frozenset({"web"})), reconcile_timeout_seconds=0.2
    ):
        yield harness


def _healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=WAIT) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


async def test_a_worker_stuck_on_one_key_fails_liveness(
    clock: ManualClock, stubborn: Harness
) -> None:
    controller, fake = stubborn.controller, stubborn.reconciler
    controller.workers = WorkerActivity(clock=clock)
    health = HealthServer(
        registry=stubborn.metrics.registry,
        liveness=controller.live,
        readiness=controller.ready,
        host="127.0.0.1",
        metrics_port=0,
        probe_port=0,
    )
    health.start()
    try:
        controller.queue.add("web")
        stubborn.start_workers(2)
        await until(lambda: fake.cancelled["web"] >= 1, within=WAIT)  # its deadline passed
        assert controller.live() == (True, "")  # not yet past the grace
        clock.advance(controller.config.reconcile_timeout_seconds + WORKER_STUCK_GRACE_SECONDS + 1)
        limit = controller.config.reconcile_timeout_seconds + WORKER_STUCK_GRACE_SECONDS
        (busy,) = controller.workers.stuck(longer_than=limit)
        assert busy.key == "web"
        assert busy.seconds == pytest.approx(limit + 1)
        status, body = await asyncio.to_thread(_healthz, health.probe_port)
        assert status == 503
        assert body == f"worker {busy.worker} stuck on web for {limit + 1:.1f}s"
        fake.let_go.set()  # it finishes after all: the worker is free again
        await until(lambda: fake.done["web"] == 1, within=WAIT)
        await until(lambda: not controller.workers.busy(), within=WAIT)
        assert controller.live() == (True, "")
        assert await asyncio.to_thread(_healthz, health.probe_port) == (200, "ok")
    finally:
        health.stop()


def test_worker_activity_reports_the_longest_busy_first(clock: ManualClock) -> None:
    activity = WorkerActivity(clock=clock)
    activity.started(0, "a")
    clock.advance(5)
    activity.started(1, "b")
    clock.advance(10)
    assert activity.busy() == [Busy(0, "a", 15.0), Busy(1, "b", 10.0)]
    assert activity.stuck(longer_than=12) == [Busy(0, "a", 15.0)]
    activity.finished(0)
    activity.finished(0)  # twice is harmless
    assert activity.busy() == [Busy(1, "b", 10.0)]
    activity.started(1, "c")  # the next key replaces the last
    assert activity.busy() == [Busy(1, "c", 0.0)]
    assert str(Busy(3, "web", 61.0)) == "worker 3 stuck on web for 61.0s"

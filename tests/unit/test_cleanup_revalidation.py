"""Unit tests for what the cleanup pool checks before each destructive step.

Detach without Force first, Force only after DETACHMENT_TIMEOUT; never detach
or delete an ENI that moved to another instance or was cancelled (a NodeENI
wants it again); a leadership term that ends drops what was pending; and the
hooks that tell the device-index allocator and the ClientToken tombstones.

Time that decides an outcome is a ManualClock; the tests wait on conditions,
never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.reconcile import cleanup
from eni_controller.reconcile.cleanup import CleanupPool
from tests.harness.cleanup_ec2 import CleanupEC2, attached_eni
from tests.harness.clock import ManualClock
from tests.harness.resources import network_interface
from tests.harness.waiting import until

TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def fast_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "POLL_START_SECONDS", 0.002)
    monkeypatch.setattr(cleanup, "POLL_MAX_SECONDS", 0.005)
    monkeypatch.setattr(cleanup, "RETRY_BASE_SECONDS", 0.001)
    monkeypatch.setattr(cleanup, "NOTIFY_INTERVAL_SECONDS", 0.001)


async def _until(predicate: Callable[[], object]) -> None:
    await until(predicate, within=5.0, every=0.002)


class Pool:
    """A pool over a CleanupEC2 with a ManualClock, recording what it tells."""

    def __init__(self, ec2: CleanupEC2, *, workers: int = 1) -> None:
        self.ec2 = ec2
        self.clock = ManualClock()
        self.metrics = Metrics()
        self.told: list[str] = []
        self.detached: list[tuple[str, int]] = []
        self.deleted: list[str] = []
        self.pool = CleanupPool(
            cast(EC2Client, ec2),
            workers=workers,
            detach_timeout=TIMEOUT,
            on_done=self.told.append,
            metrics=self.metrics,
            clock=self.clock,
            on_detached=lambda instance, index: self.detached.append((instance, index)),
            on_deleted=self.deleted.append,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.pool.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def forced(self) -> float:
        value = self.metrics.registry.get_sample_value("eni_controller_eni_forced_detaches_total")
        assert value is not None
        return value

    async def settled(self) -> None:
        """Wait until no ENI is queued, being worked on or waiting for a poll."""
        await _until(lambda: not len(self.pool.queue) and self.pool.in_flight == 0)


@contextlib.asynccontextmanager
async def running(ec2: CleanupEC2, *, workers: int = 1) -> AsyncIterator[Pool]:
    pool = Pool(ec2, workers=workers)
    pool.start()
    try:
        yield pool
    finally:
        await pool.stop()


def _submit(p: Pool, eni: NetworkInterface, *, owner: str = "a") -> None:
    p.pool.submit(eni, nodeeni=owner)


async def test_the_first_detach_is_not_forced() -> None:
    eni = attached_eni(0)
    ec2 = CleanupEC2([eni], stuck=[eni.eni_id])
    async with running(ec2) as p:
        _submit(p, eni)
        await _until(lambda: p.ec2.polls >= 3)  # waited, the clock short of the timeout
        assert ec2.detaches == [(eni.eni_id, False)]
        assert p.forced() == 0


async def test_the_detach_is_forced_once_after_the_timeout() -> None:
    eni = attached_eni(0)
    ec2 = CleanupEC2([eni], stubborn=[eni.eni_id])  # frees only on a forced detach
    async with running(ec2) as p:
        _submit(p, eni)
        await _until(lambda: p.ec2.polls >= 3)
        p.clock.advance(TIMEOUT - 1)
        polls = p.ec2.polls
        await _until(lambda: p.ec2.polls >= polls + 3)
        assert ec2.detaches == [(eni.eni_id, False)]  # not before the timeout
        p.clock.advance(1)
        await _until(lambda: p.told == ["a"])
    assert ec2.detaches == [(eni.eni_id, False), (eni.eni_id, True)]
    assert ec2.deletes == [eni.eni_id]
    assert p.forced() == 1


async def test_an_eni_attached_elsewhere_before_its_detach_is_dropped_not_detached() -> None:
    eni = attached_eni(0, instance_id="i-1")
    ec2 = CleanupEC2([eni])
    # between the submitter's describe and the pool's detach, it went to i-2
    ec2.attach(eni.eni_id, instance_id="i-2", attachment_id="eni-attach-new")
    async with running(ec2) as p:
        _submit(p, eni)
        await _until(lambda: not p.pool.pending(eni.eni_id))
        assert p.told == ["a"]  # the owner decides again
        await p.settled()
    assert ec2.detaches == []
    assert ec2.deletes == []
    attachment = ec2.enis[eni.eni_id].attachment
    assert attachment is not None
    assert (attachment.instance_id, attachment.status) == ("i-2", "attached")


async def test_an_eni_attached_after_it_was_decided_free_is_dropped_not_detached() -> None:
    eni = network_interface("eni-free")
    ec2 = CleanupEC2([eni])
    ec2.attach(eni.eni_id, instance_id="i-2", attachment_id="eni-attach-new")
    async with running(ec2) as p:
        _submit(p, eni)  # decided while `available`
        await _until(lambda: not p.pool.pending(eni.eni_id))
        await p.settled()
        assert p.told == ["a"]
    assert ec2.calls["delete"] == 1  # refused: in use
    assert ec2.calls["detach"] == 0
    assert eni.eni_id in ec2.enis


async def test_cancel_before_the_detach_leaves_the_eni_alone() -> None:
    eni, other = attached_eni(0), attached_eni(1)
    ec2 = CleanupEC2([eni, other])
    p = Pool(ec2)
    _submit(p, eni)
    assert p.pool.cancel(eni.eni_id)
    assert not p.pool.cancel(eni.eni_id)  # no longer pending
    assert not p.pool.pending(eni.eni_id)
    assert p.pool.pending_for("a") == 0
    _submit(p, other, owner="b")  # queued behind it: done once it was skipped
    p.start()
    try:
        await _until(lambda: "b" in p.told)
        await p.settled()
    finally:
        await p.stop()
    assert ec2.detaches == [(other.eni_id, False)]
    assert ec2.deletes == [other.eni_id]
    assert p.told == ["a", "b"]  # `a` once, by cancel()


async def test_cancel_during_the_detach_call_stops_the_cleanup() -> None:
    eni, other = attached_eni(0), attached_eni(1)
    ec2 = CleanupEC2([eni, other])
    gate = ec2.hold("detach", eni.eni_id)
    async with running(ec2) as p:
        _submit(p, eni)
        await _until(lambda: ec2.entered[("detach", eni.eni_id)] == 1)
        assert p.pool.cancel(eni.eni_id)  # a NodeENI wants it again
        gate.set()
        _submit(p, other, owner="b")
        await _until(lambda: "b" in p.told)
        await p.settled()
        assert p.told == ["a", "b"]  # `a` once, by cancel(): the worker adds nothing
        assert not p.pool.pending(eni.eni_id)
    assert ec2.detached[eni.eni_id] == 1  # the call in flight was made, no other
    assert ec2.asked[eni.eni_id] == 0  # not parked: no poll waits for it
    assert eni.eni_id in ec2.enis  # detached, not deleted
    assert eni.eni_id not in p.deleted
    assert p.detached == [("i-1", 1)]  # only the other ENI's index


async def test_cancel_while_waiting_for_the_detachment_makes_no_delete() -> None:
    eni, other = attached_eni(0), attached_eni(1)
    ec2 = CleanupEC2([eni, other], stuck=[eni.eni_id])
    async with running(ec2) as p:
        _submit(p, eni)
        await _until(lambda: p.ec2.polls >= 2)  # parked, waiting
        assert p.pool.cancel(eni.eni_id)
        asked = ec2.asked[eni.eni_id]
        ec2.stuck.clear()  # it becomes `available`
        _submit(p, other, owner="b")  # waits in polls of its own
        await _until(lambda: "b" in p.told)
        await p.settled()
        assert p.told == ["a", "b"]
    assert ec2.asked[eni.eni_id] == asked  # no longer waited for
    assert ec2.deletes == [other.eni_id]
    assert ec2.detached[eni.eni_id] == 1


async def test_a_detach_that_fails_after_a_cancel_is_not_retried() -> None:
    eni, other = attached_eni(0), attached_eni(1)
    ec2 = CleanupEC2([eni, other])
    gate = ec2.hold("detach", eni.eni_id)
    ec2.fail_once(
        "detach", eni.eni_id, errors.Throttled(action="DetachNetworkInterface", code="Throttling")
    )
    async with running(ec2) as p:
        _submit(p, eni)
        await _until(lambda: ec2.entered[("detach", eni.eni_id)] == 1)
        assert p.pool.cancel(eni.eni_id)
        gate.set()
        _submit(p, other, owner="b")
        await _until(lambda: "b" in p.told)
        await p.settled()
        assert p.pool.queue.num_requeues(eni.eni_id) == 0  # not queued again
        assert p.told == ["a", "b"]
    assert p.metrics.cleanups.labels("retry")._value.get() == 0
    assert ec2.calls["detach"] == 2  # the failed one, and the other ENI's


async def test_a_term_that_ends_drops_every_pending_eni() -> None:
    parked = [attached_eni(n) for n in range(2)]
    in_flight, queued, fresh = attached_eni(2), attached_eni(3), attached_eni(4)
    ec2 = CleanupEC2([*parked, in_flight, queued, fresh], stuck=[e.eni_id for e in parked])
    gate = ec2.hold("detach", in_flight.eni_id)
    p = Pool(ec2)
    for eni in [*parked, in_flight, queued]:
        _submit(p, eni)
    p.start()
    await _until(lambda: ec2.entered[("detach", in_flight.eni_id)] == 1)
    await p.stop()  # the term ends: the pool no longer leads
    assert p.pool.idle
    assert p.pool.pending_for("a") == 0
    assert len(p.pool.queue) == 0
    gate.set()
    ec2.stuck.clear()
    # the next term: only what its reconciles submit is cleaned up
    p.start()
    try:
        _submit(p, fresh, owner="b")
        await _until(lambda: p.told == ["b"])
        await p.settled()
    finally:
        await p.stop()
    assert ec2.deletes == [fresh.eni_id]
    assert [e for e, _ in ec2.detaches] == [*(e.eni_id for e in parked), fresh.eni_id]
    assert "a" not in p.told


async def test_the_hooks_hear_of_each_freed_index_and_deleted_eni() -> None:
    attached = attached_eni(0, instance_id="i-7", device_index=2)
    free = network_interface("eni-free")
    gone = network_interface("eni-gone")  # deleted by someone else: NotFound
    ec2 = CleanupEC2([attached, free])
    async with running(ec2, workers=2) as p:
        for eni in (attached, free, gone):
            _submit(p, eni)
        await _until(lambda: p.pool.idle)
    assert p.detached == [("i-7", 2)]
    assert sorted(p.deleted) == sorted([attached.eni_id, free.eni_id, gone.eni_id])

"""Unit tests for the cleanup pool's batched wait for detachment.

Workers make the mutating calls; parked ENIs share one describe per poll, and
the describe before a detach is the submitter's. Before, every ENI cost a
describe before its detach and one or more while it waited.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest

from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.reconcile import cleanup
from eni_controller.reconcile.cleanup import CleanupPool
from tests.harness.cleanup_ec2 import CleanupCalls, CleanupEC2, attached_eni
from tests.harness.waiting import until


def _eni(n: int) -> NetworkInterface:
    return attached_eni(n)


async def _until(predicate: Any, *, within: float = 5.0) -> None:
    await until(predicate, within=within, every=0.005)


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "POLL_START_SECONDS", 0.01)
    monkeypatch.setattr(cleanup, "POLL_MAX_SECONDS", 0.02)


@pytest.mark.usefixtures("fast_polls")
async def test_hundreds_of_enis_share_their_describes_and_hold_no_worker_while_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enis = [_eni(n) for n in range(300)]
    ec2 = CleanupEC2(enis)
    told: list[str] = []
    metrics = Metrics()
    calls = CleanupCalls(metrics, monkeypatch)
    pool = CleanupPool(
        cast(EC2Client, ec2), workers=3, detach_timeout=5, on_done=told.append, metrics=metrics
    )
    for eni in enis:
        pool.submit(eni, nodeeni="a")
    task = asyncio.create_task(pool.run())
    try:
        await _until(lambda: not ec2.enis)
        await _until(lambda: told and told[-1] == "a")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert ec2.calls["detach"] == 300
    assert ec2.calls["delete"] == 300
    # no describe before a detach (the submitter's view), and the waits are batched
    assert ec2.calls["describe"] == ec2.polls
    assert ec2.calls["describe"] <= 300 * 0.25, ec2.describe_sizes
    # polls ask only for ENIs still in use: detached ones are not described in full
    assert ec2.answered == 0
    assert max(ec2.describe_sizes) > 3  # more ENIs waited at once than there are workers
    assert calls.most <= 3


@pytest.mark.usefixtures("fast_polls")
async def test_an_eni_not_free_by_the_timeout_is_described_again_and_kept() -> None:
    enis = [_eni(0), _eni(1)]
    ec2 = CleanupEC2(enis, stuck=["eni-0001"])
    metrics = Metrics()
    pool = CleanupPool(
        cast(EC2Client, ec2),
        workers=1,
        detach_timeout=0.05,
        on_done=lambda _: None,
        metrics=metrics,
    )
    for eni in enis:
        pool.submit(eni, nodeeni="a")
    task = asyncio.create_task(pool.run())
    try:
        await _until(lambda: "eni-0000" not in ec2.enis)
        # timed out, then described afresh by a worker (not a poll) and parked again
        await _until(lambda: metrics.cleanups.labels("retry")._value.get() >= 2)
        assert ec2.calls["describe"] > ec2.polls
        assert pool.pending("eni-0001")  # never dropped
        ec2.stuck.clear()
        await _until(lambda: not ec2.enis)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # still detaching when described again: never detached again without force
    forces = [force for eni_id, force in ec2.detaches if eni_id == "eni-0001"]
    assert forces[0] is False
    assert all(forces[1:])
    assert not pool.pending("eni-0001")


async def test_a_term_that_ends_while_enis_wait_drops_them() -> None:
    enis = [_eni(n) for n in range(4)]
    ec2 = CleanupEC2(enis, stuck=[e.eni_id for e in enis])
    pool = CleanupPool(
        cast(EC2Client, ec2),
        workers=2,
        detach_timeout=60,
        on_done=lambda _: None,
        metrics=Metrics(),
    )
    for eni in enis:
        pool.submit(eni, nodeeni="a")
    task = asyncio.create_task(pool.run())
    await _until(lambda: ec2.calls["detach"] == 4)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # the next term's reconciles describe them and decide again
    assert len(pool.queue) == 0
    assert not any(pool.pending(e.eni_id) for e in enis)
    assert pool.pending_for("a") == 0
    assert pool.idle

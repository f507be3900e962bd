"""Unit tests for the cleanup pool's batched wait for detachment.

Workers make the mutating calls; parked ENIs share one describe per poll, and
the describe before a detach is the submitter's. Before, every ENI cost a
describe before its detach and one or more while it waited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import pytest

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import ENIAttachment, NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.reconcile import cleanup
from eni_controller.reconcile.cleanup import CleanupPool
from tests.harness.resources import network_interface
from tests.harness.waiting import until


def _eni(n: int, *, status: str = "attached") -> NetworkInterface:
    return network_interface(
        f"eni-{n:04d}",
        attachment=ENIAttachment(
            attachment_id=f"eni-attach-{n:04d}",
            instance_id="i-1",
            device_index=1,
            status=status,
            delete_on_termination=True,
        ),
    )


class DetachingEC2:
    """Detaching takes `polls_to_detach` describes of the ENI; stuck ENIs never detach."""

    def __init__(self, enis: Sequence[NetworkInterface], *, stuck: Sequence[str] = ()) -> None:
        self.enis = {e.eni_id: e for e in enis}
        self.stuck = set(stuck)
        self.calls: Counter[str] = Counter()
        self.describe_sizes: list[int] = []
        self.detached: Counter[str] = Counter()
        self.answered = 0  # ENIs in describe answers

    async def describe_network_interfaces(
        self, *, filters: Any, eni_ids: Sequence[str] = ()
    ) -> list[NetworkInterface]:
        self.calls["describe"] += 1
        self.describe_sizes.append(len(eni_ids))
        found = [self.enis[i] for i in eni_ids if i in self.enis]
        for eni in found:  # a detach requested earlier is seen done by the next describe
            detaching = eni.attachment and eni.attachment.status == "detaching"
            if detaching and eni.eni_id not in self.stuck:
                self.enis[eni.eni_id] = replace(eni, attachment=None, status="available")
        statuses = filters.get("status")
        answer = [
            e
            for i in eni_ids
            if (e := self.enis.get(i)) is not None and (statuses is None or e.status in statuses)
        ]
        self.answered += len(answer)
        return answer

    async def detach_network_interface(self, *, attachment_id: str, force: bool = True) -> None:
        self.calls["detach"] += 1
        await asyncio.sleep(0)
        eni_id = attachment_id.replace("eni-attach-", "eni-")
        eni = self.enis[eni_id]
        assert eni.attachment is not None
        self.detached[eni_id] += 1
        self.enis[eni_id] = replace(eni, attachment=replace(eni.attachment, status="detaching"))

    async def delete_network_interface(self, *, eni_id: str) -> None:
        self.calls["delete"] += 1
        await asyncio.sleep(0)
        eni = self.enis.get(eni_id)
        if eni is None:
            raise errors.ENINotFound(
                action="DeleteNetworkInterface", code="InvalidNetworkInterfaceID.NotFound"
            )
        if eni.attachment is not None:
            raise errors.IncorrectState(
                action="DeleteNetworkInterface", code="InvalidNetworkInterface.InUse"
            )
        del self.enis[eni_id]


async def _until(predicate: Any, *, within: float = 5.0) -> None:
    await until(predicate, within=within, every=0.005)


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "POLL_START_SECONDS", 0.01)
    monkeypatch.setattr(cleanup, "POLL_MAX_SECONDS", 0.02)


@pytest.mark.usefixtures("fast_polls")
async def test_hundreds_of_enis_share_their_describes_and_hold_no_worker_while_waiting() -> None:
    enis = [_eni(n) for n in range(300)]
    ec2 = DetachingEC2(enis)
    told: list[str] = []
    pool = CleanupPool(
        cast(EC2Client, ec2), workers=3, detach_timeout=5, on_done=told.append, metrics=Metrics()
    )
    for eni in enis:
        pool.submit(eni.eni_id, nodeeni="a", seen=eni)
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
    assert ec2.calls["describe"] == pool.polls
    assert ec2.calls["describe"] <= 300 * 0.25, ec2.describe_sizes
    # polls ask only for ENIs still in use: detached ones are not described in full
    assert ec2.answered == 0
    assert max(ec2.describe_sizes) > 3  # more ENIs waited at once than there are workers
    assert pool.max_in_flight <= 3


@pytest.mark.usefixtures("fast_polls")
async def test_an_eni_not_free_by_the_timeout_is_described_again_and_kept() -> None:
    enis = [_eni(0), _eni(1)]
    ec2 = DetachingEC2(enis, stuck=["eni-0001"])
    metrics = Metrics()
    pool = CleanupPool(
        cast(EC2Client, ec2),
        workers=1,
        detach_timeout=0.05,
        on_done=lambda _: None,
        metrics=metrics,
    )
    for eni in enis:
        pool.submit(eni.eni_id, nodeeni="a", seen=eni)
    task = asyncio.create_task(pool.run())
    try:
        await _until(lambda: "eni-0000" not in ec2.enis)
        # timed out, then described afresh by a worker (not a poll) and parked again
        await _until(lambda: metrics.cleanups.labels("retry")._value.get() >= 2)
        assert ec2.calls["describe"] > pool.polls
        assert pool.pending("eni-0001")  # never dropped
        ec2.stuck.clear()
        await _until(lambda: not ec2.enis)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert ec2.detached["eni-0001"] == 1  # still detaching when described: not detached twice
    assert not pool.pending("eni-0001")


async def test_a_term_that_ends_while_enis_wait_leaves_them_queued_for_the_next() -> None:
    enis = [_eni(n) for n in range(4)]
    ec2 = DetachingEC2(enis, stuck=[e.eni_id for e in enis])
    pool = CleanupPool(
        cast(EC2Client, ec2),
        workers=2,
        detach_timeout=60,
        on_done=lambda _: None,
        metrics=Metrics(),
    )
    for eni in enis:
        pool.submit(eni.eni_id, nodeeni="a", seen=eni)
    task = asyncio.create_task(pool.run())
    await _until(lambda: ec2.calls["detach"] == 4)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(pool.queue) == 4
    assert all(pool.pending(e.eni_id) for e in enis)

"""Unit tests for how the cleanup pool tells an ENI's owner that it is gone.

Once per NOTIFY_INTERVAL_SECONDS while more of the owner's ENIs are in the
pool, and at once with the last one: a reconcile per deleted ENI cost more EC2
work than the deletions (see bench/results/suite/large.json).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest

from eni_controller.metrics import Metrics
from eni_controller.reconcile import cleanup
from eni_controller.reconcile.cleanup import CleanupPool
from tests.harness.memory_ec2 import MemoryEC2, unpaced_client
from tests.harness.resources import network_interface
from tests.harness.waiting import until


class GoneEC2(MemoryEC2):
    """The in-memory EC2 holding no ENI (each asked for is already gone: NotFound
    means done); a delete of one of `gated` waits for `gate`."""

    def __init__(self, gated: Sequence[str] = ()) -> None:
        super().__init__([])
        self.gated = set(gated)
        self.gate = asyncio.Event()

    async def delete_network_interface(self, **params: Any) -> dict[str, Any]:
        if params["NetworkInterfaceId"] in self.gated:
            await self.gate.wait()
        return await super().delete_network_interface(**params)


def _pool(ec2: GoneEC2, told: list[str]) -> CleanupPool:
    return CleanupPool(
        unpaced_client(ec2, metrics=Metrics()),
        workers=2,
        detach_timeout=1,
        on_done=told.append,
        metrics=Metrics(),
    )


async def _until(predicate: Any, *, within: float = 2.0) -> None:
    await until(predicate, within=within, every=0.005)


async def test_an_owner_is_told_once_when_its_enis_go_together() -> None:
    told: list[str] = []
    pool = _pool(GoneEC2(), told)
    for n in range(5):
        pool.submit(network_interface(f"eni-a{n}"), nodeeni="a")
    pool.submit(network_interface("eni-b0"), nodeeni="b")
    task = asyncio.create_task(pool.run())
    try:
        await _until(lambda: sorted(told) == ["a", "b"])
        await asyncio.sleep(0.05)
        assert sorted(told) == ["a", "b"]  # not once per ENI
        assert not any(pool.pending(f"eni-a{n}") for n in range(5))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_progress_is_told_within_the_interval_and_the_last_eni_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cleanup, "NOTIFY_INTERVAL_SECONDS", 0.05)
    ec2 = GoneEC2(gated=["eni-a1"])
    told: list[str] = []
    pool = _pool(ec2, told)
    pool.submit(network_interface("eni-a0"), nodeeni="a")
    pool.submit(network_interface("eni-a1"), nodeeni="a")
    task = asyncio.create_task(pool.run())
    try:
        await _until(lambda: not pool.pending("eni-a0"))
        assert told == []  # eni-a1 is still in the pool: told a little later
        await _until(lambda: told == ["a"])
        ec2.gate.set()
        await _until(lambda: told == ["a", "a"], within=0.04)  # the last one: at once
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

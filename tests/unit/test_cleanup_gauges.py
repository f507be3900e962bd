"""Unit tests for the cleanup pool's gauges: pending, in flight and the oldest
pending ENI's age, read as a scrape reads them (generate_latest on another
thread), through entries, cancels, re-entries and the end of a term.

Ages come from a ManualClock; the tests wait on conditions, never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.reconcile import cleanup
from eni_controller.reconcile.cleanup import CleanupPool
from tests.harness.cleanup_ec2 import CleanupEC2, attached_eni
from tests.harness.clock import ManualClock
from tests.harness.waiting import until

GAUGES = (
    "eni_controller_eni_cleanup_pending",
    "eni_controller_eni_cleanup_in_flight",
    "eni_controller_eni_cleanup_oldest_pending_seconds",
)


@pytest.fixture(autouse=True)
def fast_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "POLL_START_SECONDS", 0.002)
    monkeypatch.setattr(cleanup, "POLL_MAX_SECONDS", 0.005)
    monkeypatch.setattr(cleanup, "NOTIFY_INTERVAL_SECONDS", 0.001)


async def _scrape(metrics: Metrics) -> tuple[float, float, float]:
    """The three gauges as a scrape on a server thread sees them."""
    text = (await asyncio.to_thread(generate_latest, metrics.registry)).decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    pending, in_flight, oldest = (values[name] for name in GAUGES)
    return pending, in_flight, oldest


def _pool(ec2: CleanupEC2, clock: ManualClock, metrics: Metrics) -> CleanupPool:
    return CleanupPool(
        cast(EC2Client, ec2),
        workers=2,
        detach_timeout=30.0,
        on_done=lambda _owner: None,
        metrics=metrics,
        clock=clock,
    )


def _submit(pool: CleanupPool, eni: NetworkInterface) -> None:
    pool.submit(eni, nodeeni="a")


async def test_pending_and_oldest_age_through_entries_cancels_and_reentries() -> None:
    first, second = attached_eni(0), attached_eni(1)
    clock, metrics = ManualClock(), Metrics()
    pool = _pool(CleanupEC2([first, second]), clock, metrics)
    assert await _scrape(metrics) == (0, 0, 0)
    _submit(pool, first)
    clock.advance(5)
    _submit(pool, second)
    clock.advance(10)
    assert await _scrape(metrics) == (2, 0, 15)
    _submit(pool, first)  # submitted again while pending: still the same entry
    assert await _scrape(metrics) == (2, 0, 15)
    assert pool.cancel(first.eni_id)  # the oldest leaves: the next one is the oldest
    assert await _scrape(metrics) == (1, 0, 10)
    _submit(pool, first)  # back in: a new entry, the youngest
    clock.advance(1)
    assert await _scrape(metrics) == (2, 0, 11)
    assert pool.cancel(second.eni_id)
    assert pool.cancel(first.eni_id)
    assert await _scrape(metrics) == (0, 0, 0)


async def test_in_flight_counts_workers_in_an_ec2_call_and_all_reads_zero_when_done() -> None:
    first, second = attached_eni(0), attached_eni(1)
    ec2 = CleanupEC2([first, second])
    gates = [ec2.hold("detach", e.eni_id) for e in (first, second)]
    clock, metrics = ManualClock(), Metrics()
    pool = _pool(ec2, clock, metrics)
    _submit(pool, first)
    _submit(pool, second)
    task = asyncio.create_task(pool.run())
    try:
        await until(lambda: len(ec2.entered) == 2, within=5.0, every=0.002)
        clock.advance(3)
        assert await _scrape(metrics) == (2, 2, 3)
        gates[0].set()
        await until(lambda: not pool.pending(first.eni_id), within=5.0, every=0.002)
        assert await _scrape(metrics) == (1, 1, 3)
        gates[1].set()
        await until(lambda: pool.idle, within=5.0, every=0.002)
        await until(lambda: pool.in_flight == 0, within=5.0, every=0.002)
        assert await _scrape(metrics) == (0, 0, 0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert ec2.deletes == [first.eni_id, second.eni_id]


async def test_the_end_of_a_term_empties_the_gauges() -> None:
    eni = attached_eni(0)
    ec2 = CleanupEC2([eni], stuck=[eni.eni_id])  # parked, waiting for ever
    clock, metrics = ManualClock(), Metrics()
    pool = _pool(ec2, clock, metrics)
    _submit(pool, eni)
    task = asyncio.create_task(pool.run())
    await until(lambda: ec2.polls >= 1, within=5.0, every=0.002)
    clock.advance(7)
    assert await _scrape(metrics) == (1, 0, 7)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await _scrape(metrics) == (0, 0, 0)

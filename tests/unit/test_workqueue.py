"""Unit tests for eni_controller.kube.workqueue.

Fake clock for the duration metrics; real asyncio with short delays for add_after and
backoff timers, which run on the event loop's clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eni_controller.kube.workqueue import WorkQueue
from eni_controller.metrics import Metrics
from tests.harness.clock import ManualClock

WAIT = 2.0  # generous bound on any await that should complete; failures never hang


@pytest.fixture
async def q() -> AsyncIterator[WorkQueue[str]]:
    queue: WorkQueue[str] = WorkQueue(name="q")
    yield queue
    await queue.shutdown(drain=False)


def sample(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"name": "q"})


async def get(queue: WorkQueue[str]) -> str:
    key = await asyncio.wait_for(queue.get(), WAIT)
    assert key is not None, "the queue is shut down"
    return key


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- de-duplication, order, exclusivity ---------------------------------------------


async def test_waiting_key_is_queued_once(q: WorkQueue[str]) -> None:
    for key in ["a", "a", "b", "a", "b"]:
        q.add(key)
    assert len(q) == 2
    assert [await get(q), await get(q)] == ["a", "b"]
    assert len(q) == 0


async def test_keys_come_out_in_fifo_order(q: WorkQueue[str]) -> None:
    keys = ["c", "a", "e", "b", "d"]
    for key in keys:
        q.add(key)
    assert [await get(q) for _ in keys] == keys


async def test_get_waits_for_an_add(q: WorkQueue[str]) -> None:
    getter = asyncio.create_task(get(q))
    await settle()
    assert not getter.done()
    q.add("a")
    assert await getter == "a"


async def test_key_in_processing_is_not_handed_out_again(q: WorkQueue[str]) -> None:
    q.add("a")
    assert await get(q) == "a"
    q.add("a")
    assert len(q) == 0  # marked dirty, not waiting
    second = asyncio.create_task(get(q))
    await settle()
    assert not second.done()
    q.done("a")
    assert await second == "a"  # re-added during processing: processed again after done
    q.done("a")
    assert len(q) == 0


async def test_readd_during_processing_keeps_its_place_after_done(q: WorkQueue[str]) -> None:
    q.add("a")
    assert await get(q) == "a"
    q.add("a")
    q.add("a")
    q.add("b")
    q.done("a")
    assert len(q) == 2
    assert [await get(q), await get(q)] == ["b", "a"]


async def test_done_for_a_key_not_in_processing_is_ignored(q: WorkQueue[str]) -> None:
    q.add("a")
    q.done("a")  # waiting, not processing
    q.done("zzz")
    assert len(q) == 1
    assert await get(q) == "a"
    q.done("a")
    q.done("a")
    assert len(q) == 0


async def test_cancelled_getter_passes_its_wakeup_on(q: WorkQueue[str]) -> None:
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle()
    q.add("a")  # wakes `first`, which is cancelled before it runs
    first.cancel()
    assert await asyncio.wait_for(second, WAIT) == "a"
    assert first.cancelled()


async def test_key_is_never_processed_by_two_workers_and_no_add_is_lost() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    keys = [f"nodeeni-{i}" for i in range(50)]
    rng = random.Random(7)
    plan = [[rng.choice(keys) for _ in range(10)] for _ in range(100)]  # 1,000 adds
    tick = 0
    last_add: dict[str, int] = {}
    last_start: dict[str, int] = {}
    in_flight: set[str] = set()
    overlaps: list[str] = []
    max_in_flight = 0
    adds_while_processing = 0
    processed = 0
    producers_done = False
    idle = asyncio.Event()

    def check_idle() -> None:
        if producers_done and not len(queue) and not in_flight:
            idle.set()

    async def worker() -> None:
        nonlocal tick, max_in_flight, processed
        while (key := await queue.get()) is not None:
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            max_in_flight = max(max_in_flight, len(in_flight))
            tick += 1
            last_start[key] = tick
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            in_flight.discard(key)
            processed += 1
            queue.done(key)
            check_idle()

    async def producer(batch: list[str]) -> None:
        nonlocal tick, adds_while_processing
        for key in batch:
            tick += 1
            last_add[key] = tick
            adds_while_processing += key in in_flight
            queue.add(key)
            await asyncio.sleep(0)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    await asyncio.wait_for(asyncio.gather(*(producer(b) for b in plan)), WAIT)
    producers_done = True
    check_idle()
    await asyncio.wait_for(idle.wait(), WAIT)
    assert await queue.shutdown(timeout=WAIT) is True
    await asyncio.wait_for(asyncio.gather(*workers), WAIT)

    assert overlaps == []
    assert max_in_flight > 1  # workers really ran concurrently
    assert adds_while_processing > 0  # the dirty path was exercised
    assert processed <= 1000
    assert set(last_start) == set(last_add)
    late = {k: (last_add[k], last_start[k]) for k in last_add if last_start[k] < last_add[k]}
    assert late == {}


# --- add_after ----------------------------------------------------------------------


async def test_add_after_honours_the_delay(q: WorkQueue[str]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 0.2)
    assert len(q) == 0
    await asyncio.sleep(0.05)
    assert len(q) == 0
    assert await get(q) == "a"
    assert loop.time() - start >= 0.199


async def test_add_after_zero_or_negative_delay_adds_now(q: WorkQueue[str]) -> None:
    q.add_after("a", 0)
    q.add_after("b", -1.0)
    assert len(q) == 2
    assert [await get(q), await get(q)] == ["a", "b"]


async def test_add_after_earlier_delay_replaces_a_later_one() -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.add_after("a", 0.3)
    queue.add_after("a", 0.03)
    assert await get(queue) == "a"
    assert loop.time() - start < 0.25
    queue.done("a")
    await asyncio.sleep(0.4)  # the 0.3 s timer was cancelled: no second add
    assert len(queue) == 0
    assert sample(metrics, "workqueue_adds_total") == 1.0
    await queue.shutdown()


async def test_add_after_later_delay_is_dropped_while_an_earlier_is_pending() -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    queue.add_after("a", 0.03)
    queue.add_after("a", 0.15)
    assert await get(queue) == "a"
    queue.done("a")
    await asyncio.sleep(0.25)
    assert len(queue) == 0
    assert sample(metrics, "workqueue_adds_total") == 1.0
    await queue.shutdown()


async def test_add_after_of_a_waiting_key_does_not_duplicate_it(q: WorkQueue[str]) -> None:
    q.add("a")
    q.add_after("a", 0.02)
    await asyncio.sleep(0.06)
    assert len(q) == 1


# --- rate limiting ------------------------------------------------------------------


async def test_rate_limited_backoff_doubles_from_base_delay() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q", max_delay=0.08)
    delays = [queue.add_rate_limited("a") for _ in range(7)]
    assert delays == [0.005, 0.01, 0.02, 0.04, 0.08, 0.08, 0.08]
    assert queue.num_requeues("a") == 7
    await queue.shutdown(drain=False)


async def test_rate_limited_backoff_is_capped_at_max_delay_without_overflow() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    delays = [queue.add_rate_limited("a") for _ in range(2000)]
    assert delays[15] == 0.005 * 2**15
    assert delays[16] == 300.0  # 0.005 * 2**16 = 327.68
    assert delays[-1] == 300.0
    await queue.shutdown(drain=False)


async def test_a_servers_retry_after_lengthens_the_backoff_never_shortens_it() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q", max_delay=60.0)
    assert queue.add_rate_limited("a", at_least=2.0) == 2.0  # 429 Retry-After: 2
    assert queue.add_rate_limited("a", at_least=0.001) == 0.01  # the backoff goes on
    assert queue.add_rate_limited("a", at_least=3600.0) == 60.0  # capped like any delay
    assert queue.num_requeues("a") == 3
    await queue.shutdown(drain=False)


async def test_a_retry_after_holds_the_key_against_other_adds() -> None:
    """An event for a key answered 429 must not send it back sooner than asked."""
    queue: WorkQueue[str] = WorkQueue(name="q")
    loop = asyncio.get_running_loop()
    queue.add_rate_limited("a", at_least=0.2)
    started = loop.time()
    queue.add("a")  # an event meanwhile
    queue.add("a", first=True)
    queue.add_after("a", 0.01)  # a progress requeue
    assert len(queue) == 0
    assert await get(queue) == "a"
    assert loop.time() - started >= 0.2 - 0.001
    queue.done("a")
    queue.forget("a")  # it went through: no hold any more
    queue.add("a")
    assert len(queue) == 1
    await queue.shutdown(drain=False)


async def test_a_retry_after_holds_a_key_added_while_it_was_processed() -> None:
    """A spec edit lands while the reconcile that gets the 429 runs: done() must not
    hand the key out again before the Retry-After (the chaos suite's case 3 saw it)."""
    queue: WorkQueue[str] = WorkQueue(name="q")
    loop = asyncio.get_running_loop()
    for _ in range(2):  # the failure, and its repeat
        queue.add("a")
        assert await get(queue) == "a"
        queue.add("a")  # an event while it is processed: dirty
        started = loop.time()
        queue.add_rate_limited("a", at_least=0.2)  # the reconcile got a 429
        queue.done("a")
        assert len(queue) == 0
        assert await get(queue) == "a"
        assert loop.time() - started >= 0.2 - 0.001
        queue.done("a")
        queue.forget("a")
    await queue.shutdown(drain=False)


async def test_a_hold_that_has_passed_lets_adds_through() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    queue.add_rate_limited("a", at_least=0.05)
    assert await get(queue) == "a"  # the hold's own timer
    queue.done("a")
    queue.add("a")  # failed again without a Retry-After, no forget: the hold is over
    assert len(queue) == 1
    await queue.shutdown(drain=False)


async def test_rate_limited_backoff_is_per_key(q: WorkQueue[str]) -> None:
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert q.add_rate_limited("b") == 0.005
    assert (q.num_requeues("a"), q.num_requeues("b"), q.num_requeues("c")) == (2, 1, 0)


async def test_rate_limited_key_is_added_after_its_delay() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q", base_delay=0.05)
    assert queue.add_rate_limited("a") == 0.05
    assert len(queue) == 0
    assert await get(queue) == "a"
    await queue.shutdown(drain=False)


async def test_forget_resets_backoff(q: WorkQueue[str]) -> None:
    for _ in range(4):
        q.add_rate_limited("a")
    q.add_rate_limited("b")
    q.forget("a")
    q.forget("never-seen")
    assert q.num_requeues("a") == 0
    assert q.num_requeues("b") == 1
    assert q.add_rate_limited("a") == 0.005


# --- shutdown -----------------------------------------------------------------------


async def test_shutdown_drains_in_flight_work() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    events: list[str] = []
    release = asyncio.Event()

    async def worker() -> None:
        key = await get(queue)
        await release.wait()
        events.append(f"done {key}")
        queue.done(key)

    queue.add("a")
    task = asyncio.create_task(worker())
    await settle()
    stopping = asyncio.create_task(queue.shutdown(timeout=WAIT))
    await settle()
    assert not stopping.done()
    release.set()
    assert await asyncio.wait_for(stopping, WAIT) is True
    events.append("shutdown returned")
    assert events == ["done a", "shutdown returned"]
    await task


async def test_shutdown_drain_is_bounded_by_timeout() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    queue.add("a")
    assert await get(queue) == "a"
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await queue.shutdown(timeout=0.05) is False
    assert 0.049 <= loop.time() - start < 1.0


async def test_shutdown_without_drain_returns_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    queue.add("a")
    assert await get(queue) == "a"
    assert await asyncio.wait_for(queue.shutdown(drain=False), 0.5) is False
    queue.done("a")
    assert await queue.shutdown() is True  # idempotent; now nothing in flight


async def test_shutdown_wakes_waiting_getters_with_shutdown() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    assert not any(g.done() for g in getters)
    await queue.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), WAIT)
    assert results == [None, None, None]


async def test_shutdown_stops_handing_out_waiting_keys() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    queue.add("a")
    queue.add("b")
    await queue.shutdown()
    assert queue.shutting_down
    assert len(queue) == 0
    assert await queue.get() is None


async def test_adds_after_shutdown_are_ignored() -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    await queue.shutdown()
    queue.add("a")
    queue.add_after("b", 0.01)
    queue.add_after("c", 0)
    assert queue.add_rate_limited("d") == 0.0
    await asyncio.sleep(0.03)
    assert len(queue) == 0
    assert queue.num_requeues("d") == 0
    assert sample(metrics, "workqueue_adds_total") == 0.0
    assert sample(metrics, "workqueue_retries_total") == 0.0


async def test_shutdown_cancels_pending_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    handles: list[asyncio.TimerHandle] = []
    call_at = loop.call_at

    def recording_call_at(*args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        handles.append(call_at(*args, **kwargs))
        return handles[-1]

    monkeypatch.setattr(loop, "call_at", recording_call_at)
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    queue.add_after("a", 0.02)
    queue.add_rate_limited("b")
    await queue.shutdown()
    assert len(handles) == 2
    assert all(h.cancelled() for h in handles)
    await asyncio.sleep(0.05)
    assert len(queue) == 0
    assert sample(metrics, "workqueue_adds_total") == 0.0


async def test_dirty_key_is_not_requeued_after_shutdown() -> None:
    queue: WorkQueue[str] = WorkQueue(name="q")
    queue.add("a")
    assert await get(queue) == "a"
    queue.add("a")
    stopping = asyncio.create_task(queue.shutdown())
    await settle()
    queue.done("a")
    assert await asyncio.wait_for(stopping, WAIT) is True
    assert len(queue) == 0
    assert await queue.get() is None


# --- metrics ------------------------------------------------------------------------


async def test_adds_total_counts_every_add_including_duplicates() -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    for key in ["a", "a", "b", "a"]:
        queue.add(key)
    assert sample(metrics, "workqueue_adds_total") == 4.0
    await queue.shutdown(drain=False)


async def test_depth_gauge_follows_waiting_keys() -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    assert sample(metrics, "workqueue_depth") == 0.0
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert sample(metrics, "workqueue_depth") == 2.0
    assert await get(queue) == "a"
    assert sample(metrics, "workqueue_depth") == 1.0
    queue.add("a")  # dirty while processing: not waiting
    assert sample(metrics, "workqueue_depth") == 1.0
    queue.done("a")
    assert sample(metrics, "workqueue_depth") == 2.0
    await queue.shutdown(drain=False)
    assert sample(metrics, "workqueue_depth") == 0.0


async def test_queue_and_work_durations_use_the_clock(clock: ManualClock) -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics, clock=clock)
    queue.add("a")
    clock.advance(2.5)
    assert await get(queue) == "a"
    clock.advance(0.75)
    queue.done("a")
    assert sample(metrics, "workqueue_queue_duration_seconds_count") == 1.0
    assert sample(metrics, "workqueue_queue_duration_seconds_sum") == 2.5
    assert sample(metrics, "workqueue_work_duration_seconds_count") == 1.0
    assert sample(metrics, "workqueue_work_duration_seconds_sum") == 0.75
    await queue.shutdown()


async def test_queue_duration_of_a_readd_counts_from_the_add(clock: ManualClock) -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics, clock=clock)
    queue.add("a")
    assert await get(queue) == "a"  # queued 0 s
    queue.add("a")
    clock.advance(1.0)
    queue.done("a")
    clock.advance(0.5)
    assert await get(queue) == "a"  # queued 1.5 s: 1 s behind processing, 0.5 s waiting
    assert sample(metrics, "workqueue_queue_duration_seconds_sum") == 1.5
    assert sample(metrics, "workqueue_queue_duration_seconds_count") == 2.0
    await queue.shutdown(drain=False)


async def test_retries_total_counts_rate_limited_adds() -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")
    queue.add_rate_limited("b")
    queue.add_after("c", 0.01)
    assert sample(metrics, "workqueue_retries_total") == 3.0
    await queue.shutdown(drain=False)


async def test_metrics_are_labelled_with_the_queue_name() -> None:
    metrics = Metrics()
    first: WorkQueue[str] = WorkQueue(name="q", metrics=metrics)
    other: WorkQueue[str] = WorkQueue(name="other", metrics=metrics)
    first.add("a")
    other.add("a")
    other.add("b")
    get_value = metrics.registry.get_sample_value
    assert get_value("workqueue_adds_total", {"name": "q"}) == 1.0
    assert get_value("workqueue_adds_total", {"name": "other"}) == 2.0
    await first.shutdown(drain=False)
    await other.shutdown(drain=False)


async def test_add_first_puts_a_key_ahead_of_the_waiting_ones_once() -> None:
    queue: WorkQueue[str] = WorkQueue(name="test")
    for key in ("a", "b"):
        queue.add(key)
    queue.add("c", first=True)
    queue.add("b", first=True)  # already waiting: stays where it is
    assert [await queue.get() for _ in range(3)] == ["c", "a", "b"]

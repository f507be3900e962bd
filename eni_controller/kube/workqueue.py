"""A rate-limited asyncio work queue with client-go workqueue semantics.

Invariants the reconcile loop relies on:

* a waiting key is queued once however often it is added;
* a key being processed is never handed to a second worker;
* a key added while processed is queued again on done() (no lost updates);
* add_rate_limited() retries after base * 2**failures seconds (capped), forget()
  resets it; of several add_after() delays the earliest wins;
* a server's Retry-After holds the key: adds before it ends are deferred to it;
* shutdown() hands out no new work at once, get() returns None (a controller that
  lost its lease must not start reconciles), and with drain waits for in-flight
  keys' done().

All methods but get() and shutdown() are synchronous, on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from eni_controller.metrics import Metrics

K = TypeVar("K", bound=Hashable)

# 2**62 * any sane base delay is far past any cap; bounding the exponent avoids overflow.
_MAX_EXPONENT = 62
# A timer may fire this early on the loop's clock; a hold with less left has passed.
_HOLD_SLACK = 1e-3


class WorkQueue(Generic[K]):
    """De-duplicating FIFO of keys; `clock` times the metrics, delays use the loop's."""

    def __init__(
        self,
        *,
        name: str,
        metrics: Metrics | None = None,
        base_delay: float = 0.005,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._clock = clock
        metrics = metrics or Metrics()  # without one, a registry nobody reads
        self._depth = metrics.workqueue_depth.labels(name=name)
        self._adds = metrics.workqueue_adds.labels(name=name)
        self._queue_duration = metrics.workqueue_queue_duration.labels(name=name)
        self._work_duration = metrics.workqueue_work_duration.labels(name=name)
        self._retries = metrics.workqueue_retries.labels(name=name)
        self._queue: deque[K] = deque()
        self._dirty: dict[K, float] = {}  # to process (queued, or again on done): when added
        self._processing: dict[K, float] = {}  # key: when it was handed out
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._held: dict[K, float] = {}  # loop time a server's Retry-After ends
        self._ready = asyncio.Event()  # set while keys wait, and once shut down
        self._idle = asyncio.Event()
        self._idle.set()
        self.shutting_down = False

    def __len__(self) -> int:
        """Keys waiting to be handed out (not those being processed)."""
        return len(self._queue)

    def add(self, key: K, *, first: bool = False) -> None:
        """Queue `key` (with `first`, ahead of the keys waiting) unless it waits already."""
        if self.shutting_down:
            return
        self._adds.inc()
        if key in self._dirty:
            return
        if remaining := self._hold_left(key):
            self.add_after(key, remaining)
            return
        self._dirty[key] = self._clock()
        if key not in self._processing:  # else done() queues it again
            self._push(key, first=first)

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` after `delay` seconds; of several pending delays the earliest wins."""
        if self.shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        self._timers[key] = (when, loop.call_at(when, self._fire, key))

    def add_rate_limited(self, key: K, *, at_least: float = 0.0) -> float:
        """Add `key` after its backoff delay, or `at_least` (a server's Retry-After)
        when that is longer, and return the delay (0.0 if shut down)."""
        if self.shutting_down:
            return 0.0
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        backoff = self._base_delay * 2.0 ** min(failures, _MAX_EXPONENT)
        delay = min(max(backoff, at_least), self._max_delay)
        self._retries.inc()
        if at_least > 0:
            until = asyncio.get_running_loop().time() + min(at_least, self._max_delay)
            self._held[key] = max(until, self._held.get(key, until))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset the backoff of `key`; call when it was processed successfully."""
        self._failures.pop(key, None)
        self._held.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> K | None:
        """The next key, oldest first; None once the queue is shut down."""
        while not self._queue:  # shutdown() empties it for good
            if self.shutting_down:
                return None
            await self._ready.wait()
        key = self._queue.popleft()
        if not self._queue:
            self._ready.clear()
        self._idle.clear()
        now = self._clock()
        self._processing[key] = now
        self._queue_duration.observe(now - self._dirty.pop(key, now))
        self._depth.set(len(self._queue))
        return key

    def done(self, key: K) -> None:
        """Processing of `key` (as returned by get) finished; ignored for other keys."""
        started_at = self._processing.pop(key, None)
        if started_at is None:
            return
        self._work_duration.observe(self._clock() - started_at)
        if key in self._dirty:  # added while processed: its turn again, after any hold
            if remaining := self._hold_left(key):  # failed with a Retry-After meanwhile
                del self._dirty[key]
                self.add_after(key, remaining)
            else:
                self._push(key)
        if not self._processing:
            self._idle.set()

    # ASYNC109 prefers asyncio.timeout() at the call site; this timeout bounds only the drain.
    async def shutdown(self, *, drain: bool = True, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Stop handing out work, drop waiting keys and delays, wake getters; with drain,
        wait (at most `timeout` s) for the keys in processing. True when none is left."""
        if not self.shutting_down:
            self.shutting_down = True
            for _, handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
            self._held.clear()
            self._queue.clear()
            self._dirty.clear()
            self._depth.set(0)
            self._ready.set()
        if drain and self._processing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
        return not self._processing

    def _push(self, key: K, *, first: bool = False) -> None:
        if first:
            self._queue.appendleft(key)
        else:
            self._queue.append(key)
        self._depth.set(len(self._queue))
        self._ready.set()

    def _hold_left(self, key: K) -> float:
        """Seconds left of a Retry-After hold on `key`; 0.0 (and dropped) once passed."""
        held = self._held.get(key)
        if held is None:
            return 0.0
        remaining = held - asyncio.get_running_loop().time()
        if remaining > _HOLD_SLACK:
            return remaining
        del self._held[key]
        return 0.0

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

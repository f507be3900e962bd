"""Concurrent describes by key, made as one call (a dataloader with singleflight):
reconcile workers often ask EC2 about the same things at once, and each call
costs a request against the account's Describe budget.

Invariants: keys asked in one event-loop turn, or while a call is in flight, go
out together in the next call (in chunks of `max_keys`). An asker shares the
call in flight only if it holds all its keys and started no earlier than the
asker's `not_before`. The batcher keeps no answers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_Answer = tuple[float, Mapping[K, V]]  # when the call started, what it found

ANY_CALL = -math.inf  # `not_before` of an asker any call in flight will do for


class Batcher(Generic[K, V]):
    """`load(keys)` → when the answering call started, and the values it found."""

    def __init__(
        self,
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        *,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_keys = max_keys
        self._clock = clock
        self._waiting: dict[K, None] = {}  # keys asked for since the running call started
        self._next: asyncio.Future[_Answer[K, V]] | None = None
        # the call in flight: its keys, when it started, its answer
        self._running: tuple[frozenset[K], float, asyncio.Future[_Answer[K, V]]] | None = None

    async def get(self, keys: Iterable[K], *, not_before: float | None = None) -> dict[K, V]:
        return (await self.load(keys, not_before=not_before))[1]

    async def load(
        self, keys: Iterable[K], *, not_before: float | None = None
    ) -> tuple[float, dict[K, V]]:
        """The answer of a call started at or after `not_before` (None: after this asks)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return self._clock(), {}
        running = self._running
        if (
            running is not None
            and not_before is not None
            and running[1] >= not_before
            and running[0].issuperset(wanted)
        ):
            answer = running[2]
        else:
            self._waiting.update(dict.fromkeys(wanted))
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
                if self._running is None:
                    # askers of this same loop turn join before the call starts
                    asyncio.get_running_loop().call_soon(self._start)
            answer = self._next
        started, found = await asyncio.shield(answer)
        return started, {k: found[k] for k in wanted if k in found}

    def _start(self) -> None:
        assert self._next is not None  # called only with askers waiting
        future, keys = self._next, list(self._waiting)
        self._next, self._waiting = None, {}
        started = self._clock()
        self._running = (frozenset(keys), started, future)
        task = asyncio.create_task(self._call(keys, started, future))
        task.add_done_callback(lambda _: self._finished())

    async def _call(
        self, keys: list[K], started: float, future: asyncio.Future[_Answer[K, V]]
    ) -> None:
        try:
            found: dict[K, V] = {}
            for start in range(0, len(keys), self._max_keys):
                found.update(await self._fetch(keys[start : start + self._max_keys]))
        except Exception as err:
            future.set_exception(err)
            future.exception()  # retrieved here: nobody may be left to await it
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result((started, found))

    def _finished(self) -> None:
        self._running = None
        if self._next is not None:  # asked for while that call ran: their turn now
            self._start()

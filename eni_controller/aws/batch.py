"""Concurrent describes by key, made as one call for every key asked meanwhile.

Five reconcile workers often ask EC2 about the same or neighbouring things at
the same moment: the same 100 instances for ten NodeENIs over the same nodes,
one instance type, the ENIs of five NodeENIs. Each call to EC2 costs a request
against the account's Describe budget and, on the server, an answer to build;
a batch asks once for the union.

Freshness is kept: a caller only ever gets an answer from a call that started
after it asked. While a call is in flight, new askers wait for the next one,
which starts as soon as the current one ends and carries all their keys.
An asker that needs only an answer from after some earlier moment (`since`:
a reconcile needs EC2 as of its work queue's add, see ec2view.py) shares a
call in flight that started since then and holds all its keys. For facts that
do not change, or that a cache keeps for minutes anyway (instance types,
subnets and security groups), `fresh=False` lets such an asker share the call
in flight whenever it started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_Answer = tuple[float, Mapping[K, V]]  # when the call started, what it found


class Batcher(Generic[K, V]):
    """`get(keys)` → the values found for those keys; keys not found are absent."""

    def __init__(
        self,
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        *,
        max_keys: int,
        fresh: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_keys = max_keys
        self._fresh = fresh
        self._clock = clock
        self._waiting: dict[K, None] = {}  # keys asked for since the running call started
        self._next: asyncio.Future[_Answer[K, V]] | None = None
        # the call in flight: its keys, when it started, its answer
        self._running: tuple[frozenset[K], float, asyncio.Future[_Answer[K, V]]] | None = None
        self.calls = 0  # read by tests: fetches made

    async def get(self, keys: Iterable[K], *, since: float | None = None) -> dict[K, V]:
        return (await self.get_at(keys, since=since))[1]

    async def get_at(
        self, keys: Iterable[K], *, since: float | None = None
    ) -> tuple[float, dict[K, V]]:
        """When the answering call started (by `clock`), and the values found.

        Without `since` (and with `fresh`), that call starts after this asks.
        """
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return self._clock(), {}
        running = self._running
        if (
            running is not None
            and running[0].issuperset(wanted)
            and (not self._fresh or (since is not None and running[1] >= since))
        ):
            return self._pick(await asyncio.shield(running[2]), wanted)
        self._waiting.update(dict.fromkeys(wanted))
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._running is None:
                # askers of this same loop turn join before the call starts
                asyncio.get_running_loop().call_soon(self._start)
        return self._pick(await asyncio.shield(self._next), wanted)

    @staticmethod
    def _pick(answer: _Answer[K, V], wanted: list[K]) -> tuple[float, dict[K, V]]:
        started, found = answer
        return started, {k: found[k] for k in wanted if k in found}

    def _start(self) -> None:
        if self._running is not None or self._next is None:
            return
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
                self.calls += 1
                found.update(await self._fetch(keys[start : start + self._max_keys]))
        except Exception as err:
            if not future.done():
                future.set_exception(err)
                future.exception()  # retrieved here: nobody may be left to await it
        except BaseException:
            future.cancel()
            raise
        else:
            if not future.done():
                future.set_result((started, found))

    def _finished(self) -> None:
        self._running = None
        if self._next is not None:  # asked for while that call ran: their turn now
            self._start()

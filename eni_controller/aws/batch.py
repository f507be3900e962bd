"""Concurrent describes by key, made as one call for every key asked meanwhile.

Five reconcile workers often ask EC2 about the same or neighbouring things at
the same moment: the same 100 instances for ten NodeENIs over the same nodes,
one instance type, the ENIs of five NodeENIs. Each call to EC2 costs a request
against the account's Describe budget and, on the server, an answer to build;
a batch asks once for the union.

Freshness is kept: a caller only ever gets an answer from a call that started
after it asked. While a call is in flight, new askers wait for the next one,
which starts as soon as the current one ends and carries all their keys.
For facts that do not change, or that a cache keeps for minutes anyway
(instance types, subnets and security groups), `fresh=False` lets an asker
whose keys are all in the call in flight share that call instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """`get(keys)` → the values found for those keys; keys not found are absent."""

    def __init__(
        self,
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        *,
        max_keys: int,
        fresh: bool = True,
    ) -> None:
        self._fetch = fetch
        self._max_keys = max_keys
        self._fresh = fresh
        self._waiting: dict[K, None] = {}  # keys asked for since the running call started
        self._next: asyncio.Future[Mapping[K, V]] | None = None
        self._running: tuple[frozenset[K], asyncio.Future[Mapping[K, V]]] | None = None
        self.calls = 0  # read by tests: fetches made

    async def get(self, keys: Iterable[K]) -> dict[K, V]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        if not self._fresh and self._running is not None and self._running[0].issuperset(wanted):
            return self._pick(await asyncio.shield(self._running[1]), wanted)
        self._waiting.update(dict.fromkeys(wanted))
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._running is None:
                # askers of this same loop turn join before the call starts
                asyncio.get_running_loop().call_soon(self._start)
        return self._pick(await asyncio.shield(self._next), wanted)

    @staticmethod
    def _pick(found: Mapping[K, V], wanted: list[K]) -> dict[K, V]:
        return {k: found[k] for k in wanted if k in found}

    def _start(self) -> None:
        if self._running is not None or self._next is None:
            return
        future, keys = self._next, list(self._waiting)
        self._next, self._waiting = None, {}
        self._running = (frozenset(keys), future)
        task = asyncio.create_task(self._call(keys, future))
        task.add_done_callback(lambda _: self._finished())

    async def _call(self, keys: list[K], future: asyncio.Future[Mapping[K, V]]) -> None:
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
                future.set_result(found)

    def _finished(self) -> None:
        self._running = None
        if self._next is not None:  # asked for while that call ran: their turn now
            self._start()

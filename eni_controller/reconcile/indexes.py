"""Device-index allocation, one writer per instance across every NodeENI.

Two NodeENIs reconciled at once may target the same node. Each worker's view
of the instance comes from its own describe, seconds old; without a lock per
instance both would pick the same free index and one attach would fail (or,
against a lax API, overwrite). Indexes this process attached recently are
remembered for a while, because a describe may not show them yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

RESERVATION_SECONDS = 120.0


class InstanceIndexes:
    """The taken indexes of one instance, while its lock is held."""

    def __init__(self, taken: set[int]) -> None:
        self.taken = taken

    def pick(self, wanted: int) -> int:
        """`wanted` if free, else the lowest free index above 0 (0 is the primary ENI)."""
        if wanted not in self.taken:
            return wanted
        index = 1
        while index in self.taken:
            index += 1
        return index


class DeviceIndexAllocator:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._reserved: dict[str, dict[int, float]] = {}

    @asynccontextmanager
    async def hold(
        self, instance_id: str, *, occupied: Iterable[int]
    ) -> AsyncIterator[InstanceIndexes]:
        """Hold the instance; indexes added to `.taken` inside are reserved after."""
        lock = self._locks.setdefault(instance_id, asyncio.Lock())
        async with lock:
            now = self._clock()
            reserved = {
                i: until for i, until in self._reserved.get(instance_id, {}).items() if until > now
            }
            indexes = InstanceIndexes(set(occupied) | set(reserved))
            before = set(indexes.taken)
            try:
                yield indexes
            finally:
                for index in indexes.taken - before:
                    reserved[index] = now + RESERVATION_SECONDS
                self._reserved[instance_id] = reserved

    def release(self, instance_id: str, index: int) -> None:
        """Forget a reservation (the ENI at `index` was detached by us)."""
        self._reserved.get(instance_id, {}).pop(index, None)

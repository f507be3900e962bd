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
from collections.abc import Callable, Iterable
from types import TracebackType

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

    def hold(self, instance_id: str, *, occupied: Iterable[int]) -> InstanceHold:
        """Hold the instance; indexes added to `.taken` inside are reserved after."""
        lock = self._locks.get(instance_id)
        if lock is None:
            lock = self._locks[instance_id] = asyncio.Lock()
        return InstanceHold(
            instance_id, lock=lock, reserved=self._reserved, occupied=occupied, clock=self._clock
        )

    def release(self, instance_id: str, index: int) -> None:
        """Forget a reservation (the ENI at `index` was detached by us)."""
        self._reserved.get(instance_id, {}).pop(index, None)


class InstanceHold:
    """`DeviceIndexAllocator.hold`'s async context manager (a class: the
    generator-based kind cost more than the allocation it wraps)."""

    __slots__ = (
        "_all_reserved",
        "_before",
        "_clock",
        "_indexes",
        "_instance_id",
        "_lock",
        "_now",
        "_occupied",
        "_reserved",
    )

    def __init__(
        self,
        instance_id: str,
        *,
        lock: asyncio.Lock,
        reserved: dict[str, dict[int, float]],
        occupied: Iterable[int],
        clock: Callable[[], float],
    ) -> None:
        self._instance_id = instance_id
        self._lock = lock
        self._all_reserved = reserved  # the allocator's, by instance
        self._occupied = occupied
        self._clock = clock
        self._indexes = InstanceIndexes(set())
        self._before: frozenset[int] = frozenset()
        self._reserved: dict[int, float] = {}
        self._now = 0.0

    async def __aenter__(self) -> InstanceIndexes:
        await self._lock.acquire()
        try:
            self._now = now = self._clock()
            self._reserved = {
                i: until
                for i, until in self._all_reserved.get(self._instance_id, {}).items()
                if until > now
            }
            self._indexes = InstanceIndexes(set(self._occupied) | set(self._reserved))
            self._before = frozenset(self._indexes.taken)
        except BaseException:
            self._lock.release()
            raise
        return self._indexes

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            for index in self._indexes.taken - self._before:
                self._reserved[index] = self._now + RESERVATION_SECONDS
            self._all_reserved[self._instance_id] = self._reserved
        finally:
            self._lock.release()

"""Unit tests for eni_controller.reconcile.indexes: one holder per instance, and
indexes attached recently stay taken for a while."""

from __future__ import annotations

import asyncio

import pytest

from eni_controller.reconcile.indexes import RESERVATION_SECONDS, DeviceIndexAllocator


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_picks_the_wanted_index_or_the_lowest_free_one() -> None:
    allocator = DeviceIndexAllocator()
    async with allocator.hold("i-1", occupied=[0, 1, 3]) as indexes:
        assert indexes.pick(2) == 2
        assert indexes.pick(1) == 2
        indexes.taken.add(2)
        assert indexes.pick(3) == 4


async def test_indexes_taken_inside_are_reserved_until_they_expire() -> None:
    clock = Clock()
    allocator = DeviceIndexAllocator(clock=clock)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.taken.add(1)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.taken == {0, 1}  # the describe does not show index 1 yet
    async with allocator.hold("i-2", occupied=[0]) as indexes:
        assert indexes.taken == {0}
    clock.now += RESERVATION_SECONDS
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.taken == {0}


async def test_release_forgets_a_reservation() -> None:
    allocator = DeviceIndexAllocator()
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.taken.update({1, 2})
    allocator.release("i-1", 1)
    allocator.release("i-9", 1)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.taken == {0, 2}


async def test_one_holder_per_instance_at_a_time() -> None:
    allocator = DeviceIndexAllocator()
    inside: list[str] = []
    most = 0

    async def hold(instance_id: str) -> None:
        nonlocal most
        async with allocator.hold(instance_id, occupied=[0]) as indexes:
            inside.append(instance_id)
            most = max(most, inside.count("i-1"))
            await asyncio.sleep(0)
            indexes.taken.add(indexes.pick(1))
            inside.remove(instance_id)

    await asyncio.gather(hold("i-1"), hold("i-1"), hold("i-2"), hold("i-1"))
    assert most == 1
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.taken == {0, 1, 2, 3}  # each holder saw the one before's index


async def test_a_failure_inside_keeps_what_was_taken_and_frees_the_instance() -> None:
    allocator = DeviceIndexAllocator()

    async def attach_fails() -> None:
        async with allocator.hold("i-1", occupied=[0]) as indexes:
            indexes.taken.add(1)
            raise RuntimeError("attach failed after the index was used")

    with pytest.raises(RuntimeError):
        await attach_fails()
    async with asyncio.timeout(1), allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.taken == {0, 1}

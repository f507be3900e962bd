"""Unit tests for eni_controller.reconcile.indexes: the search goes upward from the
wanted index and stays below the instance's limit, one holder per instance,
and indexes attached recently stay reserved for their own ENI for a while."""

from __future__ import annotations

import asyncio

import pytest

from eni_controller.reconcile.indexes import (
    RESERVATION_SECONDS,
    DeviceIndexAllocator,
    InstanceIndexes,
)
from tests.harness.clock import ManualClock

X = "eni-x"
Y = "eni-y"


def test_picks_the_wanted_index_when_it_is_free() -> None:
    indexes = InstanceIndexes(occupied={0, 1, 3}, reserved={})
    assert indexes.pick(2, eni_id=X) == 2


def test_searches_upward_from_the_wanted_index_never_below() -> None:
    # 1 is free, but below the wanted index it belongs to the VPC CNI or another subnet
    indexes = InstanceIndexes(occupied={0, 2, 3}, reserved={})
    assert indexes.pick(2, eni_id=X) == 4
    assert indexes.pick(2, eni_id=X, limit=8) == 4


def test_nothing_free_below_the_limit_answers_none() -> None:
    indexes = InstanceIndexes(occupied={0, 2}, reserved={})
    assert indexes.pick(2, eni_id=X, limit=3) is None  # 1 is free, and below
    assert indexes.pick(3, eni_id=X, limit=3) is None  # the wanted index is past the limit
    assert indexes.pick(1, eni_id=X, limit=3) == 1


def test_an_unknown_limit_puts_no_bound_on_the_search() -> None:
    indexes = InstanceIndexes(occupied=set(range(40)), reserved={})
    assert indexes.pick(1, eni_id=X) == 40


def test_a_reservation_keeps_other_enis_off_but_not_its_own() -> None:
    indexes = InstanceIndexes(occupied={0}, reserved={1: X})
    assert indexes.pick(1, eni_id=X) == 1
    assert indexes.pick(1, eni_id=Y) == 2


def test_an_occupied_index_is_never_picked_even_for_its_reserving_eni() -> None:
    # the describe shows 1 taken: AWS has it, whoever it is
    indexes = InstanceIndexes(occupied={0, 1}, reserved={1: X})
    assert indexes.pick(1, eni_id=X) == 2


async def test_an_eni_attached_again_keeps_its_reserved_index() -> None:
    allocator = DeviceIndexAllocator()
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.pick(1, eni_id=X) == 1
        indexes.take(1, eni_id=X)
    assert allocator.reserved("i-1") == {1: X}
    # X detached by hand: the describe shows 1 free, the reservation still stands
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.pick(1, eni_id=Y) == 2  # another ENI is kept off it
        assert indexes.pick(1, eni_id=X) == 1  # X itself is not pushed elsewhere
        indexes.take(1, eni_id=X)
    assert allocator.reserved("i-1") == {1: X}


async def test_indexes_taken_inside_are_reserved_until_they_expire(clock: ManualClock) -> None:
    allocator = DeviceIndexAllocator(clock=clock)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.take(1, eni_id=X)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.reserved == {1: X}  # the describe does not show index 1 yet
        assert indexes.pick(1, eni_id=Y) == 2
    async with allocator.hold("i-2", occupied=[0]) as indexes:
        assert indexes.reserved == {}
    clock.advance(RESERVATION_SECONDS)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.reserved == {}
        assert indexes.pick(1, eni_id=Y) == 1
    assert allocator.reserved("i-1") == {}


async def test_an_eni_taking_another_index_drops_its_old_reservation() -> None:
    allocator = DeviceIndexAllocator()
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.take(2, eni_id=X)
        indexes.take(3, eni_id=Y)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.take(1, eni_id=X)
        assert indexes.reserved == {1: X, 3: Y}
    assert allocator.reserved("i-1") == {1: X, 3: Y}


async def test_release_frees_the_index() -> None:
    allocator = DeviceIndexAllocator()
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.take(1, eni_id=X)
        indexes.take(2, eni_id=Y)
    allocator.release("i-1", 1)
    allocator.release("i-1", 5)  # nothing reserved there
    allocator.release("i-9", 1)  # an instance never held
    assert allocator.reserved("i-1") == {2: Y}
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.pick(1, eni_id="eni-z") == 1
    allocator.release("i-1", 2)
    assert allocator.reserved("i-1") == {}


async def test_forget_frees_every_index_a_deleted_eni_held() -> None:
    # X was attached on two instances in turn (a cleanup called off mid-detach
    # never released i-1), then deleted from an `available` state
    allocator = DeviceIndexAllocator()
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.take(1, eni_id=X)
        indexes.take(2, eni_id=Y)
    async with allocator.hold("i-2", occupied=[0]) as indexes:
        indexes.take(1, eni_id=X)
    allocator.forget(X)
    assert allocator.reserved("i-1") == {2: Y}
    assert allocator.reserved("i-2") == {}
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.pick(1, eni_id="eni-z") == 1


async def test_a_release_while_the_instance_is_held_is_not_undone() -> None:
    allocator = DeviceIndexAllocator()
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        indexes.take(1, eni_id=X)
    async with allocator.hold("i-1", occupied=[0]) as indexes:
        allocator.release("i-1", 1)  # the cleanup pool saw X detached meanwhile
        indexes.take(2, eni_id=Y)
    assert allocator.reserved("i-1") == {2: Y}


async def test_one_holder_per_instance_at_a_time() -> None:
    allocator = DeviceIndexAllocator()
    inside: list[str] = []
    most = 0

    async def hold(instance_id: str, eni_id: str) -> None:
        nonlocal most
        async with allocator.hold(instance_id, occupied=[0]) as indexes:
            inside.append(instance_id)
            most = max(most, inside.count("i-1"))
            await asyncio.sleep(0)
            index = indexes.pick(1, eni_id=eni_id)
            assert index is not None
            indexes.take(index, eni_id=eni_id)
            inside.remove(instance_id)

    await asyncio.gather(hold("i-1", "a"), hold("i-1", "b"), hold("i-2", "c"), hold("i-1", "d"))
    assert most == 1
    # each holder saw the one before's index
    assert allocator.reserved("i-1") == {1: "a", 2: "b", 3: "d"}
    assert allocator.reserved("i-2") == {1: "c"}


async def test_a_failure_inside_keeps_what_was_taken_and_frees_the_instance() -> None:
    allocator = DeviceIndexAllocator()

    async def attach_fails() -> None:
        async with allocator.hold("i-1", occupied=[0]) as indexes:
            indexes.take(1, eni_id=X)
            raise RuntimeError("attach failed after the index was used")

    with pytest.raises(RuntimeError):
        await attach_fails()
    async with asyncio.timeout(1), allocator.hold("i-1", occupied=[0]) as indexes:
        assert indexes.reserved == {1: X}


def test_a_wanted_index_past_the_limit_falls_back_to_the_floor_never_below() -> None:
    # deviceIndex 2, the second subnet wants 3, the node allows 0..2: 2 is the spec's own
    indexes = InstanceIndexes(occupied=[0], reserved={})
    assert indexes.pick(3, eni_id="eni-a", floor=2, limit=3) == 2
    # 1 is free but below the spec's deviceIndex: the VPC CNI's
    indexes = InstanceIndexes(occupied=[0, 2], reserved={})
    assert indexes.pick(3, eni_id="eni-a", floor=2, limit=3) is None
    # upward first: the floor is only for a node that cannot have the wanted index
    indexes = InstanceIndexes(occupied=[0], reserved={})
    assert indexes.pick(3, eni_id="eni-a", floor=2, limit=5) == 3

"""Unit tests for the EC2 view shared between reconciles (ec2view.py) and the work
queue's `last_added`, which says how fresh that view must be."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import cast

import pytest

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import Instance, NetworkInterface
from eni_controller.kube.workqueue import WorkQueue
from eni_controller.reconcile import tags
from eni_controller.reconcile.ec2view import ANY_AGE, InstanceFacts, ManagedENIs
from tests.harness.resources import network_interface


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _eni(eni_id: str, uid: str) -> NetworkInterface:
    return network_interface(
        eni_id, tags={tags.NODEENI_UID_KEY: uid, tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE}
    )


def _instance(instance_id: str) -> Instance:
    return Instance(
        instance_id=instance_id,
        availability_zone="us-east-1a",
        state="running",
        instance_type="m5.large",
        vpc_id="vpc-1",
        occupied_device_indexes=frozenset({0}),
    )


class FakeEC2:
    def __init__(self, enis: Sequence[NetworkInterface], instances: Sequence[str] = ()) -> None:
        self.enis = list(enis)
        self.instances = set(instances)
        self.eni_describes: list[Mapping[str, Sequence[str]]] = []
        self.instance_describes: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def describe_network_interfaces(
        self, *, filters: Mapping[str, Sequence[str]], eni_ids: Sequence[str] = ()
    ) -> list[NetworkInterface]:
        self.eni_describes.append(filters)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise errors.Throttled(action="DescribeNetworkInterfaces", code="RequestLimitExceeded")
        [(key, values)] = filters.items()
        name = key.removeprefix("tag:")
        return [e for e in self.enis if e.tags.get(name) in values]

    async def describe_instances(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        self.instance_describes.append(sorted(instance_ids))
        return {i: _instance(i) for i in instance_ids if i in self.instances}


def _ids(enis: Sequence[NetworkInterface]) -> list[str]:
    return sorted(e.eni_id for e in enis)


def _view(ec2: FakeEC2, clock: Clock) -> ManagedENIs:
    return ManagedENIs(cast(EC2Client, ec2), clock=clock)


UID_FILTER = f"tag:{tags.NODEENI_UID_KEY}"
MANAGED = {f"tag:{tags.MANAGED_BY_KEY}": [tags.MANAGED_BY_VALUE]}


async def test_one_refresh_serves_every_reconcile_asked_for_before_it_started() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a"), _eni("eni-a2", "a"), _eni("eni-b1", "b")])
    clock = Clock()
    view = _view(ec2, clock)
    asked = clock.now  # the resync adds every NodeENI, then refreshes
    clock.now += 1
    view.refresh()
    results = await asyncio.gather(*(view.of(uid, since=asked) for uid in ("a", "b", "c")))
    clock.now += 5  # later reconciles of that resync still use it
    later = await view.of("a", since=asked)
    assert [_ids(r) for r in results] == [["eni-a1", "eni-a2"], ["eni-b1"], []]
    assert _ids(later) == ["eni-a1", "eni-a2"]
    assert ec2.eni_describes == [MANAGED]


async def test_a_reconcile_asked_for_after_the_snapshot_describes_its_own() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    clock = Clock()
    view = _view(ec2, clock)
    view.refresh()
    await view.of("a", since=clock.now)
    clock.now += 1
    assert _ids(await view.of("a", since=clock.now)) == ["eni-a1"]  # e.g. our own requeue
    assert _ids(await view.of("a", since=None)) == ["eni-a1"]  # after acting: now
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}, {UID_FILTER: ["a"]}]


async def test_a_failed_refresh_fails_its_waiters_and_the_next_ones_describe_again() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    ec2.fail = True
    clock = Clock()
    view = _view(ec2, clock)
    view.refresh()
    with pytest.raises(errors.Throttled):
        await view.of("a", since=clock.now)
    ec2.fail = False
    assert _ids(await view.of("a", since=clock.now)) == ["eni-a1"]
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}]


async def test_stop_cancels_a_refresh_in_flight() -> None:
    ec2 = FakeEC2([])
    ec2.gate = asyncio.Event()
    view = _view(ec2, Clock())
    view.refresh()
    await asyncio.sleep(0)
    view.stop()
    ec2.gate = None
    assert await view.of("a", since=0.0) == []  # no refresh left to join: its own describe
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}]


async def test_instance_facts_are_kept_until_too_old_and_dropped_when_gone() -> None:
    ec2 = FakeEC2([], instances=["i-1", "i-2"])
    clock = Clock()
    facts = InstanceFacts(cast(EC2Client, ec2), max_age=60, clock=clock)
    assert facts.kept(["i-1"]) == {}
    await facts.describe(["i-1", "i-2", "i-3"])
    clock.now += 30
    assert sorted(facts.kept(["i-1", "i-2", "i-3"])) == ["i-1", "i-2"]
    ec2.instances.discard("i-2")
    await facts.describe(["i-2"])  # terminated long ago: no longer in EC2
    assert sorted(facts.kept(["i-1", "i-2"])) == ["i-1"]
    assert sorted(facts.kept(["i-1"], since=100.0)) == ["i-1"]  # asked at 100.0
    assert facts.kept(["i-1"], since=100.5) == {}  # asked for after that describe
    clock.now += 31
    assert facts.kept(["i-1"]) == {}
    assert await facts.describe([]) == {}
    assert ec2.instance_describes == [["i-1", "i-2", "i-3"], ["i-2"]]


async def test_reconciles_asked_for_before_a_describe_of_their_instances_share_it() -> None:
    ec2 = FakeEC2([], instances=["i-1", "i-2"])
    gate = asyncio.Event()
    describe = ec2.describe_instances

    async def held(instance_ids: Sequence[str]) -> dict[str, Instance]:
        await gate.wait()
        return await describe(instance_ids)

    ec2.describe_instances = held  # type: ignore[method-assign]
    clock = Clock()
    facts = InstanceFacts(cast(EC2Client, ec2), clock=clock)
    asked = clock.now  # both NodeENIs were added then
    first = asyncio.create_task(facts.describe(["i-1", "i-2"], since=asked))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # that describe started at 100
    clock.now += 1
    second = asyncio.create_task(facts.describe(["i-1"], since=asked))
    later = asyncio.create_task(facts.describe(["i-2"], since=clock.now))
    await asyncio.sleep(0)
    gate.set()
    assert sorted(await first) == ["i-1", "i-2"]
    assert sorted(await second) == ["i-1"]
    assert sorted(await later) == ["i-2"]
    assert ec2.instance_describes == [["i-1", "i-2"], ["i-2"]]
    assert sorted(facts.kept(["i-1", "i-2"], since=101.0)) == ["i-2"]  # i-1: as of 100


async def test_last_added_is_the_latest_add_or_the_end_of_the_previous_round() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(name="test", clock=clock)
    queue.add("a")
    clock.now = 101.0
    queue.add("a")  # already queued: one round, as of the later add
    assert await queue.get() == "a"
    assert queue.last_added("a") == 101.0
    clock.now = 102.0
    queue.add("a")  # while processed: another round
    clock.now = 105.0
    queue.done("a")  # what this round did must be seen by the next one
    assert queue.last_added("a") is None
    assert await queue.get() == "a"
    assert queue.last_added("a") == 105.0
    queue.done("a")


async def test_the_sweep_joins_a_refresh_running_and_reconciles_share_its_own() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a"), _eni("eni-b1", "b")])
    clock = Clock()
    view = _view(ec2, clock)
    view.refresh()  # a resync's
    assert _ids(await view.every()) == ["eni-a1", "eni-b1"]  # joined, not a second describe
    clock.now += 1
    asked = clock.now
    sweep = asyncio.create_task(view.every())  # nothing running: starts one
    await asyncio.sleep(0)
    assert _ids(await view.of("a", since=asked)) == ["eni-a1"]  # asked before it started
    assert _ids(await sweep) == ["eni-a1", "eni-b1"]
    assert ec2.eni_describes == [MANAGED, MANAGED]


async def test_any_age_takes_the_last_snapshot_however_old_and_describes_without_one() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    clock = Clock()
    view = _view(ec2, clock)
    assert _ids(await view.of("a", since=ANY_AGE)) == ["eni-a1"]  # no snapshot yet
    await view.refresh()
    ec2.enis.append(_eni("eni-a2", "a"))  # made after the snapshot
    clock.now += 3600
    assert _ids(await view.of("a", since=ANY_AGE)) == ["eni-a1"]
    assert _ids(await view.of("a", since=clock.now)) == ["eni-a1", "eni-a2"]
    assert ec2.eni_describes == [{UID_FILTER: ["a"]}, MANAGED, {UID_FILTER: ["a"]}]


async def test_a_reconciles_own_describe_serves_a_later_reconcile_asked_for_before_it() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    clock = Clock()
    view = _view(ec2, clock)
    await view.refresh()  # the resync before the ENI of "b" was made
    ec2.enis.append(_eni("eni-b1", "b"))
    clock.now += 1
    asked = clock.now  # e.g. the delete event, while a reconcile of "b" was acting
    clock.now += 1
    assert _ids(await view.of("b", since=None)) == ["eni-b1"]  # that reconcile, after acting
    clock.now += 1
    assert _ids(await view.of("b", since=ANY_AGE)) == ["eni-b1"]  # not the older snapshot's
    assert _ids(await view.of("b", since=asked)) == ["eni-b1"]
    assert _ids(await view.of("a", since=ANY_AGE)) == ["eni-a1"]  # other uids: the snapshot
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["b"]}]
    ec2.enis.append(_eni("eni-b2", "b"))
    assert _ids(await view.of("b", since=clock.now)) == ["eni-b1", "eni-b2"]  # asked after it
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["b"]}, {UID_FILTER: ["b"]}]


async def test_a_newer_snapshot_supersedes_the_kept_answers() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    clock = Clock()
    view = _view(ec2, clock)
    assert _ids(await view.of("a", since=None)) == ["eni-a1"]
    ec2.enis = []  # deleted by hand
    clock.now += 1
    await view.refresh()
    assert await view.of("a", since=ANY_AGE) == []
    assert ec2.eni_describes == [{UID_FILTER: ["a"]}, MANAGED]


async def test_a_describe_also_carries_the_queued_uids_and_their_reconciles_use_it() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a"), _eni("eni-b1", "b")])
    clock = Clock()
    view = _view(ec2, clock)
    added = clock.now  # "a", "b" and "c" were added together
    clock.now += 1
    found = await view.of("a", since=added, also=lambda: ["b", "c", "a"])
    assert _ids(found) == ["eni-a1"]
    assert ec2.eni_describes == [{UID_FILTER: ["a", "b", "c"]}]
    clock.now += 1
    assert _ids(await view.of("b", since=added)) == ["eni-b1"]
    assert await view.of("c", since=added) == []
    assert len(ec2.eni_describes) == 1  # both from that answer
    assert _ids(await view.of("b", since=clock.now)) == ["eni-b1"]  # added after it: its own
    assert ec2.eni_describes[1:] == [{UID_FILTER: ["b"]}]

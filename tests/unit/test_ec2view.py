"""Unit tests for the EC2 view shared between reconciles (ec2view.py): one
freshness rule, an answer serves until its key is marked changed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import cast

import pytest

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import Instance, NetworkInterface
from eni_controller.reconcile import tags
from eni_controller.reconcile.ec2view import EC2View
from tests.harness.resources import network_interface


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
        self.instance_gate: asyncio.Event | None = None
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

    async def describe_subnets(self, **_: object) -> list[object]:
        return []

    async def describe_security_groups(self, **_: object) -> list[object]:
        return []

    async def describe_instances(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        self.instance_describes.append(sorted(instance_ids))
        if self.instance_gate is not None:
            await self.instance_gate.wait()
        return {i: _instance(i) for i in instance_ids if i in self.instances}


def _ids(enis: Sequence[NetworkInterface]) -> list[str]:
    return sorted(e.eni_id for e in enis)


def _view(ec2: FakeEC2) -> EC2View:
    return EC2View(cast(EC2Client, ec2), vpc_id="vpc-1")


UID_FILTER = f"tag:{tags.NODEENI_UID_KEY}"
MANAGED = {f"tag:{tags.MANAGED_BY_KEY}": [tags.MANAGED_BY_VALUE]}


async def test_one_refresh_serves_every_uid_until_it_changes() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a"), _eni("eni-a2", "a"), _eni("eni-b1", "b")])
    view = _view(ec2)
    view.refresh()  # a resync: then every NodeENI is reconciled
    results = await asyncio.gather(*(view.enis(uid) for uid in ("a", "b", "c")))
    later = await view.enis("a")  # a later reconcile, nothing changed: still served
    assert [_ids(r) for r in results] == [["eni-a1", "eni-a2"], ["eni-b1"], []]
    assert _ids(later) == ["eni-a1", "eni-a2"]
    assert ec2.eni_describes == [MANAGED]


async def test_a_changed_uid_is_described_afresh_and_that_answer_serves_until_the_next_change() -> (
    None
):
    ec2 = FakeEC2([_eni("eni-a1", "a"), _eni("eni-b1", "b")])
    view = _view(ec2)
    await view.refresh()
    view.changed(uid="a")  # an event enqueued it, or we acted on it
    ec2.enis.append(_eni("eni-a2", "a"))
    assert _ids(await view.enis("a")) == ["eni-a1", "eni-a2"]
    assert _ids(await view.enis("a")) == ["eni-a1", "eni-a2"]  # its own answer, kept
    assert _ids(await view.enis("b")) == ["eni-b1"]  # b did not change: the snapshot
    view.changed(uid="a")
    assert _ids(await view.enis("a")) == ["eni-a1", "eni-a2"]
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}, {UID_FILTER: ["a"]}]


async def test_a_resync_after_a_uids_own_answer_serves_the_newer_snapshot() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    view = _view(ec2)
    view.changed(uid="a")
    assert _ids(await view.enis("a")) == ["eni-a1"]  # a's own answer, kept
    ec2.enis.clear()  # deleted by hand: nothing tells us
    ec2.gate = asyncio.Event()
    view.refresh()  # the resync
    reader = asyncio.create_task(view.enis("a"))  # while the refresh runs: waits for it
    await asyncio.sleep(0.01)
    assert not reader.done()
    ec2.gate.set()
    assert await reader == []
    assert await view.enis("a") == []  # and after it, the snapshot again
    assert ec2.eni_describes == [{UID_FILTER: ["a"]}, MANAGED]


async def test_a_change_while_a_refresh_runs_is_not_served_by_that_refresh() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    ec2.gate = asyncio.Event()
    view = _view(ec2)
    refresh = view.refresh()
    await asyncio.sleep(0)  # the refresh's describe started
    view.changed(uid="a")  # e.g. our own detach, after the refresh asked
    reader = asyncio.create_task(view.enis("a"))
    await asyncio.sleep(0.01)
    ec2.gate.set()
    await refresh
    assert _ids(await reader) == ["eni-a1"]
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}]


async def test_a_change_during_a_describe_keeps_its_answer_from_serving_the_next_reader() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    ec2.gate = asyncio.Event()
    view = _view(ec2)
    view.changed(uid="a")
    first = asyncio.create_task(view.enis("a"))
    await asyncio.sleep(0.01)  # its describe is in flight
    view.changed(uid="a")
    ec2.gate.set()
    assert _ids(await first) == ["eni-a1"]
    ec2.gate = None
    assert _ids(await view.enis("a")) == ["eni-a1"]
    assert ec2.eni_describes == [{UID_FILTER: ["a"]}, {UID_FILTER: ["a"]}]


async def test_readers_of_one_moment_share_one_describe() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a"), _eni("eni-b1", "b")])
    view = _view(ec2)
    view.changed(uid="a")
    view.changed(uid="b")
    a, b = await asyncio.gather(view.enis("a"), view.enis("b"))
    assert (_ids(a), _ids(b)) == (["eni-a1"], ["eni-b1"])
    assert ec2.eni_describes == [{UID_FILTER: ["a", "b"]}]


async def test_a_failed_refresh_fails_its_waiters_and_the_next_ones_describe_again() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    ec2.fail = True
    view = _view(ec2)
    view.refresh()
    with pytest.raises(errors.Throttled):
        await view.enis("a")
    ec2.fail = False
    assert _ids(await view.enis("a")) == ["eni-a1"]
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}]


async def test_stop_cancels_a_refresh_in_flight() -> None:
    ec2 = FakeEC2([])
    ec2.gate = asyncio.Event()
    view = _view(ec2)
    view.refresh()
    await asyncio.sleep(0)
    view.stop()
    ec2.gate = None
    assert await view.enis("a") == []  # no refresh left to join: its own describe
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}]


async def test_the_sweep_joins_a_refresh_running_and_reconciles_share_its_own() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a"), _eni("eni-x", "")])
    view = _view(ec2)
    view.refresh()
    assert _ids(await view.every()) == ["eni-a1", "eni-x"]  # joined the resync's
    assert _ids(await view.every()) == ["eni-a1", "eni-x"]  # none running: its own
    assert _ids(await view.enis("a")) == ["eni-a1"]  # from the sweep's snapshot
    assert ec2.eni_describes == [MANAGED, MANAGED]


async def test_a_newer_snapshot_supersedes_the_kept_answers() -> None:
    ec2 = FakeEC2([_eni("eni-a1", "a")])
    view = _view(ec2)
    view.changed(uid="a")
    assert _ids(await view.enis("a")) == ["eni-a1"]
    ec2.enis = [_eni("eni-a2", "a")]  # replaced by hand: no event
    await view.refresh()
    assert _ids(await view.enis("a")) == ["eni-a2"]
    assert ec2.eni_describes == [{UID_FILTER: ["a"]}, MANAGED]


async def test_the_go_controllers_enis_come_from_the_snapshot_by_name() -> None:
    legacy = network_interface(
        "eni-go",
        tags={tags.NODEENI_KEY: "multus", tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE},
    )
    ec2 = FakeEC2([legacy, _eni("eni-a1", "a")])
    view = _view(ec2)
    assert await view.legacy("multus") == []  # no snapshot, none coming
    view.refresh()
    assert _ids(await view.legacy("multus")) == ["eni-go"]  # waits for the first one
    assert await view.legacy("other") == []


async def test_instance_facts_are_kept_until_changed_and_dropped_when_gone() -> None:
    ec2 = FakeEC2([], instances=["i-1", "i-2"])
    view = _view(ec2)
    assert sorted(await view.instances(["i-1", "i-2"])) == ["i-1", "i-2"]
    assert sorted(await view.instances(["i-1", "i-2"])) == ["i-1", "i-2"]  # kept
    view.changed(instance="i-1")  # we attached to it
    ec2.instances.discard("i-1")  # and it went
    assert sorted(await view.instances(["i-1", "i-2"])) == ["i-2"]
    view.forget(instance="i-2")  # its Node went
    assert sorted(await view.instances(["i-2"])) == ["i-2"]
    assert ec2.instance_describes == [["i-1", "i-2"], ["i-1"], ["i-2"]]


async def test_readers_of_the_same_instances_share_a_describe_started_after_their_changes() -> None:
    ec2 = FakeEC2([], instances=["i-1", "i-2"])
    ec2.instance_gate = asyncio.Event()
    view = _view(ec2)
    first = asyncio.create_task(view.instances(["i-1", "i-2"]))
    await asyncio.sleep(0.01)  # its describe is in flight
    shared = asyncio.create_task(view.instances(["i-2"]))  # nothing changed: joins it
    view.changed(instance="i-1")  # after that describe started
    own = asyncio.create_task(view.instances(["i-1"]))
    await asyncio.sleep(0.01)
    ec2.instance_gate.set()
    assert sorted(await first) == ["i-1", "i-2"]
    assert sorted(await shared) == ["i-2"]
    assert sorted(await own) == ["i-1"]
    assert ec2.instance_describes == [["i-1", "i-2"], ["i-1"]]

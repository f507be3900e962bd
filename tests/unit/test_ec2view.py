"""Unit tests for the EC2 view shared between reconciles (ec2view.py): one
freshness rule, an answer serves until its key is marked changed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from eni_controller.aws import errors
from eni_controller.aws.resources import NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from eni_controller.reconcile.ec2view import EC2View
from tests.harness.memory_ec2 import ONE_ATTEMPT, RulesMemoryEC2, unpaced_client
from tests.harness.recording_ec2 import filters

UID_FILTER = f"tag:{tags.NODEENI_UID_KEY}"
MANAGED = {f"tag:{tags.MANAGED_BY_KEY}": [tags.MANAGED_BY_VALUE]}
MANAGED_TAG = {tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE}
THROTTLED = "RequestLimitExceeded"


class HeldEC2(RulesMemoryEC2):
    """The in-memory EC2 (through the real client: `refuse` fails a describe)
    noting what each describe asked; while `gate` (ENIs) or `instance_gate`
    (instances) is an unset Event, those describes wait for it."""

    def __init__(self, instances: Sequence[str] = ()) -> None:
        super().__init__(instances)
        self.eni_describes: list[dict[str, list[str]]] = []
        self.instance_describes: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.instance_gate: asyncio.Event | None = None

    def put_for(self, eni_id: str, uid: str) -> None:
        """An ENI of the NodeENI `uid`, made outside the view."""
        self.put(eni_id, eni_tags={tags.NODEENI_UID_KEY: uid, **MANAGED_TAG})

    async def describe_network_interfaces(self, **params: Any) -> dict[str, Any]:
        self.eni_describes.append(filters(params))
        if self.gate is not None:
            await self.gate.wait()
        return await super().describe_network_interfaces(**params)

    async def describe_instances(self, **params: Any) -> dict[str, Any]:
        self.instance_describes.append(filters(params)["instance-id"])
        if self.instance_gate is not None:
            await self.instance_gate.wait()
        return await super().describe_instances(**params)


def _ec2(uids: Mapping[str, str] | None = None, instances: Sequence[str] = ()) -> HeldEC2:
    """EC2 holding an ENI of each NodeENI uid in `uids` (ENI id -> uid) and `instances`."""
    ec2 = HeldEC2(instances)
    for eni_id, uid in (uids or {}).items():
        ec2.put_for(eni_id, uid)
    return ec2


def _ids(enis: Sequence[NetworkInterface]) -> list[str]:
    return sorted(e.eni_id for e in enis)


def _view(ec2: HeldEC2) -> EC2View:
    return EC2View(unpaced_client(ec2, metrics=Metrics(), retry=ONE_ATTEMPT), vpc_id="vpc-1")


async def test_one_refresh_serves_every_uid_until_it_changes() -> None:
    ec2 = _ec2({"eni-a1": "a", "eni-a2": "a", "eni-b1": "b"})
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
    ec2 = _ec2({"eni-a1": "a", "eni-b1": "b"})
    view = _view(ec2)
    await view.refresh()
    view.changed(uid="a")  # an event enqueued it, or we acted on it
    ec2.put_for("eni-a2", "a")
    assert _ids(await view.enis("a")) == ["eni-a1", "eni-a2"]
    assert _ids(await view.enis("a")) == ["eni-a1", "eni-a2"]  # its own answer, kept
    assert _ids(await view.enis("b")) == ["eni-b1"]  # b did not change: the snapshot
    view.changed(uid="a")
    assert _ids(await view.enis("a")) == ["eni-a1", "eni-a2"]
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}, {UID_FILTER: ["a"]}]


async def test_a_resync_after_a_uids_own_answer_serves_the_newer_snapshot() -> None:
    ec2 = _ec2({"eni-a1": "a"})
    view = _view(ec2)
    view.changed(uid="a")
    assert _ids(await view.enis("a")) == ["eni-a1"]  # a's own answer, kept
    await ec2.delete_network_interface(NetworkInterfaceId="eni-a1")  # nothing tells us
    ec2.gate = asyncio.Event()
    view.refresh()  # the resync
    reader = asyncio.create_task(view.enis("a"))  # while the refresh runs: waits for it
    await asyncio.sleep(0.01)
    assert not reader.done()
    ec2.gate.set()
    assert await reader == []
    assert await view.enis("a") == []  # and after it, the snapshot again
    assert ec2.eni_describes == [{UID_FILTER: ["a"]}, MANAGED]


async def test_an_eni_we_deleted_is_left_out_of_every_older_answer() -> None:
    ec2 = _ec2({"eni-a1": "a", "eni-a2": "a"})
    view = _view(ec2)
    await view.refresh()  # a snapshot listing both
    await ec2.delete_network_interface(NetworkInterfaceId="eni-a1")  # the cleanup pool
    view.deleted("eni-a1")  # ...and its hook, before it tells the NodeENI's owner
    assert _ids(await view.enis("a")) == ["eni-a2"]  # the snapshot, without it
    assert _ids(await view.every()) == ["eni-a2"]
    view.changed(uid="a")
    assert _ids(await view.enis("a")) == ["eni-a2"]
    assert ec2.eni_describes == [MANAGED, MANAGED, {UID_FILTER: ["a"]}]


async def test_a_change_while_a_refresh_runs_is_not_served_by_that_refresh() -> None:
    ec2 = _ec2({"eni-a1": "a"})
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
    ec2 = _ec2({"eni-a1": "a"})
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
    ec2 = _ec2({"eni-a1": "a", "eni-b1": "b"})
    view = _view(ec2)
    view.changed(uid="a")
    view.changed(uid="b")
    a, b = await asyncio.gather(view.enis("a"), view.enis("b"))
    assert (_ids(a), _ids(b)) == (["eni-a1"], ["eni-b1"])
    assert ec2.eni_describes == [{UID_FILTER: ["a", "b"]}]


async def test_a_failed_refresh_fails_its_waiters_and_the_next_ones_describe_again() -> None:
    ec2 = _ec2({"eni-a1": "a"})
    ec2.refuse["DescribeNetworkInterfaces"] = THROTTLED
    view = _view(ec2)
    view.refresh()
    with pytest.raises(errors.Throttled):
        await view.enis("a")
    del ec2.refuse["DescribeNetworkInterfaces"]
    assert _ids(await view.enis("a")) == ["eni-a1"]
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}]


async def test_stop_cancels_a_refresh_in_flight() -> None:
    ec2 = _ec2()
    ec2.gate = asyncio.Event()
    view = _view(ec2)
    view.refresh()
    await asyncio.sleep(0)
    view.stop()
    ec2.gate = None
    assert await view.enis("a") == []  # no refresh left to join: its own describe
    assert ec2.eni_describes == [MANAGED, {UID_FILTER: ["a"]}]


async def test_the_sweep_joins_a_refresh_running_and_reconciles_share_its_own() -> None:
    ec2 = _ec2({"eni-a1": "a", "eni-x": ""})
    view = _view(ec2)
    view.refresh()
    assert _ids(await view.every()) == ["eni-a1", "eni-x"]  # joined the resync's
    assert _ids(await view.every()) == ["eni-a1", "eni-x"]  # none running: its own
    assert _ids(await view.enis("a")) == ["eni-a1"]  # from the sweep's snapshot
    assert ec2.eni_describes == [MANAGED, MANAGED]


async def test_a_newer_snapshot_supersedes_the_kept_answers() -> None:
    ec2 = _ec2({"eni-a1": "a"})
    view = _view(ec2)
    view.changed(uid="a")
    assert _ids(await view.enis("a")) == ["eni-a1"]
    await ec2.delete_network_interface(NetworkInterfaceId="eni-a1")  # replaced: no event
    ec2.put_for("eni-a2", "a")
    await view.refresh()
    assert _ids(await view.enis("a")) == ["eni-a2"]
    assert ec2.eni_describes == [{UID_FILTER: ["a"]}, MANAGED]


async def test_the_go_controllers_enis_come_from_the_snapshot_by_name() -> None:
    ec2 = _ec2({"eni-a1": "a"})
    ec2.put("eni-go", eni_tags={tags.NODEENI_KEY: "multus", **MANAGED_TAG})  # no uid
    view = _view(ec2)
    assert await view.legacy("multus") == []  # no snapshot, none coming
    view.refresh()
    assert _ids(await view.legacy("multus")) == ["eni-go"]  # waits for the first one
    assert await view.legacy("other") == []


async def test_instance_facts_are_kept_until_changed_and_dropped_when_gone() -> None:
    ec2 = _ec2(instances=["i-1", "i-2"])
    view = _view(ec2)
    assert sorted(await view.instances(["i-1", "i-2"])) == ["i-1", "i-2"]
    assert sorted(await view.instances(["i-1", "i-2"])) == ["i-1", "i-2"]  # kept
    view.changed(instance="i-1")  # we attached to it
    del ec2.instances["i-1"]  # and it went
    assert sorted(await view.instances(["i-1", "i-2"])) == ["i-2"]
    view.forget(instance="i-2")  # its Node went
    assert sorted(await view.instances(["i-2"])) == ["i-2"]
    assert ec2.instance_describes == [["i-1", "i-2"], ["i-1"], ["i-2"]]


async def test_readers_of_the_same_instances_share_a_describe_started_after_their_changes() -> None:
    ec2 = _ec2(instances=["i-1", "i-2"])
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

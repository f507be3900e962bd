"""Unit tests of the Reconciler through its one public method, `reconcile(name)`,
over in-memory stores and EC2 (tests/harness/reconciling.py): what it creates,
keeps, hands to cleanup and writes, for each state and for the round trips
(label off and on, subnet out and in, delete), and what a repeat costs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from eni_controller import model
from eni_controller.reconcile import tags
from eni_controller.reconcile.reconciler import LOOKUP_REQUEUE_SECONDS
from tests.harness.memory_ec2 import INSTANCE_TYPE, SUBNET
from tests.harness.reconciling import CLUSTER, ReconcileWorld

SELECTOR = {"nodeSelector": {"multus": "on"}}


def _attached(world: ReconcileWorld, name: str) -> dict[str, int]:
    """node -> device index of each attached entry in the NodeENI's status."""
    return {
        a["nodeID"]: a["deviceIndex"]
        for a in world.status(name).get("attachments", [])
        if a["status"] == "attached"
    }


def _condition(world: ReconcileWorld, name: str, kind: str) -> dict[str, str]:
    (found,) = (c for c in world.status(name)["conditions"] if c["type"] == kind)
    return dict(found)


async def _until(check: Callable[[], bool], *, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110  # the cleanup pool has no event to wait on
            await asyncio.sleep(0.01)


async def test_a_new_nodeeni_gets_its_finalizer_then_one_eni_per_matching_node() -> None:
    world = ReconcileWorld()
    for index in (0, 1):
        world.add_node(index, multus="on")
    world.add_node(2)  # not selected
    world.add_nodeeni("multus", **SELECTOR)

    result = await world.reconcile("multus")

    raw = world.nodeenis.get("multus")
    assert raw is not None
    assert raw["metadata"]["finalizers"] == [model.FINALIZER]
    assert world.writer.writes[0][1] == {"metadata": {"finalizers": [model.FINALIZER]}}
    assert _attached(world, "multus") == {"node-0": 1, "node-1": 1}
    assert _condition(world, "multus", "Ready")["status"] == "True"
    assert world.mutating_calls() == {
        "CreateNetworkInterface": 2,
        "AttachNetworkInterface": 2,
        "ModifyNetworkInterfaceAttribute": 2,
    }
    cluster_tag = {"Key": f"{tags.CLUSTER_TAG_PREFIX}{CLUSTER}", "Value": "owned"}
    assert all(cluster_tag in eni["TagSet"] for eni in world.ec2.enis.values())
    assert world.events.reasons().count("ENIAttached") == 2
    assert result is None


async def test_a_repeat_at_rest_makes_no_ec2_call_and_no_write() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    assert await world.reconcile("multus") is None
    calls, writes = dict(world.ec2.calls), len(world.writer.writes)

    for _ in range(2):
        await world.view.refresh()  # a resync: one describe of every managed ENI
        assert await world.reconcile("multus") is None
    assert await world.reconcile("multus") is None  # and between resyncs, none

    described = {a: n - calls.get(a, 0) for a, n in world.ec2.calls.items()}
    assert {a: n for a, n in described.items() if n} == {"DescribeNetworkInterfaces": 2}
    assert len(world.writer.writes) == writes


async def test_our_own_attaches_leave_no_instance_to_describe_again() -> None:
    # an attach's answer names the index it took: the kept facts show it taken, and
    # neither the next reconcile nor a resync at rest describes the instance for it
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    instances = world.ec2.calls["DescribeInstances"]
    for _ in range(2):  # the next reconcile, and a resync
        assert await world.reconcile("multus") is None
        await world.view.refresh()
    assert world.ec2.calls["DescribeInstances"] == instances
    (instance_id,) = world.instance_ids[:1]
    facts = await world.view.instances([instance_id])
    assert facts[instance_id].occupied_device_indexes == {0, 1}
    # and a second NodeENI on the node goes one index up, from those kept facts
    world.add_nodeeni("second", **SELECTOR)
    await world.reconcile("second")
    assert _attached(world, "second") == {"node-0": 2}


async def test_label_off_hands_the_eni_to_cleanup_and_label_on_makes_a_new_one() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    (first,) = world.ec2.enis

    async with world.cleaning():
        world.label("node-0", multus=None)
        world.view.changed(uid="uid-1")  # routing does this for the node's event
        await world.reconcile("multus")
        assert world.cleanup.pending(first)
        await _until(lambda: first not in world.ec2.enis)
        await world.reconcile("multus")  # the pool's on_done enqueues it
        assert _attached(world, "multus") == {}
        assert world.status("multus")["desiredCount"] == 0

        world.label("node-0", multus="on")
        world.view.changed(uid="uid-1")
        await world.reconcile("multus")

    (second,) = world.ec2.enis
    assert second != first
    assert _attached(world, "multus") == {"node-0": 1}
    assert world.mutating_calls()["CreateNetworkInterface"] == 2
    assert world.mutating_calls()["DeleteNetworkInterface"] == 1


async def test_label_off_and_on_before_cleanup_ran_keeps_the_same_eni() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    (first,) = world.ec2.enis

    world.label("node-0", multus=None)
    world.view.changed(uid="uid-1")
    await world.reconcile("multus")  # handed to cleanup; the pool is not running
    assert world.cleanup.pending(first)
    world.label("node-0", multus="on")
    world.view.changed(uid="uid-1")
    await world.reconcile("multus")

    assert not world.cleanup.pending(first)  # called off: wanted again
    assert list(world.ec2.enis) == [first]
    assert _attached(world, "multus") == {"node-0": 1}
    assert "DetachNetworkInterface" not in world.mutating_calls()


async def test_deletion_cleans_up_then_releases_the_finalizer() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_node(1, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")

    async with world.cleaning():
        world.delete("multus")
        world.view.changed(uid="uid-1")
        first = await world.reconcile("multus")
        raw = world.nodeenis.get("multus")
        assert raw is not None
        assert model.CLEANUP_START_ANNOTATION in raw["metadata"]["annotations"]
        assert first is not None
        await _until(lambda: not world.ec2.enis)
        assert await world.reconcile("multus") is None

    assert world.nodeenis.get("multus") is None  # finalizer gone: the server let it go
    assert world.mutating_calls()["DeleteNetworkInterface"] == 2


async def test_a_deletion_starts_its_cleanup_from_the_kept_answer_at_once() -> None:
    # routing marks nothing changed for a deletion: the first pass hands the ENIs
    # the view kept to the pool without a describe; the finalizer still waits for
    # a describe made after the pool's changes (the second deletion: the repeat)
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_node(1, multus="on")
    for name in ("multus", "again"):
        world.add_nodeeni(name, **SELECTOR)
        await world.reconcile(name)
        before = world.describes()
        world.delete(name)
        first = await world.reconcile(name)
        assert world.describes() == before
        assert first is not None
        assert world.cleanup.pending_for(name) == 2
        async with world.cleaning():
            await _until(lambda: not world.ec2.enis)
            described = world.describes()
            assert await world.reconcile(name) is None
            assert world.describes() == described + 1
        assert world.nodeenis.get(name) is None
    assert world.mutating_calls()["DeleteNetworkInterface"] == 4


async def test_a_deletion_the_kept_answer_shows_nothing_for_describes_before_letting_go() -> None:
    # the view kept "no ENIs" for this uid; one tagged with it appeared since (made by
    # hand, or by a run the view never heard of): the finalizer waits for it
    world = ReconcileWorld()
    world.add_node(0)  # not selected: the NodeENI has no ENI of its own
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    raw = world.nodeenis.get("multus")
    assert raw is not None
    uid = raw["metadata"]["uid"]
    made = {tags.NODEENI_UID_KEY: uid, tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE}
    world.ec2.put("eni-late", eni_tags={**made, f"{tags.CLUSTER_TAG_PREFIX}{CLUSTER}": "owned"})
    world.delete("multus")

    first = await world.reconcile("multus")

    assert first is not None
    assert world.cleanup.pending("eni-late")
    async with world.cleaning():
        await _until(lambda: not world.ec2.enis)
        assert await world.reconcile("multus") is None
    assert world.nodeenis.get("multus") is None


async def test_an_invalid_spec_is_reported_once_and_touches_no_ec2() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", deviceIndex=0, **SELECTOR)

    assert await world.reconcile("multus") is None
    assert await world.reconcile("multus") is None

    ready = _condition(world, "multus", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "deviceIndex" in ready["message"]
    assert world.events.reasons() == ["InvalidSpec"]  # not again for the same problem
    assert world.ec2.calls == {}


async def test_an_unknown_subnet_is_a_condition_and_a_slow_retry_then_heals() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", subnetIDs=["subnet-0b000002"], **SELECTOR)

    result = await world.reconcile("multus")

    assert result == LOOKUP_REQUEUE_SECONDS
    ready = _condition(world, "multus", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SubnetNotFound")
    assert world.mutating_calls() == {}

    world.edit("multus", subnetIDs=[SUBNET["SubnetId"]])  # fixed by the user
    world.view.changed(uid="uid-1")
    await world.reconcile("multus")
    assert _attached(world, "multus") == {"node-0": 1}
    assert _condition(world, "multus", "Ready")["status"] == "True"


async def test_an_eni_deleted_by_hand_is_replaced_once() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    (first,) = world.ec2.enis

    await world.ec2.delete_network_interface(NetworkInterfaceId=first)
    await world.view.refresh()  # noticed at the next resync
    await world.reconcile("multus")
    await world.reconcile("multus")

    (second,) = world.ec2.enis
    assert second != first
    assert _attached(world, "multus") == {"node-0": 1}
    assert world.mutating_calls()["CreateNetworkInterface"] == 2


async def test_an_eni_deleted_by_hand_at_rest_is_replaced_at_its_own_index() -> None:
    # at rest, the instance's facts are kept; a delete by hand raises no event, so
    # they still show the index taken: the replacement must not go one index up
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    for round_ in range(2):  # the round trip, and its repeat
        await world.reconcile("multus")
        assert await world.reconcile("multus") is None  # at rest
        (victim,) = world.ec2.enis
        await world.ec2.delete_network_interface(NetworkInterfaceId=victim)
        await world.view.refresh()  # the next resync notices
        await world.reconcile("multus")
        (replacement,) = world.ec2.enis
        assert replacement != victim
        assert _attached(world, "multus") == {"node-0": 1}
        assert world.mutating_calls()["CreateNetworkInterface"] == 2 + round_


async def test_an_eni_detached_by_hand_at_rest_is_attached_again_at_its_own_index() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    (eni_id,) = world.ec2.enis
    for _ in range(2):  # the round trip, and its repeat
        assert await world.reconcile("multus") is None  # at rest
        attachment = world.ec2.enis[eni_id]["Attachment"]["AttachmentId"]
        await world.ec2.detach_network_interface(AttachmentId=attachment)
        await world.view.refresh()
        await world.reconcile("multus")
        assert list(world.ec2.enis) == [eni_id]
        assert world.ec2.enis[eni_id]["Attachment"]["DeviceIndex"] == 1
        assert _attached(world, "multus") == {"node-0": 1}
    assert world.mutating_calls()["CreateNetworkInterface"] == 1


async def test_a_label_flipped_back_during_a_slow_detach_gets_the_same_enis_back() -> None:
    world = ReconcileWorld()
    world.ec2.instance_types[INSTANCE_TYPE] = 2  # the primary and ours: no room for another
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    (eni_id,) = world.ec2.enis
    await world.reconcile("multus")  # settled: the instance's facts are kept from here

    world.label("node-0", multus=None)
    world.view.changed(uid="uid-1")
    await world.reconcile("multus")  # handed to cleanup
    eni = world.ec2.enis[eni_id]
    eni["Attachment"]["Status"] = "detaching"  # the pool's detach, still under way
    world.label("node-0", multus="on")
    world.view.changed(uid="uid-1")
    settling = await world.reconcile("multus")  # the cleanup is called off
    assert not world.cleanup.pending(eni_id)
    assert settling is not None
    assert world.status("multus")["attachments"][0]["status"] == "detaching"

    del eni["Attachment"]  # the detach finishes; no event says so
    eni["Status"] = "available"
    await world.reconcile("multus")  # the requeue

    assert list(world.ec2.enis) == [eni_id]
    assert _attached(world, "multus") == {"node-0": 1}
    assert world.mutating_calls()["AttachNetworkInterface"] == 2
    assert world.mutating_calls()["CreateNetworkInterface"] == 1

"""Device indexes end to end (SPEC "Device index", hard case 7): against the
realism layer's AWS rules and against plain moto (`both_ec2`).

Plain moto refuses no device index, so these tests place the foreign ENI
before the controller describes the instance: the controller must avoid an
index because EC2 shows it taken, not because an attach was refused (that
path is in tests/unit/test_executor_attach.py). The specs ask for
DeleteOnTermination false, attach's own default: no attribute change, which
plain moto would not keep, stands between the attach and Ready.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.harness.controller import (
    AWSEnv,
    condition,
    controller_config,
    is_ready,
    quiet,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, Instance, World, ec2_client
from tests.harness.fleet import enis_of, make_nodes, nodeeni_spec

RESYNC_SECONDS = 0.5


def _attach_foreign_eni(world: World, instance: Instance, *, device_index: int) -> str:
    """An ENI made and attached by software outside the controller (untagged)."""
    ec2 = ec2_client(world.endpoint)
    eni_id: str = ec2.create_network_interface(SubnetId=world.subnet("multus-a-2").id)[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    ec2.attach_network_interface(
        NetworkInterfaceId=eni_id, InstanceId=instance.id, DeviceIndex=device_index
    )
    return eni_id


def _held_indexes(world: World, instance: Instance) -> dict[int, str]:
    """Device index -> ENI id on `instance`, as EC2 has it now."""
    (described,) = ec2_client(world.endpoint).describe_instances(InstanceIds=[instance.id])[
        "Reservations"
    ][0]["Instances"]
    return {
        int(e["Attachment"]["DeviceIndex"]): e["NetworkInterfaceId"]
        for e in described["NetworkInterfaces"]
    }


def _spec(unique: str, world: World, *, device_index: int = 1) -> dict[str, Any]:
    return nodeeni_spec(
        unique, world, "multus-a", deviceIndex=device_index, deleteOnTermination=False
    )


def _mutating_calls(env: AWSEnv) -> int:
    return sum(n for action, n in env.realism.calls().items() if not action.startswith("Describe"))


@pytest.mark.parametrize("wanted", [1, 2])
async def test_a_foreign_eni_at_the_wanted_index_puts_ours_at_the_next_one_up(
    both_ec2: AWSEnv, wanted: int
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = both_ec2
    # c5.xlarge holds 4 ENIs: indexes 0-3
    ((name, instance),) = await make_nodes(
        nodes, ec2_world, unique, az=AZ_A, count=1, instance_type="c5.xlarge"
    )
    foreign = _attach_foreign_eni(ec2_world, instance, device_index=wanted)
    async with running_controller(kube_api, controller_config(ec2_world)):
        await nodeenis.create(unique, _spec(unique, ec2_world, device_index=wanted))
        ready = await wait_for_nodeeni(kube_api, unique, is_ready)
    (attachment,) = ready["status"]["attachments"]
    assert attachment["nodeID"] == name
    assert attachment["deviceIndex"] == wanted + 1
    held = _held_indexes(ec2_world, instance)
    assert held[wanted] == foreign
    assert held[wanted + 1] == attachment["eniID"]
    # nothing of ours below the wanted index: those belong to the VPC CNI
    assert sorted(held) == [0, wanted, wanted + 1]


async def test_no_free_index_from_the_wanted_one_to_the_limit_blocks_without_churn(
    both_ec2: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = both_ec2
    # m5.large holds 3 ENIs (indexes 0-2); index 1 is free but below the wanted 2
    ((_, instance),) = await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    _attach_foreign_eni(ec2_world, instance, device_index=2)
    config = controller_config(ec2_world, reconcile_period_seconds=RESYNC_SECONDS)
    async with running_controller(kube_api, config) as controller:
        created = await nodeenis.create(unique, _spec(unique, ec2_world, device_index=2))
        blocked = await wait_for_nodeeni(
            kube_api,
            unique,
            lambda o: condition(o, "Ready").get("reason") == "AttachmentLimitExceeded",
        )
        # an earlier test's ENIs deleted now would count as this test's calls
        await quiet(controller, unique)
        mutating = _mutating_calls(both_ec2)
        await asyncio.sleep(5 * RESYNC_SECONDS + 0.5)  # five resyncs
        assert _mutating_calls(both_ec2) == mutating
    assert "NoFreeDeviceIndex" in condition(blocked, "Ready")["message"]
    assert blocked["status"].get("attachedCount", 0) == 0
    # one ENI made, left available for the slot: never deleted and made again
    (eni,) = enis_of(ec2_world, created["metadata"]["uid"])
    assert eni["Status"] == "available"
    assert sorted(_held_indexes(ec2_world, instance)) == [0, 2]


async def test_an_eni_of_ours_detached_by_hand_is_attached_again_at_its_index(
    both_ec2: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = both_ec2
    ((_, instance),) = await make_nodes(
        nodes, ec2_world, unique, az=AZ_A, count=1, instance_type="c5.xlarge"
    )
    async with running_controller(kube_api, controller_config(ec2_world)) as controller:
        await nodeenis.create(unique, _spec(unique, ec2_world))
        ready = await wait_for_nodeeni(kube_api, unique, is_ready)
        (before,) = ready["status"]["attachments"]
        assert before["deviceIndex"] == 1
        ec2_client(ec2_world.endpoint).detach_network_interface(
            AttachmentId=before["attachmentID"], Force=True
        )
        # within the reservation window of its index; noticed at the next resync
        controller.resync()
        healed = await wait_for_nodeeni(
            kube_api, unique, lambda o: is_ready(o) and _reattached(o, before)
        )
    (after,) = healed["status"]["attachments"]
    assert after["eniID"] == before["eniID"]
    assert after["deviceIndex"] == 1
    held = _held_indexes(ec2_world, instance)
    assert sorted(held) == [0, 1]
    assert held[1] == before["eniID"]


def _reattached(obj: dict[str, Any], before: dict[str, Any]) -> bool:
    return any(
        a["eniID"] == before["eniID"] and a["attachmentID"] != before["attachmentID"]
        for a in obj["status"].get("attachments") or ()
    )


@pytest.mark.parametrize(("setting", "delete_on_termination"), [(2, True), (3, False)])
async def test_an_omitted_device_index_and_delete_on_termination_are_the_settings(
    aws_env: AWSEnv, setting: int, delete_on_termination: bool
) -> None:
    # one source of truth: the CRD defaults neither field, so DEFAULT_DEVICE_INDEX and
    # DEFAULT_DELETE_ON_TERMINATION decide for a spec that omits them
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    ((_name, instance),) = await make_nodes(
        nodes, ec2_world, unique, az=AZ_A, count=1, instance_type="c5.xlarge"
    )
    config = controller_config(
        ec2_world,
        default_device_index=setting,
        default_delete_on_termination=delete_on_termination,
    )
    async with running_controller(kube_api, config):
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        assert "deviceIndex" not in created["spec"]
        assert "deleteOnTermination" not in created["spec"]
        ready = await wait_for_nodeeni(kube_api, unique, is_ready)
    (attachment,) = ready["status"]["attachments"]
    assert attachment["deviceIndex"] == setting
    assert _held_indexes(ec2_world, instance)[setting] == attachment["eniID"]
    (eni,) = ec2_client(ec2_world.endpoint).describe_network_interfaces(
        NetworkInterfaceIds=[attachment["eniID"]]
    )["NetworkInterfaces"]
    assert eni["Attachment"]["DeviceIndex"] == setting
    assert eni["Attachment"]["DeleteOnTermination"] is delete_on_termination

"""Deletion, leaving nodes and spec changes, end to end, with detachments that
take time (the realism layer's detach latency), through the cleanup pool."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes_asyncio import client

from eni_controller.aws.ratelimit import BucketSpec, RateLimits
from tests.harness.cleanup_ec2 import CleanupCalls
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    read_nodeeni,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, World, create_tagged_eni, ec2_client, launch_instance
from tests.harness.fleet import delete_nodeeni, enis_of, make_nodes, nodeeni_spec, wait_gone
from tests.harness.kube import merge_patch_nodeeni
from tests.harness.waiting import until

_WIDE = BucketSpec(capacity=10_000, refill_per_second=10_000)
UNPACED = RateLimits(describe=_WIDE, mutating=_WIDE)
DELETE_DETACH_LATENCY = 1.0


@pytest.mark.parametrize(
    "per_node",
    [2, pytest.param(5, marks=pytest.mark.slow, id="5-scale")],  # 20 ENIs; 50 in make bench
)
async def test_deleting_a_nodeeni_removes_every_eni_then_the_finalizer_without_blocking(
    aws_env: AWSEnv, per_node: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=10, instance_type="c5.4xlarge")
    subnets = [ec2_world.subnet(s).id for s in ("multus-a", "multus-a-2", "nodes-a")]
    subnets += [_extra_subnet(ec2_world, f"10.0.{30 + i}.0/24") for i in range(1, per_node - 2)]
    subnets = subnets[:per_node]
    config = controller_config(
        ec2_world,
        max_concurrent_eni_cleanup=3,
        ec2_rate_limits=UNPACED,  # no throttling here
    )
    async with running_controller(kube_api, config) as controller:
        calls = CleanupCalls(controller.metrics, monkeypatch)
        spec = {**nodeeni_spec(unique, ec2_world), "subnetIDs": subnets}
        created = await nodeenis.create(unique, spec)
        await wait_for_nodeeni(kube_api, unique, is_ready, within=120)
        uid = created["metadata"]["uid"]
        assert len(enis_of(ec2_world, uid)) == 10 * per_node
        realism.configure(detach_latency=DELETE_DETACH_LATENCY)
        started = time.perf_counter()
        await delete_nodeeni(nodeenis, unique)
        # while the detachments wait, another NodeENI is served: the reconcile
        # workers are free, so it is Ready before the deletion is through
        await nodes.create(
            name=f"{unique}-other",
            instance=launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large"),
            labels={"test": f"{unique}-other"},
        )
        await nodeenis.create(
            f"{unique}-other", nodeeni_spec(f"{unique}-other", ec2_world, "multus-a")
        )
        await wait_for_nodeeni(kube_api, f"{unique}-other", is_ready, within=60)
        still_there = await read_nodeeni(kube_api, unique)
        await wait_gone(kube_api, unique, within=120)
        deleted = time.perf_counter() - started
    assert still_there["metadata"]["deletionTimestamp"]
    assert calls.most == 3  # used, and never more
    assert enis_of(ec2_world, uid) == []
    print(
        f"{10 * per_node} ENIs, detach latency {DELETE_DETACH_LATENCY}s, 3 cleanup workers: "
        f"deleted in {deleted:.1f}s"
    )


async def test_deletion_deletes_enis_made_after_the_views_last_answer(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _, unique = aws_env
    ((name, instance),) = await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    async with running_controller(kube_api, controller_config(ec2_world)) as controller:
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        await wait_for_nodeeni(kube_api, unique, is_ready)
        uid = created["metadata"]["uid"]
        await controller.view.refresh()  # a resync's snapshot, then an ENI it cannot show
        late = create_tagged_eni(
            ec2_world,
            subnet="multus-a-2",
            nodeeni=unique,
            uid=uid,
            node=name,
            instance_id=instance.id,
        )
        assert len(enis_of(ec2_world, uid)) == 2
        in_snapshot = {e.eni_id for e in await controller.view.enis(uid)}
        assert len(in_snapshot) == 1  # nothing told the view
        assert late not in in_snapshot
        await delete_nodeeni(nodeenis, unique)
        await wait_gone(kube_api, unique)
    # the deletion event marked the uid changed: its describe found the late ENI too,
    # and the finalizer went only after a describe made after the last delete
    assert enis_of(ec2_world, uid) == []


def _extra_subnet(world: World, cidr: str) -> str:
    subnet: str = ec2_client(world.endpoint).create_subnet(
        VpcId=world.vpc_id, CidrBlock=cidr, AvailabilityZone=AZ_A
    )["Subnet"]["SubnetId"]
    return subnet


async def test_detach_slower_than_the_timeout_is_retried_until_done(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=2)
    config = controller_config(ec2_world, detachment_timeout_seconds=0.5)
    async with running_controller(kube_api, config):
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        await wait_for_nodeeni(kube_api, unique, is_ready)
        realism.configure(detach_latency=2.0)
        await delete_nodeeni(nodeenis, unique)
        await wait_gone(kube_api, unique, within=60)
    assert enis_of(ec2_world, created["metadata"]["uid"]) == []


async def test_cleanup_timeout_drops_the_finalizer_with_an_event(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    config = controller_config(ec2_world, max_cleanup_duration_seconds=2.0)
    async with running_controller(kube_api, config):
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        await wait_for_nodeeni(kube_api, unique, is_ready)
        realism.configure(
            faults={"rate_5xx": 1.0, "seed": 1, "actions": ["DetachNetworkInterface"]}
        )
        await delete_nodeeni(nodeenis, unique)
        await wait_gone(kube_api, unique, within=30)
        events = await client.CoreV1Api(kube_api).list_namespaced_event(
            "default", field_selector=f"involvedObject.name={unique}"
        )
    assert "CleanupTimeout" in {e.reason for e in events.items}
    # left tagged, for the orphan sweep
    assert len(enis_of(ec2_world, created["metadata"]["uid"])) == 1


@pytest.mark.parametrize("how", ["unlabel", "delete-node", "terminate", "reuse-name"])
async def test_a_leaving_node_loses_exactly_its_enis(
    aws_env: AWSEnv,
    how: str,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    made = await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=2)
    (leaving, instance), (staying, _) = made
    core = client.CoreV1Api(kube_api)
    async with running_controller(kube_api, controller_config(ec2_world)) as controller:
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        uid = created["metadata"]["uid"]
        await wait_for_nodeeni(kube_api, unique, is_ready)
        before = {
            e["TagSet"] and _tag(e, "Node"): e["NetworkInterfaceId"]
            for e in enis_of(ec2_world, uid)
        }
        if how == "unlabel":
            await core.patch_node(leaving, {"metadata": {"labels": {"test": "elsewhere"}}})
        elif how == "delete-node":
            await core.delete_node(leaving)
        elif how == "terminate":
            ec2_client(ec2_world.endpoint).terminate_instances(InstanceIds=[instance.id])
            # a terminated instance is noticed on the next reconcile (the resync)
            controller.resync()
        else:
            await core.delete_node(leaving)
            new = launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large")
            await nodes.create(name=leaving, instance=new, labels={"test": unique})

        def settled() -> bool:
            enis = enis_of(ec2_world, uid)
            return before[leaving] not in {e["NetworkInterfaceId"] for e in enis}

        await until(settled, within=30)
        expected = 2 if how == "reuse-name" else 1
        final = await wait_for_nodeeni(
            kube_api,
            unique,
            lambda o: (
                is_ready(o)
                and o["status"]["attachedCount"] == expected
                and before[leaving] not in {a["eniID"] for a in o["status"]["attachments"]}
            ),
        )
    after = {_tag(e, "Node"): e["NetworkInterfaceId"] for e in enis_of(ec2_world, uid)}
    assert after[staying] == before[staying]
    if how == "reuse-name":
        assert after[leaving] != before[leaving]
    else:
        assert leaving not in after
    assert len(final["status"]["attachments"]) == expected


async def test_removing_a_subnet_removes_only_its_enis(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=2)
    async with running_controller(kube_api, controller_config(ec2_world)):
        created = await nodeenis.create(
            unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-a-2")
        )
        await wait_for_nodeeni(kube_api, unique, is_ready)
        uid = created["metadata"]["uid"]
        kept = {
            e["NetworkInterfaceId"]
            for e in enis_of(ec2_world, uid)
            if e["SubnetId"] == ec2_world.subnet("multus-a").id
        }
        await merge_patch_nodeeni(
            nodeenis.custom, unique, {"spec": {"subnetIDs": [ec2_world.subnet("multus-a").id]}}
        )
        await until(
            lambda: {e["NetworkInterfaceId"] for e in enis_of(ec2_world, uid)} == kept, within=30
        )
        final = await wait_for_nodeeni(
            kube_api, unique, lambda o: is_ready(o) and o["status"]["attachedCount"] == 2
        )
    assert {a["eniID"] for a in final["status"]["attachments"]} == kept


def _tag(eni: dict[str, Any], key: str) -> str:
    return str(next(t["Value"] for t in eni["TagSet"] if t["Key"] == key))


@pytest.mark.parametrize("by_hand", ["detach", "delete"])
async def test_an_eni_detached_or_deleted_by_hand_is_made_whole(
    aws_env: AWSEnv, by_hand: str
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    ((_, instance),) = await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    async with running_controller(kube_api, controller_config(ec2_world)) as controller:
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        uid = created["metadata"]["uid"]
        ready = await wait_for_nodeeni(kube_api, unique, is_ready)
        (attachment,) = ready["status"]["attachments"]
        ec2 = ec2_client(ec2_world.endpoint)
        ec2.detach_network_interface(AttachmentId=attachment["attachmentID"], Force=True)
        if by_hand == "delete":
            ec2.delete_network_interface(NetworkInterfaceId=attachment["eniID"])
        # noticed at the next reconcile: the resync, here at once
        controller.resync()
        healed = await wait_for_nodeeni(
            kube_api,
            unique,
            lambda o: (
                is_ready(o)
                and o["status"]["attachments"][0]["attachmentID"] != attachment["attachmentID"]
            ),
        )
    (now,) = healed["status"]["attachments"]
    enis = enis_of(ec2_world, uid)
    assert len(enis) == 1
    assert enis[0]["Attachment"]["InstanceId"] == instance.id
    if by_hand == "detach":
        assert now["eniID"] == attachment["eniID"]  # ours and still wanted: re-attached
    else:
        assert now["eniID"] != attachment["eniID"]  # gone: dropped from status, replaced

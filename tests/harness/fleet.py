"""What integration tests make and read: Nodes for fresh instances, NodeENI
specs and deletions, and our ENIs as EC2 has them (read directly, not through
the controller)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.reconcile import tags
from tests.harness.ec2world import Instance, World, ec2_client, launch_instance
from tests.harness.kube import NodeFactory

if TYPE_CHECKING:
    from tests.conftest import NodeENIs


def enis_of(world: World, uid: str) -> list[dict[str, Any]]:
    """Every ENI tagged with the NodeENI `uid`, as EC2 has it now."""
    ec2 = ec2_client(world.endpoint)
    found: list[dict[str, Any]] = ec2.describe_network_interfaces(
        Filters=[{"Name": f"tag:{tags.NODEENI_UID_KEY}", "Values": [uid]}]
    )["NetworkInterfaces"]
    return found


async def make_nodes(
    nodes: NodeFactory,
    world: World,
    unique: str,
    *,
    az: str,
    count: int,
    instance_type: str = "m5.large",
) -> list[tuple[str, Instance]]:
    """`count` Nodes labelled `test=<unique>`, each on a fresh instance in `az`."""
    made = []
    for i in range(count):
        instance = launch_instance(world.endpoint, az=az, instance_type=instance_type)
        name = f"{unique}-{az[-1]}{i}"
        await nodes.create(name=name, instance=instance, labels={"test": unique})
        made.append((name, instance))
    return made


def nodeeni_spec(unique: str, world: World, *subnets: str, **extra: Any) -> dict[str, Any]:
    return {
        "nodeSelector": {"test": unique},
        "subnetIDs": [world.subnet(s).id for s in subnets],
        "securityGroupNames": ["multus-sg"],
        **extra,
    }


async def wait_gone(api: client.ApiClient, name: str, *, within: float = 60) -> None:
    """Until the NodeENI `name` is gone from the API server (its finalizer released)."""
    custom = client.CustomObjectsApi(api)
    async with asyncio.timeout(within):
        while True:
            try:
                await custom.get_cluster_custom_object(
                    model.GROUP, model.VERSION, model.PLURAL, name
                )
            except ApiException as err:
                if err.status == HTTPStatus.NOT_FOUND:
                    return
                raise
            await asyncio.sleep(0.2)


async def delete_nodeeni(nodeenis: NodeENIs, name: str) -> None:
    await nodeenis.custom.delete_cluster_custom_object(
        model.GROUP, model.VERSION, model.PLURAL, name
    )


def attached_by_slot(world: World, uid: str) -> dict[tuple[str, str], list[str]]:
    """The NodeENI `uid`'s ENIs attached to the instance their tags name, by
    (node, subnet): one entry of one ENI per wanted slot is the converged state."""
    slots: dict[tuple[str, str], list[str]] = {}
    for eni in enis_of(world, uid):
        tagged = {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}
        attachment = eni.get("Attachment") or {}
        if attachment.get("InstanceId") == tagged.get(tags.INSTANCE_KEY):
            key = (tagged.get(tags.NODE_KEY, ""), eni["SubnetId"])
            slots.setdefault(key, []).append(eni["NetworkInterfaceId"])
    return slots


async def label_node(api: client.ApiClient, name: str, labels: dict[str, str | None]) -> None:
    """Set (or, with None, remove) labels of the Node `name`."""
    await client.CoreV1Api(api).patch_node(name, {"metadata": {"labels": labels}})


def terminate(world: World, instances: Sequence[Instance]) -> None:
    """Terminate a test's instances (blocking), so a long session does not run its
    node subnets out of addresses."""
    if instances:
        ec2_client(world.endpoint).terminate_instances(InstanceIds=[i.id for i in instances])

"""Migration from the Go controller: its ENIs are adopted in place.

The Go controller tags its ENIs NodeENI, Node, SubnetID and managed-by, with
no uid. Installed after it was stopped, with its NodeENIs still there, this
controller must make no second ENI for those slots, keep the same ENIs (index
and IP), complete their tags, and never sweep them. Runs against the realism
layer's AWS rules and against plain moto (`both_ec2`).
"""

from __future__ import annotations

import asyncio

from eni_controller.reconcile import tags
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, create_go_controller_eni, ec2_client, launch_instance
from tests.harness.fleet import make_nodes, nodeeni_spec

GRACE_SECONDS = 1.0


async def test_the_go_controllers_enis_are_adopted_in_place(both_ec2: AWSEnv) -> None:
    env = both_ec2
    made = await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=2)
    go_enis = {
        create_go_controller_eni(
            env.world,
            subnet="multus-a",
            nodeeni=env.unique,
            node=name,
            instance_id=instance.id,
            device_index=1,
        ): (name, instance.id)
        for name, instance in made
    }
    # same NodeENI name, but on an instance that is no node of this cluster (another
    # cluster in the account): never taken, never detached
    stranger = launch_instance(env.world.endpoint, az=AZ_A, instance_type="m5.large")
    foreign = create_go_controller_eni(
        env.world,
        subnet="multus-a",
        nodeeni=env.unique,
        node=f"{env.unique}-elsewhere",
        instance_id=stranger.id,
        device_index=1,
    )
    created = await env.nodeenis.create(
        env.unique, nodeeni_spec(env.unique, env.world, "multus-a", deleteOnTermination=False)
    )
    uid = created["metadata"]["uid"]
    creates = env.realism.calls().get("CreateNetworkInterface", 0)
    config = controller_config(
        env.world,
        cluster_name=env.unique,
        orphan_sweep_interval_seconds=0.5,
        orphan_grace_period_seconds=GRACE_SECONDS,
    )
    async with running_controller(env.api, config):
        ready = await wait_for_nodeeni(
            env.api, env.unique, lambda o: is_ready(o) and o["status"]["attachedCount"] == 2
        )
        await asyncio.sleep(GRACE_SECONDS * 4)  # several sweeps past the grace
    assert env.realism.calls().get("CreateNetworkInterface", 0) == creates
    assert {a["eniID"] for a in ready["status"]["attachments"]} == set(go_enis)
    assert {a["deviceIndex"] for a in ready["status"]["attachments"]} == {1}
    found = ec2_client(env.world.endpoint).describe_network_interfaces(
        NetworkInterfaceIds=list(go_enis)
    )["NetworkInterfaces"]
    assert len(found) == 2  # none swept
    for eni in found:
        node, instance_id = go_enis[eni["NetworkInterfaceId"]]
        assert eni["Attachment"]["InstanceId"] == instance_id
        assert eni["Attachment"]["DeviceIndex"] == 1
        tagged = {t["Key"]: t["Value"] for t in eni["TagSet"]}
        assert tagged[tags.NODEENI_UID_KEY] == uid
        assert tagged[tags.INSTANCE_KEY] == instance_id
        assert tagged[f"{tags.CLUSTER_TAG_PREFIX}{env.unique}"] == "owned"
        assert tagged[tags.NODE_KEY] == node
    (untouched,) = ec2_client(env.world.endpoint).describe_network_interfaces(
        NetworkInterfaceIds=[foreign]
    )["NetworkInterfaces"]
    assert untouched["Attachment"]["InstanceId"] == stranger.id
    assert tags.NODEENI_UID_KEY not in {t["Key"] for t in untouched["TagSet"]}

"""The orphan sweep against the real moto server: what it reclaims, and what
it must never touch."""

from __future__ import annotations

import asyncio
import uuid

from eni_controller.aws.ec2 import connect_ec2, eni_tag_specifications
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from eni_controller.reconcile.cleanup import CleanupPool
from eni_controller.reconcile.ec2view import EC2View
from eni_controller.reconcile.sweep import OrphanSweep
from tests.harness.clock import ManualClock
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, World, ec2_client, launch_instance
from tests.harness.fleet import delete_nodeeni, enis_of, make_nodes, nodeeni_spec, wait_gone
from tests.harness.identity import known_identity
from tests.harness.realism.control import RealismControl
from tests.harness.waiting import until


def _eni(
    world: World, *, uid: str | None, cluster: str | None = None, attach_to: str | None = None
) -> str:
    """An ENI in `multus-a`: ours by tag (`uid`, managed-by, `cluster`'s tag) or
    someone else's (no `uid`); attached at index 1 to `attach_to` if given."""
    extra = (
        {tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE, tags.NODEENI_UID_KEY: uid}
        if uid is not None
        else {"Purpose": "someone else's"}
    )
    if cluster is not None:
        extra[f"{tags.CLUSTER_TAG_PREFIX}{cluster}"] = "owned"
    eni: str = ec2_client(world.endpoint).create_network_interface(
        SubnetId=world.subnet("multus-a").id,
        TagSpecifications=eni_tag_specifications(extra),
    )["NetworkInterface"]["NetworkInterfaceId"]
    if attach_to is not None:
        ec2_client(world.endpoint).attach_network_interface(
            NetworkInterfaceId=eni, InstanceId=attach_to, DeviceIndex=1
        )
    return eni


async def test_sweep_reclaims_unclaimed_enis_after_the_grace_period_only(
    ec2_world: World, realism: RealismControl
) -> None:
    cluster = f"c{uuid.uuid4().hex[:12]}"
    claimed_uid = str(uuid.uuid4())
    orphan = _eni(ec2_world, uid=str(uuid.uuid4()), cluster=cluster)
    claimed = _eni(ec2_world, uid=claimed_uid, cluster=cluster)
    untagged = _eni(ec2_world, uid=None)
    clock = ManualClock()
    metrics = Metrics()
    async with connect_ec2(controller_config(ec2_world), metrics=metrics) as ec2:
        pool = CleanupPool(
            ec2, workers=1, detach_timeout=5, on_done=lambda _owner: None, metrics=metrics
        )
        sweep = OrphanSweep(
            EC2View(ec2, vpc_id=None),
            pool,
            identity=known_identity(name=cluster, vpc_id=ec2_world.vpc_id),
            claimed_uids=lambda: [claimed_uid],
            claimed_eni_ids=list,
            node_instance_ids=list,
            grace_seconds=60,
            metrics=metrics,
            clock=clock,
        )
        reclaimed_now = await sweep.sweep()
        clock.advance(61)
        before = realism.calls().get("DescribeNetworkInterfaces", 0)
        reclaimed_later = await sweep.sweep()
        describes = realism.calls()["DescribeNetworkInterfaces"] - before
        runner = asyncio.create_task(pool.run())
        await until(lambda: orphan not in _ids(ec2_world), within=30)
        runner.cancel()
    assert orphan not in reclaimed_now  # fresh: inside the grace window
    assert orphan in reclaimed_later
    assert claimed not in reclaimed_later
    assert untagged not in reclaimed_later
    assert {claimed, untagged} <= _ids(ec2_world)
    assert describes == 1  # one filtered describe per sweep, not one per ENI
    assert metrics.registry.get_sample_value("eni_controller_orphan_sweeps_total") == 2
    reclaimed_metric = metrics.registry.get_sample_value(
        "eni_controller_orphan_enis_reclaimed_total"
    )
    assert reclaimed_metric is not None
    assert reclaimed_metric >= 1


async def test_sweep_reclaims_only_enis_of_its_own_cluster(ec2_world: World) -> None:
    # another cluster's NodeENIs are unknown here: its ENIs look unclaimed
    ours = _eni(ec2_world, uid=str(uuid.uuid4()), cluster="blue")
    other_cluster = _eni(ec2_world, uid=str(uuid.uuid4()), cluster="green")
    unnamed_cluster = _eni(ec2_world, uid=str(uuid.uuid4()))
    metrics = Metrics()
    async with connect_ec2(controller_config(ec2_world), metrics=metrics) as ec2:
        pool = CleanupPool(
            ec2, workers=1, detach_timeout=5, on_done=lambda _owner: None, metrics=metrics
        )
        blue, unnamed = (
            OrphanSweep(
                EC2View(ec2, vpc_id=None),
                pool,
                identity=known_identity(name=name, vpc_id=ec2_world.vpc_id),
                claimed_uids=list,
                claimed_eni_ids=list,
                node_instance_ids=list,
                grace_seconds=0,
                metrics=metrics,
            )
            for name in ("blue", None)
        )
        by_blue, by_unnamed = await blue.sweep(), await unnamed.sweep()
    assert ours in by_blue
    assert other_cluster not in by_blue + by_unnamed
    # without a cluster identity nothing is reclaimed, not even ENIs with no cluster tag
    assert by_unnamed == []
    assert unnamed_cluster not in by_blue
    assert ours not in by_unnamed


def _ids(world: World) -> set[str]:
    return {
        e["NetworkInterfaceId"]
        for e in ec2_client(world.endpoint).describe_network_interfaces()["NetworkInterfaces"]
    }


async def test_leftovers_of_a_cleanup_timeout_are_swept_once_ec2_recovers(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    config = controller_config(
        ec2_world,
        cluster_name=unique,  # the sweep reclaims only ENIs tagged for a known cluster
        max_cleanup_duration_seconds=2.0,
        orphan_sweep_interval_seconds=0.5,
        orphan_grace_period_seconds=1.0,
    )
    async with running_controller(kube_api, config):
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        uid = created["metadata"]["uid"]
        await wait_for_nodeeni(kube_api, unique, is_ready)
        realism.configure(
            faults={"rate_5xx": 1.0, "seed": 1, "actions": ["DeleteNetworkInterface"]}
        )
        await delete_nodeeni(nodeenis, unique)
        await wait_gone(kube_api, unique, within=30)
        assert len(enis_of(ec2_world, uid)) == 1  # left behind, still tagged
        realism.configure(faults=None)
        await until(lambda: enis_of(ec2_world, uid) == [], within=30)


def _attachment_of(world: World, eni_id: str) -> str | None:
    """The instance `eni_id` is attached to (None: detached); raises if it is gone."""
    (eni,) = ec2_client(world.endpoint).describe_network_interfaces(NetworkInterfaceIds=[eni_id])[
        "NetworkInterfaces"
    ]
    instance: str | None = (eni.get("Attachment") or {}).get("InstanceId")
    return instance


SWEEP_INTERVAL = 0.3
GRACE = 1.0


async def test_two_clusters_in_one_account_each_reclaim_only_their_own_orphans(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, _nodeenis, ec2_world, _realism, unique = aws_env
    ((_node, node_instance),) = await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    # an instance that is no node of ours (another cluster's, or no cluster's)
    stranger = launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large")
    stranger_too = launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large")
    blue, green = f"{unique}-blue", f"{unique}-green"
    orphans = {
        blue: [
            _eni(ec2_world, uid=str(uuid.uuid4()), cluster=blue),
            _eni(ec2_world, uid=str(uuid.uuid4()), cluster=blue, attach_to=node_instance.id),
        ],
        green: [_eni(ec2_world, uid=str(uuid.uuid4()), cluster=green)],
    }
    # blue's tag and unclaimed, but on an instance that is no node: never force-detached
    blue_on_stranger = _eni(ec2_world, uid=str(uuid.uuid4()), cluster=blue, attach_to=stranger.id)
    # managed-by and no cluster tag (a controller left at the default, the Go controller)
    no_cluster = [
        _eni(ec2_world, uid=str(uuid.uuid4()), attach_to=stranger_too.id),
        _eni(ec2_world, uid=str(uuid.uuid4())),
    ]
    configs = [
        controller_config(
            ec2_world,
            cluster_name=name,
            orphan_sweep_interval_seconds=SWEEP_INTERVAL,
            orphan_grace_period_seconds=GRACE,
        )
        for name in (blue, green)
    ]
    metrics = {blue: Metrics(), green: Metrics()}
    async with (
        running_controller(kube_api, configs[0], metrics=metrics[blue]),
        running_controller(kube_api, configs[1], metrics=metrics[green]),
    ):
        every_orphan = orphans[blue] + orphans[green]
        await until(lambda: not set(every_orphan) & _ids(ec2_world), within=30)
        await asyncio.sleep(GRACE + 4 * SWEEP_INTERVAL)  # several sweeps past the grace
        left = _ids(ec2_world)
        attached = {e: _attachment_of(ec2_world, e) for e in (blue_on_stranger, no_cluster[0])}
        sweeps = {
            name: m.registry.get_sample_value("eni_controller_orphan_sweeps_total")
            for name, m in metrics.items()
        }
        reclaimed = {
            name: m.registry.get_sample_value("eni_controller_orphan_enis_reclaimed_total")
            for name, m in metrics.items()
        }
    assert {blue_on_stranger, *no_cluster} <= left
    assert attached == {blue_on_stranger: stranger.id, no_cluster[0]: stranger_too.id}
    # each controller reclaimed its own orphans and nothing else
    assert reclaimed == {blue: len(orphans[blue]), green: len(orphans[green])}
    assert all(count is not None and count >= 3 for count in sweeps.values()), sweeps


async def test_without_a_cluster_identity_enis_are_made_and_nothing_is_swept(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)  # untagged instances
    orphan = _eni(ec2_world, uid=str(uuid.uuid4()))
    config = controller_config(
        ec2_world,
        cluster_name=None,
        orphan_sweep_interval_seconds=SWEEP_INTERVAL,
        orphan_grace_period_seconds=GRACE,
    )
    metrics = Metrics()
    async with running_controller(kube_api, config, metrics=metrics) as controller:
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        uid = created["metadata"]["uid"]
        obj = await wait_for_nodeeni(kube_api, unique, is_ready)
        await asyncio.sleep(GRACE + 4 * SWEEP_INTERVAL)  # several sweeps past the grace
        made = enis_of(ec2_world, uid)
        left = _ids(ec2_world)
        identity = (controller.identity.resolved, controller.identity.name)
    assert identity == (True, None)
    assert len(made) == 1
    assert made[0]["Status"] == "in-use"
    assert [a["eniID"] for a in obj["status"]["attachments"]] == [made[0]["NetworkInterfaceId"]]
    assert not any(
        t["Key"].startswith(tags.CLUSTER_TAG_PREFIX) and t["Key"] != tags.MANAGED_BY_KEY
        for t in made[0]["TagSet"]
    )
    assert orphan in left
    assert metrics.registry.get_sample_value("eni_controller_cluster_identity_known") == 0
    sweeps = metrics.registry.get_sample_value("eni_controller_orphan_sweeps_total")
    assert sweeps is not None
    assert sweeps >= 3
    assert metrics.registry.get_sample_value("eni_controller_orphan_enis_reclaimed_total") == 0

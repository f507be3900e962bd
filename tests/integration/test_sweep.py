"""The orphan sweep against the real moto server: what it reclaims, and what
it must never touch."""

from __future__ import annotations

import asyncio
import uuid

from eni_controller.aws.ec2 import connect_ec2, eni_tag_specifications
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from eni_controller.reconcile.cleanup import CleanupPool
from eni_controller.reconcile.ec2view import ManagedENIs
from eni_controller.reconcile.sweep import OrphanSweep
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, World, ec2_client
from tests.harness.fleet import delete_nodeeni, enis_of, make_nodes, nodeeni_spec, wait_gone
from tests.harness.realism.control import RealismControl
from tests.harness.waiting import until


def _eni(world: World, *, uid: str | None, cluster: str | None = None) -> str:
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
    return eni


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sweep_reclaims_unclaimed_enis_after_the_grace_period_only(
    ec2_world: World, realism: RealismControl
) -> None:
    claimed_uid = str(uuid.uuid4())
    orphan = _eni(ec2_world, uid=str(uuid.uuid4()))
    claimed = _eni(ec2_world, uid=claimed_uid)
    untagged = _eni(ec2_world, uid=None)
    clock = FakeClock()
    metrics = Metrics()
    async with connect_ec2(controller_config(ec2_world), metrics=metrics) as ec2:
        pool = CleanupPool(
            ec2, workers=1, detach_timeout=5, on_done=lambda _owner: None, metrics=metrics
        )
        sweep = OrphanSweep(
            ManagedENIs(ec2),
            pool,
            claimed_uids=lambda: [claimed_uid],
            cluster_name=None,
            grace_seconds=60,
            metrics=metrics,
            clock=clock,
        )
        reclaimed_now = await sweep.sweep()
        clock.now += 61
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
                ManagedENIs(ec2),
                pool,
                claimed_uids=list,
                cluster_name=name,
                grace_seconds=0,
                metrics=metrics,
            )
            for name in ("blue", None)
        )
        by_blue, by_unnamed = await blue.sweep(), await unnamed.sweep()
    assert ours in by_blue
    assert other_cluster not in by_blue + by_unnamed
    assert unnamed_cluster in by_unnamed
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

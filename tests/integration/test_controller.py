"""The controller end to end: real API server, real moto server with AWS rules.

Each test labels its own fresh instances' Nodes with a unique value, so tests
never see each other's NodeENIs, and reads EC2 and the API server directly
to check what the controller did.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client

from eni_controller.controller import Controller
from eni_controller.reconcile import tags
from tests.harness.controller import (
    AWSEnv,
    condition,
    controller_config,
    is_ready,
    quiet,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import (
    AZ_A,
    AZ_B,
    create_tagged_eni,
    ec2_client,
)
from tests.harness.fleet import enis_of, make_nodes, nodeeni_spec
from tests.harness.kube import merge_patch_nodeeni
from tests.harness.realism.control import RealismControl
from tests.harness.waiting import until


async def test_three_nodes_two_subnets_get_six_enis_at_consistent_indexes(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    made = await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=3)
    async with running_controller(kube_api, controller_config(ec2_world)):
        created = await nodeenis.create(
            unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-a-2", mtu=9001)
        )
        ready = await wait_for_nodeeni(kube_api, unique, is_ready)
    status = ready["status"]
    assert status["attachedCount"] == 6
    assert status["desiredCount"] == 6
    assert status["observedGeneration"] == created["metadata"]["generation"]
    by_node: dict[str, list[dict[str, Any]]] = {}
    for attachment in status["attachments"]:
        by_node.setdefault(attachment["nodeID"], []).append(attachment)
        assert attachment["status"] == "attached"
        assert attachment["mtu"] == 9001
        assert attachment["macAddress"]
        assert attachment["privateIPAddress"]
        assert attachment["lastUpdated"]
    assert sorted(by_node) == sorted(name for name, _ in made)
    for name, instance in made:
        entries = sorted(by_node[name], key=lambda a: a["deviceIndex"])
        assert [a["deviceIndex"] for a in entries] == [1, 2]
        assert [a["subnetID"] for a in entries] == [
            ec2_world.subnet("multus-a").id,
            ec2_world.subnet("multus-a-2").id,
        ]
        assert [a["subnetCIDR"] for a in entries] == ["10.0.1.0/24", "10.0.11.0/24"]
        assert {a["instanceID"] for a in entries} == {instance.id}
    enis = enis_of(ec2_world, created["metadata"]["uid"])
    assert len(enis) == 6
    for eni in enis:
        eni_tags = {t["Key"]: t["Value"] for t in eni["TagSet"]}
        node = eni_tags[tags.NODE_KEY]
        assert eni_tags[tags.NODEENI_KEY] == unique
        assert eni_tags[tags.MANAGED_BY_KEY] == tags.MANAGED_BY_VALUE
        assert eni_tags[tags.NO_MANAGE_KEY] == "true"
        assert eni_tags[tags.SUBNET_KEY] == eni["SubnetId"]
        assert eni_tags["Name"] == f"nodeeni-{unique}-{node}-{eni['SubnetId'][-8:]}"
        assert eni["Attachment"]["DeleteOnTermination"] is True
        assert eni["Groups"][0]["GroupId"] == ec2_world.security_group("multus-sg").id
    assert condition(ready, "Degraded")["status"] == "False"


def _mutating(realism: RealismControl) -> int:
    return sum(n for action, n in realism.calls().items() if not action.startswith("Describe"))


async def test_new_node_gets_its_enis_and_subnets_follow_the_node_az(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=2)
    # index 3 needs more than an m5.large's 3 interfaces (indexes 0-2)
    await make_nodes(nodes, ec2_world, unique, az=AZ_B, count=1, instance_type="c5.4xlarge")
    async with running_controller(kube_api, controller_config(ec2_world)):
        created = await nodeenis.create(
            unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-b", deviceIndex=2)
        )
        first = await wait_for_nodeeni(kube_api, unique, is_ready)
        before = {a["eniID"]: a for a in first["status"]["attachments"]}
        assert len(before) == 3
        for attachment in before.values():
            subnet = "multus-a" if attachment["nodeID"].endswith(("a0", "a1")) else "multus-b"
            assert attachment["subnetID"] == ec2_world.subnet(subnet).id
            # the subnet keeps its position in the list, whatever the node's AZ
            assert attachment["deviceIndex"] == (2 if subnet == "multus-a" else 3)
        creates = realism.calls()["CreateNetworkInterface"]
        ((late, _),) = await make_nodes(nodes, ec2_world, f"{unique}-late", az=AZ_A, count=1)
        core = client.CoreV1Api(kube_api)
        await core.patch_node(late, {"metadata": {"labels": {"test": unique}}})
        after = await wait_for_nodeeni(
            kube_api, unique, lambda o: is_ready(o) and o["status"]["attachedCount"] == 4
        )
    assert realism.calls()["CreateNetworkInterface"] == creates + 1
    now = {a["eniID"]: a for a in after["status"]["attachments"]}
    assert {k: v for k, v in now.items() if k in before} == before  # untouched, lastUpdated too
    assert len(enis_of(ec2_world, created["metadata"]["uid"])) == 4


async def test_two_nodeenis_on_one_node_get_distinct_indexes_around_a_foreign_eni(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    ((name, instance),) = await make_nodes(
        nodes, ec2_world, unique, az=AZ_A, count=1, instance_type="c5.xlarge"
    )
    # software outside the controller holds index 1
    ec2 = ec2_client(ec2_world.endpoint)
    foreign = ec2.create_network_interface(SubnetId=ec2_world.subnet("multus-a-2").id)
    ec2.attach_network_interface(
        NetworkInterfaceId=foreign["NetworkInterface"]["NetworkInterfaceId"],
        InstanceId=instance.id,
        DeviceIndex=1,
    )
    async with running_controller(kube_api, controller_config(ec2_world)):
        await asyncio.gather(
            nodeenis.create(f"{unique}-x", nodeeni_spec(unique, ec2_world, "multus-a")),
            nodeenis.create(f"{unique}-y", nodeeni_spec(unique, ec2_world, "multus-a-2")),
        )
        x, y = await asyncio.gather(
            wait_for_nodeeni(kube_api, f"{unique}-x", is_ready),
            wait_for_nodeeni(kube_api, f"{unique}-y", is_ready),
        )
    indexes = [o["status"]["attachments"][0]["deviceIndex"] for o in (x, y)]
    assert sorted(indexes) == [2, 3]
    described = ec2.describe_instances(InstanceIds=[instance.id])["Reservations"][0]["Instances"][0]
    held = sorted(e["Attachment"]["DeviceIndex"] for e in described["NetworkInterfaces"])
    assert held == [0, 1, 2, 3]
    assert name == x["status"]["attachments"][0]["nodeID"]


async def test_eni_limit_is_reported_without_churn(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)  # m5.large: primary + 2
    config = controller_config(ec2_world, reconcile_period_seconds=0.5)
    async with running_controller(kube_api, config) as controller:
        created = await nodeenis.create(
            unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-a-2", "nodes-a")
        )
        limited = await wait_for_nodeeni(
            kube_api,
            unique,
            lambda o: condition(o, "Ready").get("reason") == "AttachmentLimitExceeded",
        )
        await quiet(controller, unique)  # earlier tests' deletions are not this test's calls
        mutating = _mutating(realism)
        await asyncio.sleep(5 * config.reconcile_period_seconds + 0.5)  # five resyncs
        assert _mutating(realism) == mutating
        again = await wait_for_nodeeni(kube_api, unique, lambda o: True)
    assert limited["status"]["attachedCount"] == 2
    assert condition(limited, "Degraded")["status"] == "True"
    assert again["status"] == limited["status"]
    assert len(enis_of(ec2_world, created["metadata"]["uid"])) == 2


async def test_invalid_spec_gets_condition_and_event_and_no_ec2_call(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    async with running_controller(kube_api, controller_config(ec2_world)) as controller:
        await nodeenis.create(f"{unique}-ok", nodeeni_spec(unique, ec2_world, "multus-a"))
        await wait_for_nodeeni(kube_api, f"{unique}-ok", is_ready)
        # earlier tests' deleted NodeENIs may still be going: their last describe
        # and finalizer release must not fall between the two counts below
        await quiet(controller, unique)
        calls = sum(realism.calls().values())
        # passes the CRD schema, fails the controller's own label-syntax check
        bad = {**nodeeni_spec(unique, ec2_world, "multus-a"), "nodeSelector": {"bad key!": "x"}}
        await nodeenis.create(f"{unique}-bad", bad)
        invalid = await wait_for_nodeeni(
            kube_api,
            f"{unique}-bad",
            lambda o: condition(o, "Ready").get("reason") == "InvalidSpec",
        )
        assert sum(realism.calls().values()) == calls
        events = await client.CoreV1Api(kube_api).list_namespaced_event(
            "default", field_selector=f"involvedObject.name={unique}-bad"
        )
    assert "bad key!" in condition(invalid, "Ready")["message"]
    assert [(e.type, e.reason) for e in events.items] == [("Warning", "InvalidSpec")]


async def test_crash_leftovers_are_adopted_never_duplicated(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    ((name, instance),) = await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    created = await nodeenis.create(
        unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-a-2")
    )
    uid = created["metadata"]["uid"]
    ec2 = ec2_client(ec2_world.endpoint)
    leftovers = [
        create_tagged_eni(
            ec2_world, subnet=subnet, nodeeni=unique, uid=uid, node=name, instance_id=instance.id
        )
        for subnet in ("multus-a", "multus-a-2")
    ]
    # crashed after create (first) and after attach, before the status write (second)
    ec2.attach_network_interface(
        NetworkInterfaceId=leftovers[1], InstanceId=instance.id, DeviceIndex=2
    )
    creates = realism.calls()["CreateNetworkInterface"]  # the two leftovers above
    async with running_controller(kube_api, controller_config(ec2_world)):
        ready = await wait_for_nodeeni(kube_api, unique, is_ready)
        events = await client.CoreV1Api(kube_api).list_namespaced_event(
            "default", field_selector=f"involvedObject.name={unique}"
        )
    assert realism.calls()["CreateNetworkInterface"] == creates
    assert sorted(a["eniID"] for a in ready["status"]["attachments"]) == sorted(leftovers)
    assert sorted(e["NetworkInterfaceId"] for e in enis_of(ec2_world, uid)) == sorted(leftovers)
    assert "ENIAdopted" in {e.reason for e in events.items}


class Refreshes:
    """The EC2 view's refreshes (a resync's one describe of every managed ENI),
    counted as the controller starts them."""

    def __init__(self, controller: Controller, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[asyncio.Task[Any]] = []
        refresh = controller.view.refresh

        def counted() -> asyncio.Task[Any]:
            self.started.append(refresh())
            return self.started[-1]

        monkeypatch.setattr(controller.view, "refresh", counted)

    @property
    def running(self) -> bool:
        return not all(task.done() for task in self.started)

    async def more(self, count: int) -> None:
        """Until `count` more resyncs have started."""
        target = len(self.started) + count
        await until(lambda: len(self.started) >= target, within=30)


async def test_steady_state_costs_no_mutating_call_and_no_status_write(
    aws_env: AWSEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=2)
    config = controller_config(ec2_world, reconcile_period_seconds=0.5)
    async with running_controller(kube_api, config) as controller:
        refreshes = Refreshes(controller, monkeypatch)
        await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        converged = await wait_for_nodeeni(kube_api, unique, is_ready)
        await quiet(controller, unique)  # earlier tests' NodeENIs gone
        # settled: the reconciles right after the rollout look at the instances they
        # changed once more; then resyncs go by without describing them (counted in
        # resyncs, not seconds: a loaded machine only makes them later)
        async with asyncio.timeout(30):
            while True:
                seen = realism.calls().get("DescribeInstances", 0)
                await refreshes.more(3)
                if realism.calls().get("DescribeInstances", 0) == seen:
                    break
        # both counts read between resyncs, none in flight: a describe on its way
        # to the server at a boundary would count on one side and not the other
        await until(lambda: not refreshes.running, within=30)
        mutating, writes = _mutating(realism), controller.writer.status_writes
        before = realism.calls()
        snapshots = len(refreshes.started)
        await asyncio.sleep(3 * config.reconcile_period_seconds + 0.2)
        await until(lambda: not refreshes.running, within=30)
        after = realism.calls()
        assert _mutating(realism) == mutating
        assert controller.writer.status_writes == writes
        # the resyncs did run, and each made one describe of our ENIs for every
        # NodeENI; the settled nodes' instances were not described again
        resyncs = len(refreshes.started) - snapshots
        assert resyncs >= 3
        describes = after["DescribeNetworkInterfaces"] - before["DescribeNetworkInterfaces"]
        assert describes == resyncs, (before, after)
        assert after.get("DescribeInstances", 0) == before.get("DescribeInstances", 0)
        settled = await wait_for_nodeeni(kube_api, unique, lambda o: True)
    assert settled["status"] == converged["status"]


async def test_converges_under_throttling_and_eventual_consistency_without_duplicates(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    realism.configure(
        consistency_window=1.0,
        attach_latency=0.5,
        throttle={"buckets": {"mutating": [4, 10], "describe": [10, 20]}},
    )
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=3)
    async with running_controller(kube_api, controller_config(ec2_world)):
        created = await nodeenis.create(
            unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-a-2")
        )
        ready = await wait_for_nodeeni(kube_api, unique, is_ready, within=60)
    enis = enis_of(ec2_world, created["metadata"]["uid"])
    assert len(enis) == 6
    slots = {
        (e["TagSet"] and tuple(sorted((t["Key"], t["Value"]) for t in e["TagSet"]))) for e in enis
    }
    assert len(slots) == 6  # one ENI per (node, subnet)
    assert ready["status"]["attachedCount"] == 6


async def test_security_group_change_is_applied_to_existing_enis(
    aws_env: AWSEnv,
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=1)
    async with running_controller(kube_api, controller_config(ec2_world)):
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        await wait_for_nodeeni(kube_api, unique, is_ready)
        await merge_patch_nodeeni(
            nodeenis.custom, unique, {"spec": {"securityGroupNames": ["multus-sg-2"]}}
        )
        await wait_for_nodeeni(
            kube_api, unique, lambda o: o["status"].get("observedGeneration") == 2 and is_ready(o)
        )
    (eni,) = enis_of(ec2_world, created["metadata"]["uid"])
    assert [g["GroupId"] for g in eni["Groups"]] == [ec2_world.security_group("multus-sg-2").id]
    assert realism.calls()["CreateNetworkInterface"] == 1

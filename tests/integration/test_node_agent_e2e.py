"""Issue 18 end to end: a NodeENI's MTU reaches the links on three nodes, and the
links' names come back into the NodeENI's status.

Everything real but the machines: the API server, moto with AWS rules, the
controller in-process, three Nodes on three moto instances (real providerIDs),
each with its own network namespace and its own in-process node agent named
after the Node. The test plays the EC2 hypervisor (tests/harness/ec2_hypervisor.py):
an ENI EC2 shows attached to a node's instance appears in that node's
namespace as a veth with the ENI's MAC, down at 1500; detached, it goes.

One scenario, in steps:

1. NodeENI with mtu 9001 on the 3 nodes: on each node the link with its ENI's
   MAC is up at 9001, and the NodeENI's status names each link (the
   controller folds the agents' reports), with at most one NodeENI status
   write per report (FIGURE);
2. an MTU changed by hand on one node is restored, the NodeENI untouched;
3. the spec's MTU changed: applied on every node, names kept;
4. twice: a node's label removed (its ENI detached and unplugged, its ENINode
   spec and report empty, its attachment gone from the status) and put back
   (an ENI attached, its link up at the MTU, its name in the status again);
5. the NodeENI deleted: every ENI detached, every spec and report empty.

Needs root (network namespaces).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes_asyncio import client

from eni_controller.agent.agent import Agent
from eni_controller.eninode import OperState
from tests.harness.agents import (
    ENINodes,
    SimNode,
    in_process_agent,
    link_is,
    wait_cycle,
    wait_entry,
    wait_link,
)
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    quiet,
    read_nodeeni,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2_hypervisor import EC2Hypervisor
from tests.harness.ec2world import AZ_A
from tests.harness.eninodes import spec_interfaces, wait_for_eninode
from tests.harness.fleet import (
    delete_nodeeni,
    enis_of,
    label_node,
    make_nodes,
    nodeeni_spec,
    wait_gone,
)
from tests.harness.kube import merge_patch_nodeeni
from tests.harness.netns import Hypervisor, LinkMonitor, LinkState, namespaces
from tests.harness.waiting import until, until_async

JUMBO, EDITED, HAND = 9001, 8000, 1500
WAIT = 90.0  # seconds any one condition may take (correctness, not speed)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


@dataclass(frozen=True, kw_only=True, slots=True)
class Scene:
    api: client.ApiClient
    nodeeni: str
    hypervisor: EC2Hypervisor
    eninodes: ENINodes


def _by_node(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """node -> its status attachment (one ENI per node here)."""
    return {a["nodeID"]: a for a in (obj.get("status") or {}).get("attachments") or []}


def _named(expected: Mapping[str, tuple[str, str, int]]) -> Callable[[dict[str, Any]], bool]:
    """The NodeENI is ready with exactly these nodes attached, each entry
    (eniID, interfaceName, mtu) as given."""

    def check(obj: dict[str, Any]) -> bool:
        got = {
            node: (a["eniID"], a.get("interfaceName"), a.get("mtu"))
            for node, a in _by_node(obj).items()
            if a.get("status") == "attached"
        }
        return is_ready(obj) and got == dict(expected) and len(_by_node(obj)) == len(expected)

    return check


def _attached_on(names: list[str]) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        by_node = _by_node(obj)
        return (
            is_ready(obj)
            and sorted(by_node) == sorted(names)
            and all(a.get("status") == "attached" for a in by_node.values())
        )

    return check


def _wants(eni_id: str, mtu: int) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: [(i["eniID"], i.get("mtu")) for i in spec_interfaces(obj)] == [(eni_id, mtu)]


async def _linked(hv: Hypervisor, mac: str) -> LinkState:
    """Until a link with ``mac`` is in the namespace (the hypervisor plugged it)."""

    async def present() -> bool:
        return await hv.link(mac) is not None

    await until_async(present, within=WAIT)
    state = await hv.link(mac)
    assert state is not None
    return state


async def _unplugged(hv: Hypervisor, mac: str) -> None:
    async def gone() -> bool:
        return await hv.link(mac) is None

    await until_async(gone, within=WAIT)


async def _reports_nothing(eninodes: ENINodes, node: str) -> None:
    """Until the node's agent reports no ENI at all."""

    async def empty() -> bool:
        status = await eninodes.status(node)
        return status.interfaces == () and status.summary.wanted == 0

    await until_async(empty, within=WAIT)


def _version(obj: Mapping[str, Any] | None) -> str | None:
    return None if obj is None else obj["metadata"]["resourceVersion"]


def _status_writes_of(agent: Agent) -> float:
    value = agent.metrics.registry.get_sample_value(
        "eni_agent_status_writes_total", {"result": "success"}
    )
    return value or 0.0


async def _up_and_reported(scene: Scene, node: SimNode, eni: Mapping[str, Any], mtu: int) -> str:
    """Until the node's link for ``eni`` is up at ``mtu`` and its agent reports it
    so; returns the link's name."""
    mac = eni["macAddress"].lower()
    state = await wait_link(node.hypervisor, mac, mtu=mtu)
    reported = await wait_entry(
        scene.eninodes,
        node.name,
        eni["eniID"],
        interface_name=state.name,
        mtu=mtu,
        oper_state=OperState.UP,
    )
    assert reported.mac_address == mac
    assert reported.error == ""
    return state.name


@root_only
async def test_nodeeni_mtu_reaches_three_nodes_links_and_their_names_come_back(
    aws_env: AWSEnv,
) -> None:
    api, node_factory, nodeenis, world, _realism, unique = aws_env
    made = await make_nodes(node_factory, world, unique, az=AZ_A, count=3)
    names = [name for name, _ in made]
    core = client.CoreV1Api(api)
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(namespaces(names))  # removed on the way out, whatever happened
        nodes = [
            SimNode(
                name=name,
                netns=name,
                uid=(await core.read_node(name)).metadata.uid,
                hypervisor=Hypervisor(name),
            )
            for name in names
        ]
        hosts = {
            instance.id: node.hypervisor for (_, instance), node in zip(made, nodes, strict=True)
        }
        hypervisor = await stack.enter_async_context(EC2Hypervisor(world.endpoint, hosts))
        controller = await stack.enter_async_context(
            running_controller(api, controller_config(world))
        )
        scene = Scene(
            api=api,
            nodeeni=unique,
            hypervisor=hypervisor,
            eninodes=ENINodes(api),
        )

        # 1. mtu 9001 on 3 nodes: attached, plugged, ENINode specs written; no agent yet
        await nodeenis.create(unique, nodeeni_spec(unique, world, "multus-a", mtu=JUMBO))
        enis = _by_node(await wait_for_nodeeni(api, unique, _attached_on(names), within=WAIT))
        for node in nodes:
            eni = enis[node.name]
            await wait_for_eninode(api, node.name, _wants(eni["eniID"], JUMBO), within=WAIT)
            plugged = await _linked(node.hypervisor, eni["macAddress"].lower())
            assert (plugged.admin_up, plugged.mtu) == (False, 1500), "as hot-plugged"
        await quiet(controller, unique)
        writes_before = controller.writer.status_writes
        agents = {
            node.name: await stack.enter_async_context(in_process_agent(api, node))
            for node in nodes
        }
        link_names = {
            node.name: await _up_and_reported(scene, node, enis[node.name], JUMBO) for node in nodes
        }
        expected = {name: (enis[name]["eniID"], link_names[name], JUMBO) for name in names}
        await wait_for_nodeeni(api, unique, _named(expected), within=WAIT)
        writes = controller.writer.status_writes - writes_before
        reports = sum(_status_writes_of(agent) for agent in agents.values())
        print(
            f"FIGURE node agent e2e: {len(nodes)} nodes, {reports:.0f} agent reports folded "
            f"with {writes} NodeENI status writes ({writes / reports:.2f} per report)"
        )
        assert 1 <= writes <= reports

        # 2. an MTU changed by hand on one node: restored; the NodeENI is not written
        first, mac = nodes[0], enis[nodes[0].name]["macAddress"].lower()
        before = await read_nodeeni(api, unique)
        async with LinkMonitor(first.netns) as monitor:
            await first.hypervisor.set_mtu_by_hand(mac, HAND)
            await wait_link(first.hypervisor, mac, mtu=JUMBO)
            await wait_entry(scene.eninodes, first.name, enis[first.name]["eniID"], mtu=JUMBO)
        # a barrier: the agent ran a cycle since, and the controller has seen its object
        await wait_cycle(agents[first.name], scene.eninodes, first.name)
        seen = (await scene.eninodes.get(first.name))["metadata"]["resourceVersion"]
        await until(lambda: _version(controller.eninodes.get(first.name)) == seen, within=WAIT)
        at_hand = monitor.first(lambda s: s.mac == mac and s.mtu == HAND)
        assert at_hand is not None, "the hand change was never seen"
        assert any(s.at >= at_hand.at and s.state.mtu == JUMBO for s in monitor.about({mac}))
        after = await read_nodeeni(api, unique)
        assert after["status"] == before["status"]
        assert controller.writer.status_writes - writes_before == writes
        for node in nodes[1:]:  # the others' links were not touched
            assert await link_is(node.hypervisor, enis[node.name]["macAddress"], mtu=JUMBO)

        # 3. the spec's MTU changed: applied on every node, the names kept
        await merge_patch_nodeeni(client.CustomObjectsApi(api), unique, {"spec": {"mtu": EDITED}})
        for node in nodes:
            await wait_for_eninode(
                api, node.name, _wants(enis[node.name]["eniID"], EDITED), within=WAIT
            )
            assert (
                await _up_and_reported(scene, node, enis[node.name], EDITED)
                == link_names[node.name]
            )
        expected = {name: (eni_id, link, EDITED) for name, (eni_id, link, _) in expected.items()}
        await wait_for_nodeeni(api, unique, _named(expected), within=WAIT)

        # 4. twice: a node leaves the NodeENI and comes back
        for _ in range(2):
            expected = await _leave_and_return(scene, first, expected, enis)

        # 5. the NodeENI deleted: every ENI detached and unplugged, every spec and report empty
        uid = after["metadata"]["uid"]
        current = _by_node(await read_nodeeni(api, unique))
        await delete_nodeeni(nodeenis, unique)
        for node in nodes:
            await wait_for_eninode(api, node.name, lambda o: spec_interfaces(o) == [], within=WAIT)
            await _unplugged(node.hypervisor, current[node.name]["macAddress"].lower())
            await _reports_nothing(scene.eninodes, node.name)
        await wait_gone(api, unique, within=WAIT)
        await until(lambda: enis_of(world, uid) == [], within=WAIT)


async def _leave_and_return(
    scene: Scene,
    node: SimNode,
    expected: Mapping[str, tuple[str, str, int]],
    enis: dict[str, dict[str, Any]],
) -> dict[str, tuple[str, str, int]]:
    """Label off: the node's ENI goes everywhere; label on: one comes back, up
    and named. Updates ``enis`` and returns what the status then says."""
    api, name = scene.api, node.name
    old = _by_node(await read_nodeeni(api, scene.nodeeni))[name]
    old_mac = old["macAddress"].lower()
    others = {n: e for n, e in expected.items() if n != name}

    await label_node(api, name, {"test": None})
    await wait_for_nodeeni(api, scene.nodeeni, _named(others), within=WAIT)
    await wait_for_eninode(api, name, lambda o: spec_interfaces(o) == [], within=WAIT)
    await _unplugged(node.hypervisor, old_mac)
    await _reports_nothing(scene.eninodes, name)
    assert scene.hypervisor.changes(old["eniID"])[-1] is False  # detached: the hypervisor unplugged

    await label_node(api, name, {"test": scene.nodeeni})
    nodes = [*others, name]
    back = _by_node(await wait_for_nodeeni(api, scene.nodeeni, _attached_on(nodes), within=WAIT))
    eni = back[name]
    mtu = others[next(iter(others))][2]
    await wait_for_eninode(api, name, _wants(eni["eniID"], mtu), within=WAIT)
    link = await _up_and_reported(scene, node, eni, mtu)
    assert scene.hypervisor.changes(eni["eniID"])[-1] is True
    enis[name] = eni
    again = {**others, name: (eni["eniID"], link, mtu)}
    await wait_for_nodeeni(api, scene.nodeeni, _named(again), within=WAIT)
    return again

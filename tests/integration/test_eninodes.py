"""The controller's half of the per-node ENINodes (issue 18), end to end: real
API server, moto with AWS rules, the controller in-process. The test plays the
node agents, writing ENINode status as they do.

- an ENINode per node holding an ENI, its spec as the NodeENI says, owned by
  the Node; spec edits follow, label off empties it, label on fills it again;
- the agents' reports folded into NodeENI status and kept across the
  controller's own later writes (hard case 16), a stale report never folded,
  an error a condition until cleared;
- the spec written only when it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from tests.harness.controller import (
    AWSEnv,
    condition,
    controller_config,
    is_ready,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A
from tests.harness.eninodes import interface_up, report, spec_interfaces, wait_for_eninode
from tests.harness.fleet import (
    delete_nodeeni,
    enis_of,
    label_node,
    make_nodes,
    nodeeni_spec,
    wait_gone,
)
from tests.harness.kube import merge_patch_nodeeni
from tests.harness.waiting import until

INTERFACES = "NodeInterfacesReady"


def _by_node(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """node -> its status entry (one ENI per node here)."""
    return {a["nodeID"]: a for a in (obj.get("status") or {}).get("attachments") or []}


def _attached(count: int) -> Any:
    return lambda obj: (
        is_ready(obj) and [a["status"] for a in _by_node(obj).values()] == ["attached"] * count
    )


def _spec_is(*wanted: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: spec_interfaces(obj) == list(wanted)


def _spec_entry(attachment: dict[str, Any], nodeeni: str, **extra: Any) -> dict[str, Any]:
    return {
        "eniID": attachment["eniID"],
        "macAddress": attachment["macAddress"].lower(),
        "deviceIndex": attachment["deviceIndex"],
        "nodeENI": nodeeni,
        **extra,
    }


async def test_eninodes_follow_the_nodeeni_and_the_agents_reports_come_back(
    aws_env: AWSEnv,
) -> None:
    api, nodes, nodeenis, world, _realism, unique = aws_env
    names = [name for name, _ in await make_nodes(nodes, world, unique, az=AZ_A, count=2)]
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    async with running_controller(api, controller_config(world)) as controller:
        created = await nodeenis.create(unique, nodeeni_spec(unique, world, "multus-a", mtu=9001))
        entries = _by_node(await wait_for_nodeeni(api, unique, _attached(2)))

        # an ENINode per node: its ENI as the NodeENI says, owned by the Node
        for name in names:
            eninode = await wait_for_eninode(api, name, lambda o: bool(spec_interfaces(o)))
            wanted = [_spec_entry(entries[name], unique, mtu=9001)]
            assert spec_interfaces(eninode) == wanted
            node = await core.read_node(name)
            assert eninode["metadata"]["ownerReferences"] == [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": name,
                    "uid": node.metadata.uid,
                    "blockOwnerDeletion": False,
                    "controller": False,
                }
            ]

        # the first node's agent reports its interface: NodeENI status shows it
        up = interface_up(entries[names[0]], "ens6", mtu=9001)
        await report(api, names[0], [up])
        await wait_for_nodeeni(
            api, unique, lambda o: _by_node(o)[names[0]].get("interfaceName") == "ens6"
        )
        # and keeps it through a later write of the controller's own (MTU edited),
        # while both nodes' specs follow the edit
        await merge_patch_nodeeni(custom, unique, {"spec": {"mtu": 1500}})
        edited = await wait_for_nodeeni(
            api, unique, lambda o: {a.get("mtu") for a in _by_node(o).values()} == {1500}
        )
        assert _by_node(edited)[names[0]]["interfaceName"] == "ens6"
        assert "interfaceName" not in _by_node(edited)[names[1]]  # nothing reported there
        for name in names:
            await wait_for_eninode(
                api, name, _spec_is(_spec_entry(entries[name], unique, mtu=1500))
            )

        # an error on the second node is a condition until its agent clears it
        failing = interface_up(entries[names[1]], "ens6", error="mtu 1500 above max 1200")
        await report(api, names[1], [failing], ready=0)
        failed = await wait_for_nodeeni(api, unique, lambda o: bool(condition(o, INTERFACES)))
        found = condition(failed, INTERFACES)
        assert (found["status"], found["reason"]) == ("False", "NodeReportedError")
        assert f"node {names[1]}" in found["message"]
        assert "mtu 1500 above max 1200" in found["message"]
        # (absent, not "": this test API server stores "" as null, which the schema refuses)
        await report(api, names[1], [interface_up(entries[names[1]], "ens6")])
        cleared = await wait_for_nodeeni(api, unique, lambda o: not condition(o, INTERFACES))
        assert _by_node(cleared)[names[1]]["interfaceName"] == "ens6"

        # label off: the node's ENINode stays, with no ENI in it
        await label_node(api, names[0], {"test": None})
        await wait_for_eninode(api, names[0], _spec_is())
        uid = created["metadata"]["uid"]
        await until(lambda: len(enis_of(world, uid)) == 1, within=30)  # the old ENI is gone
        # label on: a new ENI; the agent's report of the old one is not folded
        await label_node(api, names[0], {"test": unique})
        again = _by_node(await wait_for_nodeeni(api, unique, _attached(2)))
        assert again[names[0]]["eniID"] != entries[names[0]]["eniID"]
        assert "interfaceName" not in again[names[0]]
        await wait_for_eninode(
            api,
            names[0],
            _spec_is(_spec_entry(again[names[0]], unique, mtu=1500)),
        )
        await report(api, names[0], [interface_up(again[names[0]], "ens7", mtu=1500)])
        await wait_for_nodeeni(
            api, unique, lambda o: _by_node(o)[names[0]].get("interfaceName") == "ens7"
        )

        # deleted: every node lets go before the ENIs are detached
        await delete_nodeeni(nodeenis, unique)
        for name in names:
            await wait_for_eninode(api, name, _spec_is())
        await wait_gone(api, unique)
        # 2 creates, 2 MTU edits, label off, label on, 2 deletions: nothing more
        assert controller.eninode_writer.spec_writes == 8

"""The ENINode halves through the real parts, in memory: the reconciler folding
the agents' reports into the NodeENI status it writes (tests/harness/reconciling.py),
and the spec sync making each node's ENINode what that status says."""

from __future__ import annotations

from typing import Any

from tests.harness.reconciling import ReconcileWorld, eninode_specs

SELECTOR = {"nodeSelector": {"multus": "on"}}


def _entries(world: ReconcileWorld, name: str) -> dict[str, dict[str, Any]]:
    """node -> its status entry (one ENI per node here)."""
    return {a["nodeID"]: a for a in world.status(name).get("attachments", [])}


def _report(entry: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """What an agent reports for the ENI of this status entry (up, unless `fields` say)."""
    return {"eniID": entry["eniID"], "macAddress": entry["macAddress"], "operState": "up", **fields}


def _conditions(world: ReconcileWorld, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in world.status(name)["conditions"]}


async def test_reports_are_folded_once_and_survive_later_status_writes() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_node(1)
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    first = _entries(world, "multus")["node-0"]

    world.report("node-0", _report(first, interfaceName="ens6", dpdkBound=False, operState="up"))
    writes = world.writer.status_writes
    await world.reconcile("multus")
    assert world.writer.status_writes == writes + 1
    assert _entries(world, "multus")["node-0"]["interfaceName"] == "ens6"
    await world.reconcile("multus")  # nothing new reported: nothing written
    assert world.writer.status_writes == writes + 1

    # hard case 16: a later write of the controller's own (a second node) keeps it
    world.label("node-1", multus="on")
    world.view.changed(uid="uid-1")
    await world.reconcile("multus")
    entries = _entries(world, "multus")
    assert set(entries) == {"node-0", "node-1"}
    assert entries["node-0"]["interfaceName"] == "ens6"
    assert entries["node-0"]["dpdkBound"] is False
    assert "interfaceName" not in entries["node-1"]  # node-1 has no ENINode yet


async def test_a_replaced_eni_never_takes_the_old_ones_report() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    old = _entries(world, "multus")["node-0"]
    world.report("node-0", _report(old, interfaceName="ens6"))
    await world.reconcile("multus")
    assert _entries(world, "multus")["node-0"]["interfaceName"] == "ens6"

    await world.ec2.delete_network_interface(NetworkInterfaceId=old["eniID"])
    await world.view.refresh()
    await world.reconcile("multus")
    await world.reconcile("multus")
    new = _entries(world, "multus")["node-0"]
    assert new["eniID"] != old["eniID"]
    assert "interfaceName" not in new  # the agent still reports the old ENI only

    world.report("node-0", _report(new, interfaceName="ens7"))
    await world.reconcile("multus")
    assert _entries(world, "multus")["node-0"]["interfaceName"] == "ens7"


async def test_an_error_report_is_a_condition_until_it_clears_and_again_when_back() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", mtu=9001, **SELECTOR)
    await world.reconcile("multus")
    entry = _entries(world, "multus")["node-0"]
    assert "NodeInterfacesReady" not in _conditions(world, "multus")

    failing = _report(entry, interfaceName="ens6", error="mtu 9001 above max 1500")
    for _ in range(2):  # error, cleared; and again
        world.report("node-0", failing)
        await world.reconcile("multus")
        condition = _conditions(world, "multus")["NodeInterfacesReady"]
        assert (condition["status"], condition["reason"]) == ("False", "NodeReportedError")
        assert "node node-0" in condition["message"]
        assert "mtu 9001 above max 1500" in condition["message"]
        assert _conditions(world, "multus")["Ready"]["status"] == "True"  # EC2 side is fine
        writes = world.writer.status_writes
        await world.reconcile("multus")
        assert world.writer.status_writes == writes  # a standing error is written once

        world.report("node-0", _report(entry, interfaceName="ens6", error=""))
        await world.reconcile("multus")
        assert "NodeInterfacesReady" not in _conditions(world, "multus")
        assert _entries(world, "multus")["node-0"]["interfaceName"] == "ens6"


# --- the spec sync ----------------------------------------------------------------------


def _interfaces(world: ReconcileWorld, node: str) -> list[dict[str, Any]]:
    raw = world.eninodes.get(node)
    assert raw is not None
    interfaces: list[dict[str, Any]] = raw["spec"]["interfaces"]
    return interfaces


async def test_an_eninode_is_created_for_a_node_with_enis_and_written_only_on_change() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_node(1)
    world.add_nodeeni("multus", mtu=9001, **SELECTOR)
    await world.reconcile("multus")
    specs, writer = eninode_specs(world)
    entry = _entries(world, "multus")["node-0"]

    for node in specs.nodes():
        await specs.sync(node)
    await specs.sync("node-1")  # no ENI, no ENINode
    assert specs.nodes() == ["node-0"]
    assert world.eninodes.get("node-1") is None
    created = world.eninodes.get("node-0")
    assert created is not None
    assert created["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "name": "node-0",
            "uid": "node-uid-0",
            "blockOwnerDeletion": False,
            "controller": False,
        }
    ]
    assert _interfaces(world, "node-0") == [
        {
            "eniID": entry["eniID"],
            "macAddress": entry["macAddress"],
            "deviceIndex": 1,
            "nodeENI": "multus",
            "mtu": 9001,
        }
    ]
    await specs.sync("node-0")
    assert [kind for kind, _ in writer.writes] == ["create"]


async def test_label_off_empties_the_list_and_label_on_fills_it_again() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    specs, writer = eninode_specs(world)
    async with world.cleaning():
        for _ in range(2):  # off and on, twice
            world.view.changed(uid="uid-1")
            await world.reconcile("multus")
            await specs.sync("node-0")
            (entry,) = _interfaces(world, "node-0")
            assert entry["eniID"] == _entries(world, "multus")["node-0"]["eniID"]

            world.label("node-0", multus=None)
            world.view.changed(uid="uid-1")
            await world.reconcile("multus")
            await specs.sync("node-0")
            assert _interfaces(world, "node-0") == []  # kept, emptied: never deleted
            world.label("node-0", multus="on")
    assert [kind for kind, _ in writer.writes] == ["create", "patch", "patch", "patch"]


async def test_dpdk_is_asked_for_only_while_enabled_and_a_bad_edit_changes_nothing() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", enableDPDK=True, dpdkResourceName="intel.com/dpdk", **SELECTOR)
    await world.reconcile("multus")
    specs, _ = eninode_specs(world)
    await specs.sync("node-0")
    (entry,) = _interfaces(world, "node-0")
    assert entry["dpdk"] == {"driver": "vfio-pci", "resourceName": "intel.com/dpdk"}

    world.edit("multus", mtu=1)  # invalid: the node keeps what it has
    await world.reconcile("multus")
    await specs.sync("node-0")
    assert _interfaces(world, "node-0") == [entry]

    world.edit("multus", mtu=None, enableDPDK=False)
    await world.reconcile("multus")
    await specs.sync("node-0")
    (plain,) = _interfaces(world, "node-0")
    assert "dpdk" not in plain


async def test_nothing_is_written_for_a_node_that_went() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    specs, writer = eninode_specs(world)
    world.nodes.delete("node-0")
    await specs.sync("node-0")
    assert writer.writes == []

"""Compact and truncated NodeENI status through the real reconciler and the real
ENINode spec sync (tests/harness/reconciling.py, EC2 in memory): everything
that reads status.attachments back keeps working with compact entries, an
idle resync writes nothing, and a truncated status never takes an ENI away
from a node's ENINode. Thresholds lowered (StatusLimits) to stay small."""

from __future__ import annotations

from typing import Any

from eni_controller.model import COMPACT_ATTACHMENT_FIELDS
from eni_controller.reconcile.status_fit import COMPACT_STATUS, StatusLimits, json_size
from tests.harness.reconciling import ReconcileWorld, eninode_specs

SELECTOR = {"nodeSelector": {"multus": "on"}}
COMPACT_ABOVE_2 = StatusLimits(compact_above=2)


def _entries(world: ReconcileWorld) -> dict[str, dict[str, Any]]:
    return {a["nodeID"]: a for a in world.status("multus").get("attachments", [])}


def _conditions(world: ReconcileWorld) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in world.status("multus")["conditions"]}


def _interfaces(world: ReconcileWorld, node: str) -> list[dict[str, Any]]:
    raw = world.eninodes.get(node)
    return list((raw or {}).get("spec", {}).get("interfaces", []))


async def _settle(world: ReconcileWorld) -> None:
    """Reconcile until a pass writes nothing."""
    for _ in range(5):
        writes = world.writer.status_writes
        await world.reconcile("multus")
        if world.writer.status_writes == writes:
            return
    raise AssertionError("status still written after 5 passes")


async def test_compact_entries_feed_the_eninodes_and_an_idle_resync_writes_nothing() -> None:
    world = ReconcileWorld(instances=4, status_limits=COMPACT_ABOVE_2)
    for n in range(4):
        world.add_node(n, multus="on")
    world.add_nodeeni("multus", mtu=9001, **SELECTOR)
    await _settle(world)
    entries = _entries(world)
    assert len(entries) == 4
    assert all(tuple(a) == COMPACT_ATTACHMENT_FIELDS for a in entries.values())
    assert _conditions(world)[COMPACT_STATUS]["status"] == "True"
    assert _conditions(world)["Ready"]["status"] == "True"
    assert world.status("multus")["attachedCount"] == 4

    specs, writer = eninode_specs(world)
    for node in specs.nodes():
        await specs.sync(node)
    for node, entry in entries.items():
        (wanted,) = _interfaces(world, node)
        assert (wanted["eniID"], wanted["macAddress"], wanted["mtu"]) == (
            entry["eniID"],
            entry["macAddress"],
            9001,
        )

    # idle: the resync looks at EC2 again and writes nothing, twice over
    writes, specs_written = world.writer.status_writes, len(writer.writes)
    for _ in range(2):
        world.view.changed(uid="uid-1")
        await world.view.refresh()
        await world.reconcile("multus")
        for node in specs.nodes():
            await specs.sync(node)
    assert world.writer.status_writes == writes
    assert len(writer.writes) == specs_written

    # the agents' errors still reach the NodeENI; their interface names stay out of it
    entry = entries["node-1"]
    world.report(
        "node-1",
        {
            "eniID": entry["eniID"],
            "macAddress": entry["macAddress"],
            "operState": "absent",
            "interfaceName": "ens6",
            "error": "no link with this MAC",
        },
    )
    await world.reconcile("multus")
    assert "no link with this MAC" in _conditions(world)["NodeInterfacesReady"]["message"]
    assert "interfaceName" not in _entries(world)["node-1"]


async def test_a_hand_deleted_eni_of_a_compact_status_is_dropped_and_replaced() -> None:
    world = ReconcileWorld(instances=3, status_limits=COMPACT_ABOVE_2)
    for n in range(3):
        world.add_node(n, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await _settle(world)
    gone = _entries(world)["node-2"]["eniID"]

    await world.ec2.delete_network_interface(NetworkInterfaceId=gone)
    await world.view.refresh()
    await _settle(world)
    entries = _entries(world)
    assert len(entries) == 3
    assert entries["node-2"]["eniID"] != gone
    assert entries["node-2"]["status"] == "attached"
    assert world.mutating_calls()["CreateNetworkInterface"] == 4


async def test_shrinking_under_the_threshold_restores_full_entries_and_growing_compacts_again() -> (
    None
):
    world = ReconcileWorld(instances=3, status_limits=COMPACT_ABOVE_2)
    for n in range(3):
        world.add_node(n, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    async with world.cleaning():
        for _ in range(2):
            await _settle(world)
            assert COMPACT_STATUS in _conditions(world)
            assert all("instanceID" not in a for a in _entries(world).values())

            world.label("node-2", multus=None)
            world.view.changed(uid="uid-1")
            await _settle(world)
            assert COMPACT_STATUS not in _conditions(world)
            assert {a["nodeID"]: "instanceID" in a for a in _entries(world).values()} == {
                "node-0": True,
                "node-1": True,
            }
            world.label("node-2", multus="on")
            world.view.changed(uid="uid-1")


async def test_a_truncated_status_never_takes_an_eni_away_from_a_nodes_eninode() -> None:
    # node-3..5 first, within the budget (~1,080 bytes for 3 entries); then node-0..2
    # sort before them, and the budget cuts the list after about three entries
    budget = 1400
    world = ReconcileWorld(
        instances=6, status_limits=StatusLimits(compact_above=2, budget_bytes=budget)
    )
    for n in range(6):
        world.add_node(n, **({"multus": "on"} if n >= 3 else {}))
    world.add_nodeeni("multus", **SELECTOR)
    await _settle(world)
    assert len(_entries(world)) == 3
    assert _conditions(world)["Degraded"]["status"] == "False"
    specs, _ = eninode_specs(world)
    for node in specs.nodes():
        await specs.sync(node)
    before = {n: _interfaces(world, n) for n in ("node-3", "node-4", "node-5")}
    assert all(len(v) == 1 for v in before.values())

    for n in range(3):
        world.label(f"node-{n}", multus="on")
    world.view.changed(uid="uid-1")
    await _settle(world)
    status = world.status("multus")
    listed = {a["nodeID"] for a in status["attachments"]}
    assert json_size(status) <= budget
    assert {"node-0", "node-1", "node-2"} <= listed
    unlisted = {"node-3", "node-4", "node-5"} - listed
    assert unlisted, "the budget should have cut some entries"
    assert status["attachedCount"] == 6
    degraded = _conditions(world)["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "StatusTruncated")

    for node in sorted({*specs.nodes(), *before}):
        await specs.sync(node)
    for node in unlisted:
        assert _interfaces(world, node) == before[node]  # kept as it was
    for node in listed:
        assert len(_interfaces(world, node)) == 1

    # back under the budget: the whole list, and the ENINodes follow it again
    for n in range(3):
        world.label(f"node-{n}", multus=None)
    world.label("node-3", multus=None)
    world.view.changed(uid="uid-1")
    async with world.cleaning():
        await _settle(world)
    assert set(_entries(world)) == {"node-4", "node-5"}
    assert _conditions(world)["Degraded"]["status"] == "False"
    for node in sorted({*specs.nodes(), *before}):
        await specs.sync(node)
    assert _interfaces(world, "node-3") == []  # no longer held: released
    assert _interfaces(world, "node-4") == before["node-4"]

"""A NodeENI with more attachments than a full status holds: against the real API
server, the compact entries are accepted by the CRD, read back, and converge; the
round trip (grow past the threshold, shrink under it, grow again) switches the
form and the CompactStatus condition each way; an idle resync writes nothing.

The threshold is lowered (StatusLimits(compact_above=10)) so 30 Nodes are
enough; the bench (bench/wide_status.py) runs the real one at 5,000. Own API
server (tests/integration/conftest.py: own_api) and EC2 in memory behind the
controller's real client (tests/harness/memory_cluster.py), as the ENINode
scale test does.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes_asyncio import client

from eni_controller.controller import Controller
from eni_controller.model import COMPACT_ATTACHMENT_FIELDS
from eni_controller.reconcile.status_fit import COMPACT_STATUS, StatusLimits
from tests.harness.controller import condition, is_ready, wait_for_nodeeni
from tests.harness.eninodes import spec_interfaces
from tests.harness.kube import create_nodeeni
from tests.harness.memory_cluster import bounded, create_nodes, memory_controller
from tests.harness.memory_ec2 import SECURITY_GROUP, SUBNET, MemoryEC2
from tests.harness.waiting import until

NODES = 30
FEW = 5
LIMITS = StatusLimits(compact_above=10)


def _converged(count: int, *, compact: bool) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        entries = status.get("attachments") or []
        return (
            is_ready(obj)
            and status.get("attachedCount") == count
            and len(entries) == count
            and all(a.get("status") == "attached" for a in entries)
            and (condition(obj, COMPACT_STATUS).get("status") == "True") is compact
            and all(("instanceID" in a) is not compact for a in entries)
        )

    return check


async def _label(api: client.ApiClient, names: list[str], value: str | None) -> None:
    core = client.CoreV1Api(api)
    patch = {"metadata": {"labels": {"wide": value}}}
    await bounded([core.patch_node(name, cast(Any, patch)) for name in names])


def _reconciles(controller: Controller) -> float:
    registry = controller.metrics.registry
    return sum(
        registry.get_sample_value("eni_controller_reconcile_total", {"result": r}) or 0.0
        for r in ("success", "requeue", "error")
    )


def _eninodes_with_interfaces(controller: Controller) -> int:
    return sum(bool(spec_interfaces(o)) for o in controller.eninodes.list())


async def test_a_compact_status_is_written_read_back_and_converges_both_ways(
    own_api: client.ApiClient, unique: str
) -> None:
    instance_ids = [f"i-{n:017x}" for n in range(1, NODES + 1)]
    names = [f"{unique}-{n:02d}" for n in range(NODES)]
    await create_nodes(own_api, names, instance_ids, wide="on")
    ec2 = MemoryEC2(instance_ids)
    async with memory_controller(own_api, ec2, status_limits=LIMITS) as controller:
        await create_nodeeni(
            own_api,
            unique,
            {
                "nodeSelector": {"wide": "on"},
                "subnetIDs": [SUBNET["SubnetId"]],
                "securityGroupIDs": [SECURITY_GROUP["GroupId"]],
                "mtu": 9001,
            },
        )
        obj = await wait_for_nodeeni(own_api, unique, _converged(NODES, compact=True), within=60)
        entries = obj["status"]["attachments"]
        assert {tuple(sorted(a)) for a in entries} == {tuple(sorted(COMPACT_ATTACHMENT_FIELDS))}
        assert "kubectl get eninodes" in condition(obj, COMPACT_STATUS)["message"]
        # every node's ENINode is written from the compact entries, MAC and all
        await until(lambda: _eninodes_with_interfaces(controller) == NODES, within=60)
        for entry in entries:
            eninode = controller.eninodes.get(entry["nodeID"])
            assert eninode is not None
            (wanted,) = spec_interfaces(eninode)
            assert (wanted["eniID"], wanted["macAddress"], wanted["mtu"]) == (
                entry["eniID"],
                entry["macAddress"],
                9001,
            )

        # idle: a resync of everything writes no status
        writes, before = controller.writer.status_writes, _reconciles(controller)
        controller.resync()
        await until(lambda: _reconciles(controller) > before, within=30)
        assert controller.writer.status_writes == writes

        # shrink under the threshold: full entries, no CompactStatus
        await _label(own_api, names[FEW:], None)
        obj = await wait_for_nodeeni(own_api, unique, _converged(FEW, compact=False), within=60)
        assert all(a["instanceID"] in instance_ids for a in obj["status"]["attachments"])

        # and past it again
        await _label(own_api, names[FEW:], "on")
        await wait_for_nodeeni(own_api, unique, _converged(NODES, compact=True), within=60)
    print(f"FIGURE compact_status: {NODES} attachments, {controller.writer.status_writes} writes")

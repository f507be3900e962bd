"""At 500 per-node objects, the controller folds the agents' reports into the
NodeENI with at most one status write per report, and makes each ENINode once.

Real API server (one of its own: 500 Nodes and their ENINodes stay out of the
shared one, and nothing of the session's tests is reconciled here), the
controller in-process, EC2 in memory (tests/harness/memory_ec2.py) under the
controller's real EC2 client. EC2 is not what is measured: it only has to show
500 attached ENIs, which the session's moto could not hold (its seeded subnets
are /24s) and would keep for every later test. What is measured is all on the
Kubernetes side: ENINode informer events, the NodeENI reconcile reading every
report from the store at once, and its status writes (NodeENIWriter.status_writes).
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes_asyncio import client

from eni_controller.controller import Controller
from tests.harness.controller import is_ready, wait_for_nodeeni
from tests.harness.eninodes import interface_up, report, spec_interfaces
from tests.harness.kube import create_nodeeni
from tests.harness.memory_cluster import bounded, create_nodes, memory_controller
from tests.harness.memory_ec2 import SECURITY_GROUP, SUBNET, MemoryEC2
from tests.harness.waiting import until

NODES = 500


def _with_interfaces(controller: Controller) -> int:
    return sum(bool(spec_interfaces(o)) for o in controller.eninodes.list())


def _named(obj: dict[str, Any]) -> int:
    return sum("interfaceName" in a for a in (obj.get("status") or {}).get("attachments") or [])


async def test_500_reports_cost_at_most_one_nodeeni_status_write_each(
    own_api: client.ApiClient, unique: str
) -> None:
    instance_ids = [f"i-{n:017x}" for n in range(1, NODES + 1)]
    names = [f"{unique}-{n:03d}" for n in range(NODES)]
    await create_nodes(own_api, names, instance_ids, test=unique)
    ec2 = MemoryEC2(instance_ids)
    async with memory_controller(own_api, ec2) as controller:
        started = time.perf_counter()
        await create_nodeeni(
            own_api,
            unique,
            {
                "nodeSelector": {"test": unique},
                "subnetIDs": [SUBNET["SubnetId"]],
                "securityGroupIDs": [SECURITY_GROUP["GroupId"]],
            },
        )
        await wait_for_nodeeni(
            own_api,
            unique,
            lambda o: is_ready(o) and o["status"]["attachedCount"] == NODES,
            within=120,
        )
        await until(lambda: _with_interfaces(controller) == NODES, within=120)
        rolled_out = time.perf_counter() - started

        writes, calls = controller.writer.status_writes, sum(ec2.calls.values())
        started = time.perf_counter()
        await bounded(
            [
                report(own_api, name, [interface_up(spec_interfaces(obj)[0], "ens6")])
                for name in names
                if (obj := controller.eninodes.get(name)) is not None
            ]
        )
        reported = time.perf_counter() - started
        folded = await wait_for_nodeeni(own_api, unique, lambda o: _named(o) == NODES, within=120)
        elapsed = time.perf_counter() - started
        status_writes = controller.writer.status_writes - writes
        ec2_calls = sum(ec2.calls.values()) - calls

    print(
        f"FIGURE eninode_scale: {NODES} ENINodes; rollout {rolled_out:.1f}s; "
        f"{NODES} reports patched in {reported:.1f}s, all folded {elapsed:.1f}s after the first; "
        f"{status_writes} NodeENI status writes ({status_writes / NODES:.3f} per report); "
        f"{controller.eninode_writer.spec_writes} ENINode spec writes; "
        f"{ec2_calls} EC2 calls while folding"
    )
    assert {a["interfaceName"] for a in folded["status"]["attachments"]} == {"ens6"}
    assert 1 <= status_writes <= NODES
    assert controller.eninode_writer.spec_writes == NODES  # one create each, no rewrite

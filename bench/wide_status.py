"""Wide status: one NodeENI over 5,000 nodes, its status bytes and its writes.

Why: a status entry per attachment, in full ~410 bytes, makes ~2 MB at 5,000
attachments, past etcd's request limit (1.5 MiB): the status write would fail
after the EC2 work was done. This bench runs the real controller until a
NodeENI over every node is Ready and reports what its status costs.

Real local API server (etcd at its default --max-request-bytes, 1.5 MiB), 5,000
EKS-shaped Nodes (bench/eks_nodes.py; node names of the longest default form,
`ip-10-x-y-z.us-west-2.compute.internal`), the controller in-process with its
real informers, writers and EC2 client. EC2 is the in-memory one
(tests/harness/memory_ec2.py) behind that real client: moto's subnets and its
~100 ENIs/s would make 5,000 ENIs a run of its own, and EC2 is not what is
measured here.

The selection grows in three steps (label patches on the Nodes), so the status
is measured at each size as the API server serves it: 1,000, then 3,000, then
5,000 nodes selected, each step until Ready with every ENI attached. Reported:
status bytes and entry form at each step, the size the same status would have
in full (rendered from EC2's facts, as the controller would write it), whether
the API server takes that full status (one write to a scratch NodeENI),
status writes and failed reconciles, and the time each step took to converge.

    python -m bench.wide_status [--nodes 5000] [--out bench/results/wide_status.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bench import measure
from bench.eks_nodes import eks_node_body, eks_node_status
from eni_controller import logs, model
from eni_controller.controller import Controller
from eni_controller.kube.writes import MERGE_PATCH
from eni_controller.model import Attachment, AttachmentState
from eni_controller.reconcile import tags
from eni_controller.reconcile.status_fit import DEFAULT_LIMITS, StatusLimits, json_size
from tests.harness.apiserver import LocalAPIServer
from tests.harness.controller import condition, is_ready
from tests.harness.kube import api_client_from_kubeconfig, create_nodeeni, install_crd
from tests.harness.memory_cluster import bounded, memory_controller
from tests.harness.memory_ec2 import AZ, INSTANCE_TYPE, SECURITY_GROUP, SUBNET, MemoryEC2

DEFAULT_OUT: Final = Path("bench/results/wide_status.json")
NAME: Final = "wide"
LABEL: Final = "bench.eni-controller/wide"
STRATEGIC_MERGE: Final = "application/strategic-merge-patch+json"
EC2: Final = "in-memory EC2 (tests/harness/memory_ec2.py) behind the controller's real client"
STEP_TIMEOUT_SECONDS: Final = 1800.0
MIB: Final = 1024 * 1024


def node_name(index: int) -> str:
    ip = f"10.{1 + (index >> 16)}.{index >> 8 & 255}.{index & 255}"
    return f"ip-{ip.replace('.', '-')}.us-west-2.compute.internal"


def instance_id(index: int) -> str:
    return f"i-{index + 1:017x}"


def steps(nodes: int) -> list[int]:
    """The selection sizes measured: 1,000, 3,000 and 5,000 of 5,000 (fifths otherwise)."""
    return sorted({max(1, nodes // 5), max(1, 3 * nodes // 5), nodes})


def spec(*, selecting: str) -> dict[str, Any]:
    """A NodeENI over the Nodes labelled LABEL=`selecting`, MTU 9001."""
    return {
        "nodeSelector": {LABEL: selecting},
        "subnetIDs": [SUBNET["SubnetId"]],
        "securityGroupIDs": [SECURITY_GROUP["GroupId"]],
        "mtu": 9001,
    }


async def create_nodes(api: client.ApiClient, count: int) -> None:
    """`count` EKS-shaped Nodes (create, then the kubelet's status), none selected yet."""
    core: Any = client.CoreV1Api(api)  # Any: the stubs omit _preload_content

    async def one(index: int) -> None:
        body = eks_node_body(
            name=node_name(index),
            index=index,
            instance_id=instance_id(index),
            az=AZ,
            extra_labels={},
            instance_type=INSTANCE_TYPE,
        )
        await measure.expect_ok(core.create_node(body, _preload_content=False))
        await measure.expect_ok(
            core.patch_node_status(
                node_name(index),
                eks_node_status(name=node_name(index), index=index),
                _content_type=STRATEGIC_MERGE,
                _preload_content=False,
            )
        )

    await bounded([one(i) for i in range(count)])


async def select(api: client.ApiClient, indexes: Sequence[int]) -> None:
    core: Any = client.CoreV1Api(api)
    patch = {"metadata": {"labels": {LABEL: "on"}}}
    await bounded(
        [
            measure.expect_ok(
                core.patch_node(
                    node_name(i), patch, _content_type=STRATEGIC_MERGE, _preload_content=False
                )
            )
            for i in indexes
        ]
    )


async def served(api: client.ApiClient, name: str) -> tuple[dict[str, Any], int]:
    """The NodeENI as the API server serves it, and the bytes of its status there."""
    custom: Any = client.CustomObjectsApi(api)
    response = await custom.get_cluster_custom_object(
        model.GROUP, model.VERSION, model.PLURAL, name, _preload_content=False
    )
    try:
        raw = await response.read()
    finally:
        response.release()
    obj: dict[str, Any] = json.loads(raw)
    return obj, json_size(obj.get("status") or {})


def full_status(obj: dict[str, Any], ec2: MemoryEC2, *, now: str) -> dict[str, Any]:
    """The same status with every entry in full, from EC2's facts (as the planner
    makes them, with an interface name as an agent would report it)."""
    entries = []
    for eni in ec2.enis.values():
        found = eni.get("Attachment")
        if found is None:
            continue
        node = next(t["Value"] for t in eni["TagSet"] if t["Key"] == tags.NODE_KEY)
        entry = Attachment(
            node_id=node,
            instance_id=found["InstanceId"],
            eni_id=eni["NetworkInterfaceId"],
            attachment_id=found["AttachmentId"],
            subnet_id=eni["SubnetId"],
            subnet_cidr=str(SUBNET["CidrBlock"]),
            mac_address=eni["MacAddress"],
            private_ip_address=eni["PrivateIpAddress"],
            device_index=found["DeviceIndex"],
            mtu=9001,
            status=AttachmentState.ATTACHED,
            interface_name="ens6",
        )
        entries.append(entry.to_dict(last_updated=now))
    return {**obj["status"], "attachments": entries}


async def refused(api: client.ApiClient, status: dict[str, Any]) -> str:
    """Write `status` to a scratch NodeENI: "" if the API server takes it, else why not."""
    scratch = f"{NAME}-full-form"
    custom: Any = client.CustomObjectsApi(api)
    await create_nodeeni(api, scratch, spec(selecting="never"))
    try:
        await custom.patch_cluster_custom_object_status(
            model.GROUP,
            model.VERSION,
            model.PLURAL,
            scratch,
            {"status": status},
            _content_type=MERGE_PATCH,
        )
        return ""
    except ApiException as err:
        body = json.loads(err.body or "{}") if err.body else {}
        return f"HTTP {err.status}: {body.get('message', err.reason)}"[:300]
    finally:
        await custom.delete_cluster_custom_object(model.GROUP, model.VERSION, model.PLURAL, scratch)


def failed_reconciles(controller: Controller) -> dict[str, float]:
    registry = controller.metrics.registry
    return {
        s.labels["error"]: s.value
        for metric in registry.collect()
        if metric.name == "eni_controller_reconcile_errors"
        for s in metric.samples
        if s.name.endswith("_total") and s.value
    }


async def wait_converged(api: client.ApiClient, count: int, *, within: float) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            obj, _ = await served(api, NAME)
            status = obj.get("status") or {}
            if is_ready(obj) and status.get("attachedCount") == count == status.get("desiredCount"):
                return obj
            await asyncio.sleep(0.5)


async def run(state: Path, *, nodes: int, limits: StatusLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    server = LocalAPIServer(state / "api")
    endpoint = server.start()
    api = await api_client_from_kubeconfig(endpoint.kubeconfig)
    try:
        await install_crd(api)
        started = time.perf_counter()
        await create_nodes(api, nodes)
        create_seconds = time.perf_counter() - started
        ec2 = MemoryEC2([instance_id(i) for i in range(nodes)])
        result: dict[str, Any] = {
            "nodes": nodes,
            "ec2": EC2,
            "compact_above": limits.compact_above,
            "budget_bytes": limits.budget_bytes,
            "create_nodes_seconds": round(create_seconds, 1),
            "load_before": measure.loadavg(),
        }
        measured: list[dict[str, Any]] = []
        async with memory_controller(api, ec2, cluster="wide", status_limits=limits) as controller:
            selected = 0
            total_started = time.perf_counter()
            for count in steps(nodes):
                step_started = time.perf_counter()
                await select(api, range(selected, count))
                if selected == 0:
                    await create_nodeeni(api, NAME, spec(selecting="on"))
                selected = count
                await wait_converged(api, count, within=STEP_TIMEOUT_SECONDS)
                seconds = time.perf_counter() - step_started
                obj, size = await served(api, NAME)
                entries = (obj.get("status") or {}).get("attachments") or []
                compact = condition(obj, "CompactStatus").get("status") == "True"
                full = json_size(full_status(obj, ec2, now=time.strftime("%Y-%m-%dT%H:%M:%SZ")))
                measured.append(
                    {
                        "attachments": count,
                        "listed": len(entries),
                        "form": "compact" if compact else "full",
                        "status_bytes": size,
                        "status_mib": round(size / MIB, 3),
                        "bytes_per_entry": round(size / max(1, len(entries)), 1),
                        "full_form_bytes": full,
                        "full_form_mib": round(full / MIB, 3),
                        "converge_seconds": round(seconds, 1),
                        "status_writes_so_far": controller.writer.status_writes,
                    }
                )
                print(f"  {measured[-1]}", flush=True)
            total_seconds = time.perf_counter() - total_started
            failed = failed_reconciles(controller)  # before the scratch NodeENI's write
            writes = controller.writer.status_writes
            obj, _ = await served(api, NAME)
            result["full_form_write_at_max"] = (
                await refused(api, full_status(obj, ec2, now="2026-11-01T08:00:00Z")) or "accepted"
            )
            result |= {
                "steps": measured,
                "converge_seconds_total": round(total_seconds, 1),
                "status_writes": writes,
                # by error class: Conflict (409, a stale read retried) is no size failure
                "failed_reconciles": failed,
                "status_writes_failed_for_size": sum(
                    n for error, n in failed.items() if error != "Conflict"
                ),
                "enis_in_ec2": len(ec2.enis),
                "ec2_calls": dict(sorted(ec2.calls.items())),
                "load_after": measure.loadavg(),
            }
        final = measured[-1]
        result["target"] = {
            "text": f"{nodes} attachments converge, status ≤ 1 MiB",
            "status_bytes": final["status_bytes"],
            "met": final["status_bytes"] <= MIB and final["listed"] == nodes,
        }
        return result
    finally:
        await api.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logs.configure(level="warning", console=True)  # the controller runs in this process
    print(f"wide status: {args.nodes} nodes, EC2: {EC2}", flush=True)
    with tempfile.TemporaryDirectory() as state:
        result = asyncio.run(run(Path(state), nodes=args.nodes))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

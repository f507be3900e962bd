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

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from kubernetes_asyncio import client

from eni_controller.config import Config
from eni_controller.controller import Controller
from eni_controller.metrics import Metrics
from tests.harness.apiserver import APIServerEndpoint, LocalAPIServer
from tests.harness.controller import is_ready, wait_for_nodeeni
from tests.harness.ec2world import Instance
from tests.harness.eninodes import interface_up, report, spec_interfaces
from tests.harness.kube import api_client_from_kubeconfig, create_nodeeni, install_crd, node_body
from tests.harness.memory_ec2 import (
    AZ,
    INSTANCE_TYPE,
    SECURITY_GROUP,
    SUBNET,
    MemoryEC2,
    unpaced_client,
)
from tests.harness.waiting import until

NODES = 500
IN_FLIGHT = 32  # API requests of the test at once (Node creates, agents' status patches)


@pytest.fixture(scope="module")
def scale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServerEndpoint]:
    server = LocalAPIServer(tmp_path_factory.mktemp("eninode-scale-apiserver"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
async def scale_api(scale_server: APIServerEndpoint) -> AsyncIterator[client.ApiClient]:
    api = await api_client_from_kubeconfig(scale_server.kubeconfig)
    try:
        await install_crd(api)
        yield api
    finally:
        await api.close()


async def _bounded(calls: list[Any]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(call: Any) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(c) for c in calls))


@contextlib.asynccontextmanager
async def _controller(api: client.ApiClient, ec2: MemoryEC2) -> AsyncIterator[Controller]:
    metrics = Metrics()
    config = Config(vpc_id="vpc-1", cluster_name="scale", enable_leader_election=False)
    controller = Controller(
        config=config, api=api, ec2=unpaced_client(ec2, metrics=metrics), metrics=metrics
    )
    task = asyncio.create_task(controller.run())
    try:
        yield controller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _with_interfaces(controller: Controller) -> int:
    return sum(bool(spec_interfaces(o)) for o in controller.eninodes.list())


def _named(obj: dict[str, Any]) -> int:
    return sum("interfaceName" in a for a in (obj.get("status") or {}).get("attachments") or [])


async def test_500_reports_cost_at_most_one_nodeeni_status_write_each(
    scale_api: client.ApiClient, unique: str
) -> None:
    instance_ids = [f"i-{n:017x}" for n in range(1, NODES + 1)]
    names = [f"{unique}-{n:03d}" for n in range(NODES)]
    core = client.CoreV1Api(scale_api)
    await _bounded(
        [
            core.create_node(
                cast(
                    Any,
                    node_body(
                        name=name,
                        instance=Instance(id=instance, az=AZ, instance_type=INSTANCE_TYPE),
                        labels={"test": unique},
                    ),
                )
            )
            for name, instance in zip(names, instance_ids, strict=True)
        ]
    )
    ec2 = MemoryEC2(instance_ids)
    async with _controller(scale_api, ec2) as controller:
        started = time.perf_counter()
        await create_nodeeni(
            scale_api,
            unique,
            {
                "nodeSelector": {"test": unique},
                "subnetIDs": [SUBNET["SubnetId"]],
                "securityGroupIDs": [SECURITY_GROUP["GroupId"]],
            },
        )
        await wait_for_nodeeni(
            scale_api,
            unique,
            lambda o: is_ready(o) and o["status"]["attachedCount"] == NODES,
            within=120,
        )
        await until(lambda: _with_interfaces(controller) == NODES, within=120)
        rolled_out = time.perf_counter() - started

        writes, calls = controller.writer.status_writes, sum(ec2.calls.values())
        started = time.perf_counter()
        await _bounded(
            [
                report(scale_api, name, [interface_up(spec_interfaces(obj)[0], "ens6")])
                for name in names
                if (obj := controller.eninodes.get(name)) is not None
            ]
        )
        reported = time.perf_counter() - started
        folded = await wait_for_nodeeni(scale_api, unique, lambda o: _named(o) == NODES, within=120)
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

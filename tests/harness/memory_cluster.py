"""A real API server of a test module's own with many Nodes, and the controller
in-process over the in-memory EC2 (memory_ec2.py) behind its real EC2 client.

Why: scale tests (hundreds of Nodes, thousands of status entries) must not leave
their Nodes in the session's shared API server, where every later test's
informers would list them, and EC2 is not what they measure: moto's seeded /24
subnets cannot hold their ENIs. The API server, the informers, the writes and
the controller are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from kubernetes_asyncio import client

from eni_controller.config import Config
from eni_controller.controller import Controller
from eni_controller.metrics import Metrics
from eni_controller.reconcile.status_fit import DEFAULT_LIMITS, StatusLimits
from tests.harness.apiserver import APIServerEndpoint, LocalAPIServer
from tests.harness.ec2world import Instance
from tests.harness.kube import node_body
from tests.harness.memory_ec2 import AZ, INSTANCE_TYPE, MemoryEC2, unpaced_client

IN_FLIGHT = 32  # API requests a test keeps in flight (Node creates, agents' patches)


def own_api_server(state: Path) -> Iterator[APIServerEndpoint]:
    """A module fixture's body: an API server in `state`, stopped after the module."""
    server = LocalAPIServer(state)
    try:
        yield server.start()
    finally:
        server.stop()


async def bounded(calls: Sequence[Awaitable[Any]], *, limit: int = IN_FLIGHT) -> None:
    """Await every call, at most `limit` at once."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Awaitable[Any]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(c) for c in calls))


async def create_nodes(
    api: client.ApiClient, names: Sequence[str], instance_ids: Sequence[str], **labels: str
) -> None:
    """One Node per name, on the instance of the same position, with `labels`."""
    core = client.CoreV1Api(api)
    await bounded(
        [
            core.create_node(
                cast(
                    Any,
                    node_body(
                        name=name,
                        instance=Instance(id=instance, az=AZ, instance_type=INSTANCE_TYPE),
                        labels=dict(labels),
                    ),
                )
            )
            for name, instance in zip(names, instance_ids, strict=True)
        ]
    )


@contextlib.asynccontextmanager
async def memory_controller(
    api: client.ApiClient,
    ec2: MemoryEC2,
    *,
    cluster: str = "scale",
    status_limits: StatusLimits = DEFAULT_LIMITS,
) -> AsyncIterator[Controller]:
    """The controller running in-process (no leader election) until the block ends."""
    metrics = Metrics()
    config = Config(vpc_id="vpc-1", cluster_name=cluster, enable_leader_election=False)
    controller = Controller(
        config=config,
        api=api,
        ec2=unpaced_client(ec2, metrics=metrics),
        metrics=metrics,
        status_limits=status_limits,
    )
    task = asyncio.create_task(controller.run())
    try:
        yield controller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Run the real controller in the test's event loop, against the real API
server and the moto server, and wait for what it should achieve."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes_asyncio import client

from eni_controller import model
from eni_controller.aws.ec2 import EC2Client, connect_ec2
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import Config
from eni_controller.controller import Controller
from eni_controller.metrics import Metrics
from tests.harness.ec2world import FAKE_CREDENTIALS, World
from tests.harness.kube import NodeFactory
from tests.harness.procs import free_port, spawn
from tests.harness.realism.control import RealismControl
from tests.harness.waiting import until

if TYPE_CHECKING:
    from tests.conftest import NodeENIs

FAST_RETRY = RetryPolicy(max_attempts=8, base_seconds=0.02, max_backoff_seconds=0.5)
CONTROLLER_COMMAND = (sys.executable, "-m", "eni_controller", "run", "--log-format", "json")


def controller_env(world: World, kubeconfig: Path, **settings: str) -> dict[str, str]:
    """The environment `eni-controller run` gets in a pod, pointed at the local servers."""
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "AWS_ENDPOINT_URL": world.endpoint,
        "AWS_REGION": world.region,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
        "VPC_ID": world.vpc_id,
        "RECONCILE_PERIOD": "30s",
        "BIND_ADDRESS": "127.0.0.1",
        "METRICS_PORT": str(free_port()),
        "HEALTH_PROBE_PORT": str(free_port()),
        **settings,
    }


def spawn_controller(
    world: World, kubeconfig: Path, *, state_dir: Path, name: str = "controller", **settings: str
) -> subprocess.Popen[bytes]:
    """`eni-controller run` as its own process; log and pid file in `state_dir`."""
    return spawn(
        CONTROLLER_COMMAND,
        log_path=state_dir / f"{name}.log",
        pid_path=state_dir / f"{name}.pid",
        env=controller_env(world, kubeconfig, **settings),
    )


def controller_config(world: World, **overrides: Any) -> Config:
    return replace(
        # in-process controllers of consecutive tests: no Lease between them
        Config(
            aws_region=world.region,
            aws_endpoint_url=world.endpoint,
            vpc_id=world.vpc_id,
            enable_leader_election=False,
        ),
        **overrides,
    )


@contextlib.asynccontextmanager
async def running_controller(
    api: client.ApiClient,
    config: Config,
    *,
    metrics: Metrics | None = None,
    read_timeout_seconds: float = 30.0,
    on_ec2: Callable[[EC2Client], None] | None = None,
    retry: RetryPolicy = FAST_RETRY,
) -> AsyncIterator[Controller]:
    """The controller running in this event loop until the block ends.

    `read_timeout_seconds` is the EC2 client's (the product's is 30 s: a test of
    timeouts shortens it to stay quick); `on_ec2` sees the EC2 client before the
    controller gets it (a test recording every attempt wraps it there); `retry`
    is the EC2 client's retry policy."""
    metrics = metrics or Metrics()
    async with connect_ec2(
        config, metrics=metrics, retry=retry, read_timeout_seconds=read_timeout_seconds
    ) as ec2:
        if on_ec2 is not None:
            on_ec2(ec2)
        controller = Controller(config=config, api=api, ec2=ec2, metrics=metrics)
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(
                asyncio.gather(controller.nodeenis.wait_synced(), controller.nodes.wait_synced()),
                timeout=30,
            )
            yield controller
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def quiet(controller: Controller, unique: str, *, within: float = 60.0) -> None:
    """Until earlier tests' leftovers are gone: the cleanup pool is idle and the
    informer holds only this test's NodeENIs (named `unique`...). Their deletions
    would otherwise land in the EC2 server's call counts a test compares."""
    await until(
        lambda: (
            controller.cleanup.idle
            and all(o["metadata"]["name"].startswith(unique) for o in controller.nodeenis.list())
        ),
        within=within,
    )


async def read_nodeeni(api: client.ApiClient, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await client.CustomObjectsApi(api).get_cluster_custom_object(
        model.GROUP, model.VERSION, model.PLURAL, name
    )
    return obj


async def wait_for_nodeeni(
    api: client.ApiClient,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    within: float = 30.0,
) -> dict[str, Any]:
    """Poll until `predicate(obj)`; after `within` seconds fail with the last status seen."""
    obj: dict[str, Any] = {}
    try:
        async with asyncio.timeout(within):
            while True:
                obj = await read_nodeeni(api, name)
                if predicate(obj):
                    return obj
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"{name} never got there; last status: {obj.get('status')}") from None


def reconcile_errors(metrics: Metrics, error: str) -> float:
    """Failed reconciles so far whose error class (the metric's label) is `error`."""
    value = metrics.registry.get_sample_value(
        "eni_controller_reconcile_errors_total", {"error": error}
    )
    return value or 0.0


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            found: dict[str, Any] = item
            return found
    return {}


def is_ready(obj: dict[str, Any]) -> bool:
    return condition(obj, "Ready").get("status") == "True"


@dataclass(frozen=True, kw_only=True, slots=True)
class AWSEnv:
    """What a controller test works with: the API server, Node and NodeENI
    factories, the EC2 world with AWS rules on, and a unique name."""

    api: client.ApiClient
    nodes: NodeFactory
    nodeenis: NodeENIs
    world: World
    realism: RealismControl
    unique: str
    aws_rules: bool = True  # the realism layer's AWS rules are on (False: plain moto)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.api, self.nodes, self.nodeenis, self.world, self.realism, self.unique))

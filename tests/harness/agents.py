"""Simulated nodes with their ENINodes, and node agents in-process or as processes.

A simulated node is a Node object in the real API server, its ENINode (owned
by it), a network namespace and the hypervisor that plugs ENIs into it
(tests/harness/netns.py). The test writes the ENINode spec as the controller
would; agents run either as tasks of the test's loop (one per namespace) or as
real `python -m eni_controller agent` processes, for kill -9.

Everything created is removed on the way out, whatever happened: agents
stopped, ENINodes and Nodes deleted, namespaces (and their links) removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.agent.agent import Agent, DevicePlugin
from eni_controller.agent.links import NetlinkLinks
from eni_controller.agent.metrics import AgentMetrics
from eni_controller.agent.pci import PCIDevices
from eni_controller.eninode import (
    GROUP,
    PLURAL,
    VERSION,
    ENINodeSpec,
    ENINodeStatus,
    InterfaceStatus,
    WantedInterface,
    eninode_body,
    parse_status,
)
from tests.harness.kube import MERGE_PATCH, REPO
from tests.harness.netns import Hypervisor, LinkState, namespaces
from tests.harness.procs import LOOPBACK, free_port
from tests.harness.waiting import until_async

REAP_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class SimNode:
    name: str  # the Node's and the ENINode's name
    netns: str
    uid: str
    hypervisor: Hypervisor


class ENINodes:
    """Reads and writes ENINodes as the controller would (spec) and as a test reads them."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    async def create(self, node: SimNode, spec: ENINodeSpec) -> dict[str, Any]:
        body = eninode_body(node_name=node.name, node_uid=node.uid, spec=spec)
        created: dict[str, Any] = await self.custom.create_cluster_custom_object(
            GROUP, VERSION, PLURAL, body
        )
        return created

    async def set_spec(self, name: str, spec: ENINodeSpec) -> dict[str, Any]:
        """Replace the spec (a merge patch replaces the list as a whole)."""
        return await self._patch(name, {"spec": spec.to_dict()})

    async def label(self, name: str, key: str, value: str) -> dict[str, Any]:
        """A metadata-only change: wakes the agent without changing what it must do."""
        return await self._patch(name, {"metadata": {"labels": {key: value}}})

    async def _patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = await self.custom.patch_cluster_custom_object(
            GROUP,
            VERSION,
            PLURAL,
            name,
            body,
            _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # missing from the stubs
        )
        return patched

    async def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await self.custom.get_cluster_custom_object(
            GROUP, VERSION, PLURAL, name
        )
        return obj

    async def status(self, name: str) -> ENINodeStatus:
        return parse_status((await self.get(name)).get("status"))

    async def delete(self, name: str) -> None:
        try:
            await self.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        except ApiException as err:
            if err.status != HTTPStatus.NOT_FOUND:
                raise


@contextlib.asynccontextmanager
async def simulated_nodes(
    api: client.ApiClient, *, prefix: str, count: int
) -> AsyncIterator[list[SimNode]]:
    """``count`` nodes named ``<prefix>-n<i>``, each with a namespace of the same name."""
    core = client.CoreV1Api(api)
    names = [f"{prefix}-n{i}" for i in range(1, count + 1)]
    eninodes = ENINodes(api)
    created: list[str] = []
    with namespaces(names):
        try:
            nodes = []
            for name in names:
                node = await core.create_node(cast(Any, {"metadata": {"name": name}}))
                created.append(name)
                nodes.append(
                    SimNode(
                        name=name, netns=name, uid=node.metadata.uid, hypervisor=Hypervisor(name)
                    )
                )
            yield nodes
        finally:
            for name in created:
                await eninodes.delete(name)
                with contextlib.suppress(ApiException):
                    await core.delete_node(name)


@contextlib.asynccontextmanager
async def in_process_agent(
    api: client.ApiClient,
    node: SimNode,
    *,
    pci: PCIDevices | None = None,
    device_plugin: DevicePlugin | None = None,
    backoff_base_seconds: float = 0.2,
) -> AsyncIterator[Agent]:
    """An agent for ``node`` as a task of this loop, stopped on the way out."""
    async with NetlinkLinks(netns=node.netns) as links:
        agent = Agent(
            node_name=node.name,
            api=api,
            links=links,
            metrics=AgentMetrics(),
            pci=pci,
            device_plugin=device_plugin,
            backoff_base_seconds=backoff_base_seconds,
        )
        task = asyncio.create_task(agent.run(), name=f"agent-{node.name}")
        try:
            yield agent
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"agent {node.name} crashed") from task.exception()


@dataclass
class AgentProcess:
    """`python -m eni_controller agent` for one simulated node, as a real process."""

    node: SimNode
    kubeconfig: Path
    log_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"agent-{self.node.name}-{self.starts}.log"

    def start(self, **extra_env: str) -> subprocess.Popen[bytes]:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the agent is still running")
        self.starts += 1
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "KUBECONFIG": str(self.kubeconfig),
            "NODE_NAME": self.node.name,
            "AGENT_NETNS": self.node.netns,
            "AGENT_HEALTH_PORT": str(self.port),
            "BIND_ADDRESS": LOOPBACK,
            "LOG_LEVEL": "info",
            **extra_env,
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eni_controller", "agent", "--log-format", "json"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    def get(self, path: str) -> tuple[int, str]:
        """GET one of the agent's HTTP paths: (status, body); (0, "") when unreachable."""
        url = f"http://{LOOPBACK}:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    async def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"agent exited:\n{self.log_tail()}")
        status, _ = await asyncio.to_thread(self.get, "/readyz")
        return status == 200

    async def metric(self, name: str) -> float:
        """The sum of a metric's samples whose line starts with ``name`` (0 when absent)."""
        _, text = await asyncio.to_thread(self.get, "/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def kill(self) -> None:
        """SIGKILL (no cleanup of any kind runs in the agent) and reap."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, REAP_SECONDS)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# -- what tests wait for ----------------------------------------------------------

JUMBO = 9001
SETTLE = 30.0  # seconds a condition may take before a test fails (correctness, not speed)


def new_eni() -> tuple[str, str]:
    """A fresh ENI id and MAC (locally administered, as EC2's are)."""
    mac = "02:" + ":".join(secrets.token_hex(1) for _ in range(5))
    return f"eni-{secrets.token_hex(9)[:17]}", mac


def entry(eni: tuple[str, str], index: int, *, mtu: int | None = JUMBO) -> WantedInterface:
    """A spec entry as the controller writes it for a NodeENI named multus."""
    return WantedInterface(
        eni_id=eni[0], mac_address=eni[1], device_index=index, node_eni="multus", mtu=mtu
    )


async def link_is(hv: Hypervisor, mac: str, *, mtu: int, up: bool = True) -> LinkState | None:
    """The link with ``mac`` when it is at ``mtu`` and admin ``up``, else None."""
    state = await hv.link(mac)
    if state is not None and state.mtu == mtu and state.admin_up == up:
        return state
    return None


async def wait_link(hv: Hypervisor, mac: str, *, mtu: int) -> LinkState:
    """Until the link with ``mac`` is admin up at ``mtu``; returns it."""
    await until_async(lambda: link_is(hv, mac, mtu=mtu), within=SETTLE)
    state = await hv.link(mac)
    assert state is not None
    return state


async def wait_entry(
    eninodes: ENINodes, node: str, eni_id: str, *, ready: int | None = None, **facts: object
) -> InterfaceStatus:
    """Until the node's status has an entry for ``eni_id`` with ``facts`` (and the
    summary counts ``ready``); returns the entry."""

    async def check() -> bool:
        status = await eninodes.status(node)
        found = status.by_eni().get(eni_id)
        if found is None or (ready is not None and status.summary.ready != ready):
            return False
        return all(getattr(found, key) == value for key, value in facts.items())

    await until_async(check, within=SETTLE)
    return (await eninodes.status(node)).by_eni()[eni_id]


async def wait_cycle(agent: Agent, eninodes: ENINodes, node: str) -> None:
    """A barrier: wake the agent with a change that asks nothing of it (a label),
    and wait until it has run a cycle after that change."""
    before = agent.cycles
    await eninodes.label(node, "test/poke", secrets.token_hex(4))

    async def cycled() -> bool:
        return agent.cycles > before

    await until_async(cycled, within=SETTLE)


async def attach(eninodes: ENINodes, node: SimNode, *enis: tuple[str, str]) -> ENINodeSpec:
    """What the controller and EC2 do when ``enis`` are attached to ``node``: each
    appears as a link in the node's namespace, and the node's ENINode lists them
    (device index 1, 2, ... in order, MTU 9001). Returns the spec written."""
    for eni in enis:
        await node.hypervisor.plug(eni[1])
    spec = ENINodeSpec.of([entry(eni, index) for index, eni in enumerate(enis, 1)])
    await eninodes.create(node, spec)
    return spec

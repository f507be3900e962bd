"""A Reconciler over in-memory parts, for unit tests through `reconcile()`.

The Kubernetes side is the informers' real Stores (with the controller's
indexes; ENINodes, whose agents' reports the reconciler folds in, are put
there by the test as an agent would write them) and a writer that applies
merge patches to it as the API server would (resourceVersion checked and
bumped, 409 on a stale one); Events are recorded in a list. The EC2 side is
the real EC2 view, executor and cleanup pool over the in-memory EC2
(memory_ec2.py) through the real EC2 client.
What is real is what the reconciler decides with; only the transports are
replaced.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from eni_controller import model
from eni_controller.config import Config
from eni_controller.kube.eninode_writes import ENINodeWriter
from eni_controller.kube.events import EventRecorder
from eni_controller.kube.informer import (
    ATTACHED_NODES_INDEX,
    LABELS_INDEX,
    node_labels_index,
    nodeeni_attached_nodes_index,
)
from eni_controller.kube.store import Store
from eni_controller.kube.writes import Conflict, NodeENIWriter
from eni_controller.metrics import Metrics
from eni_controller.reconcile.cleanup import CleanupPool
from eni_controller.reconcile.ec2view import EC2View
from eni_controller.reconcile.eninode_sync import ENINodeSpecs
from eni_controller.reconcile.executor import Executor
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.reconciler import EC2Side, KubeSide, Reconciler
from eni_controller.reconcile.status_fit import DEFAULT_LIMITS, StatusLimits
from eni_controller.reconcile.tokens import ClientTokens
from tests.harness.identity import known_identity
from tests.harness.memory_ec2 import AZ, SECURITY_GROUP, SUBNET, RulesMemoryEC2, unpaced_client

CLUSTER = "unit"


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 in place: objects merge, null removes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class StoreWriter:
    """NodeENIWriter's surface over a Store: each write lands at once, as the
    informer would show it, with the API server's optimistic concurrency."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._versions = itertools.count(1000)
        self.status_writes = 0
        self.writes: list[tuple[str, dict[str, Any]]] = []  # (name, body) in order

    async def caught_up(self, name: str) -> None:
        return None

    async def patch_status(
        self, name: str, patch: dict[str, Any], *, resource_version: str
    ) -> None:
        self._write(name, {"status": patch.get("status", patch)}, resource_version)
        self.status_writes += 1

    async def set_finalizers(
        self, name: str, finalizers: Sequence[str], *, resource_version: str
    ) -> dict[str, Any]:
        return self._write(name, {"metadata": {"finalizers": list(finalizers)}}, resource_version)

    async def annotate(
        self, name: str, key: str, value: str, *, resource_version: str
    ) -> dict[str, Any]:
        return self._write(name, {"metadata": {"annotations": {key: value}}}, resource_version)

    def _write(self, name: str, body: dict[str, Any], resource_version: str) -> dict[str, Any]:
        stored = self._store.get(name)
        if stored is None or stored["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(f"{name}: 409")
        updated = copy.deepcopy(stored)
        merge_patch(updated, body)
        updated["metadata"]["resourceVersion"] = str(next(self._versions))
        if updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get(
            "finalizers"
        ):
            self._store.delete(name)  # the API server lets it go
        else:
            self._store.put(updated)
        self.writes.append((name, body))
        return copy.deepcopy(updated)


class StoreENINodeWriter:
    """ENINodeWriter's surface over the ENINode store, as the API server would apply it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.writes: list[tuple[str, dict[str, Any]]] = []

    async def create(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if self._store.get(name) is not None:
            raise Conflict(name)
        self._store.put(copy.deepcopy(body))
        self.writes.append(("create", body))

    async def patch(self, name: str, patch: dict[str, Any]) -> None:
        stored = copy.deepcopy(self._store.get(name))
        if stored is None:
            raise Conflict(name)
        merge_patch(stored, patch)
        self._store.put(stored)
        self.writes.append(("patch", patch))


@dataclass
class RecordedEvents:
    """EventRecorder's surface: every occurrence, in order."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)

    async def record(
        self, nodeeni: model.NodeENI, *, type_: str, reason: str, message: str, count: int = 1
    ) -> None:
        self.seen.extend([(type_, reason, message)] * count)

    def record_soon(
        self, nodeeni: model.NodeENI, *, type_: str, reason: str, message: str, count: int = 1
    ) -> None:
        self.seen.extend([(type_, reason, message)] * count)

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.seen]


class ReconcileWorld:
    """Nodes, NodeENIs and EC2 in memory, and the Reconciler over them."""

    def __init__(
        self, instances: int = 3, *, status_limits: StatusLimits = DEFAULT_LIMITS, **config: Any
    ) -> None:
        self.instance_ids = [f"i-{n:017x}" for n in range(1, instances + 1)]
        self.ec2 = RulesMemoryEC2(self.instance_ids)
        self.metrics = Metrics()
        client = unpaced_client(self.ec2, metrics=self.metrics)
        self.nodes = Store({LABELS_INDEX: node_labels_index})
        self.nodeenis = Store({ATTACHED_NODES_INDEX: nodeeni_attached_nodes_index})
        self.eninodes = Store()
        self.writer = StoreWriter(self.nodeenis)
        self.events = RecordedEvents()
        self.view = EC2View(client, vpc_id="vpc-1")
        self.allocator = allocator = DeviceIndexAllocator()
        self.executor = executor = Executor(
            client,
            allocator,
            metrics=self.metrics,
            cluster=known_identity(name=CLUSTER, vpc_id="vpc-1"),
            tokens=ClientTokens(),
        )
        self.cleanup = CleanupPool(
            client,
            workers=2,
            detach_timeout=5.0,
            on_done=self._cleaned,
            metrics=self.metrics,
            on_detached=self._detached,
            on_deleted=self._deleted,
        )
        self.reconciler = Reconciler(
            config=Config(**config),
            kube=KubeSide(
                nodeenis=self.nodeenis,
                nodes=self.nodes,
                eninodes=self.eninodes,
                writer=cast(NodeENIWriter, self.writer),
                events=cast(EventRecorder, self.events),
                status_limits=status_limits,
            ),
            ec2=EC2Side(view=self.view, executor=executor, cleanup=self.cleanup),
            metrics=self.metrics,
        )
        self._uids = itertools.count(1)

    async def reconcile(self, name: str) -> float | None:
        return await self.reconciler.reconcile(name)

    # the cleanup pool's callbacks, as the controller wires them
    def _detached(self, instance_id: str, index: int) -> None:
        self.allocator.release(instance_id, index)
        self.view.changed(instance=instance_id)

    def _deleted(self, eni_id: str) -> None:
        self.executor.gone(eni_id)
        self.view.deleted(eni_id)

    def _cleaned(self, owner: str) -> None:
        raw = self.nodeenis.get(owner)
        if raw is not None:
            self.view.changed(uid=raw["metadata"]["uid"])

    def add_node(self, index: int, **labels: str) -> str:
        """Node `node-<index>` on the index-th instance; returns its name."""
        name = f"node-{index}"
        self.nodes.put(
            {
                "metadata": {"name": name, "uid": f"node-uid-{index}", "labels": labels},
                "spec": {"providerID": f"aws:///{AZ}/{self.instance_ids[index]}"},
            }
        )
        return name

    def label(self, node: str, **labels: str | None) -> None:
        raw = copy.deepcopy(self.nodes.get(node))
        assert raw is not None
        merge_patch(raw["metadata"].setdefault("labels", {}), dict(labels))
        self.nodes.put(raw)

    def add_nodeeni(self, name: str, **spec: Any) -> dict[str, Any]:
        raw = {
            "apiVersion": f"{model.GROUP}/{model.VERSION}",
            "kind": model.KIND,
            "metadata": {
                "name": name,
                "uid": f"uid-{next(self._uids)}",
                "resourceVersion": "1",
                "generation": 1,
            },
            "spec": {
                "subnetIDs": [SUBNET["SubnetId"]],
                "securityGroupIDs": [SECURITY_GROUP["GroupId"]],
                **spec,
            },
        }
        self.nodeenis.put(raw)
        return raw

    def edit(self, name: str, **spec: Any) -> None:
        raw = copy.deepcopy(self.nodeenis.get(name))
        assert raw is not None
        merge_patch(raw["spec"], spec)
        raw["metadata"]["generation"] += 1
        raw["metadata"]["resourceVersion"] += "e"
        self.nodeenis.put(raw)

    def delete(self, name: str) -> None:
        """kubectl delete: the API server sets deletionTimestamp (finalizers hold it)."""
        raw = copy.deepcopy(self.nodeenis.get(name))
        assert raw is not None
        raw["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        raw["metadata"]["resourceVersion"] += "d"
        self.nodeenis.put(raw)

    def report(self, node: str, *interfaces: dict[str, Any]) -> None:
        """The node's agent writes these `status.interfaces` into its ENINode."""
        raw = copy.deepcopy(self.eninodes.get(node)) or {"metadata": {"name": node}}
        raw["status"] = {"interfaces": [dict(i) for i in interfaces]}
        self.eninodes.put(raw)

    def status(self, name: str) -> dict[str, Any]:
        raw = self.nodeenis.get(name)
        assert raw is not None
        status: dict[str, Any] = raw.get("status") or {}
        return status

    def mutating_calls(self) -> dict[str, int]:
        return {a: n for a, n in self.ec2.calls.items() if not a.startswith("Describe")}

    def describes(self) -> int:
        return sum(n for a, n in self.ec2.calls.items() if a.startswith("Describe"))

    @asynccontextmanager
    async def cleaning(self) -> AsyncIterator[None]:
        """The cleanup pool's workers running for the block."""
        task = asyncio.create_task(self.cleanup.run())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def eninode_specs(world: ReconcileWorld) -> tuple[ENINodeSpecs, StoreENINodeWriter]:
    """The real ENINode spec sync over the world's stores, and its writer."""
    writer = StoreENINodeWriter(world.eninodes)
    specs = ENINodeSpecs(
        nodeenis=world.nodeenis,
        nodes=world.nodes,
        eninodes=world.eninodes,
        writer=cast(ENINodeWriter, writer),
    )
    return specs, writer

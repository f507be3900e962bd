"""One node's ENINode spec made what the NodeENIs' status says (issue 18): the
I/O shell around eninodes.desired_interfaces, run from the controller's ENINode
queue (keyed by node name) while leading.

Invariants:

* Written only from NodeENI status, so a spec never names an ENI before EC2
  showed it attached to that node; written only when the spec or the owner
  reference differs from what the ENINode informer shows.
* An ENINode is created only for a node with an ENI, owned by the Node, and
  never deleted here (no ENIs left: an empty list); it goes with its Node.
  Nothing for a Node the informer does not have.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

import structlog

from eni_controller import eninode
from eni_controller.kube.eninode_writes import ENINodeWriter
from eni_controller.kube.informer import ATTACHED_NODES_INDEX
from eni_controller.reconcile.eninodes import (
    desired_interfaces,
    holder,
    new_eninode,
    owner_reference,
    spec_patch,
)

log = structlog.get_logger(__name__)


class Store(Protocol):
    """What the sync and the reconciler read from an informer."""

    def get(self, name: str) -> dict[str, Any] | None: ...
    def by_index(self, index_name: str, value: str) -> builtins.list[dict[str, Any]]: ...
    def index_values(self, index_name: str) -> builtins.list[str]: ...
    def list(self) -> builtins.list[dict[str, Any]]: ...


class ENINodeSpecs:
    """Syncs one node's ENINode spec at a time (the queue sees to one per node)."""

    def __init__(
        self, *, nodeenis: Store, nodes: Store, eninodes: Store, writer: ENINodeWriter
    ) -> None:
        self._nodeenis = nodeenis
        self._nodes = nodes
        self._eninodes = eninodes
        self._writer = writer

    async def sync(self, node: str) -> None:
        raw_node = self._nodes.get(node)
        owner = owner_reference(raw_node) if raw_node is not None else None
        if owner is None:
            return  # the Node went: its ENINode goes with it
        current = self._eninodes.get(node)
        now = eninode.parse_spec(current.get("spec"))[0].interfaces if current is not None else ()
        held = self._nodeenis.by_index(ATTACHED_NODES_INDEX, node)
        holders = [h for raw in held if (h := holder(raw, node=node)) is not None]
        # a NodeENI with a truncated status may hold ENIs here that it cannot list
        named = {h.nodeeni for h in holders}
        for name in sorted({c.node_eni for c in now} - named):
            raw = self._nodeenis.get(name)
            share = holder(raw, node=node) if raw is not None else None
            if share is not None and share.truncated:
                holders.append(share)
        desired = desired_interfaces(holders, current=now)
        if current is None:
            if desired:
                await self._writer.create(new_eninode(node, desired, owner=owner))
                log.info("eninode created", node=node, interfaces=len(desired))
            return
        patch = spec_patch(current, desired, owner=owner)
        if patch is not None:
            await self._writer.patch(node, patch)
            log.info("eninode spec updated", node=node, interfaces=len(desired))

    def nodes(self) -> list[str]:
        """Every node a resync looks at: those with an ENINode or an attachment."""
        names = {str((raw.get("metadata") or {}).get("name")) for raw in self._eninodes.list()}
        names.update(self._nodeenis.index_values(ATTACHED_NODES_INDEX))
        return sorted(names)

"""The controller's decisions about ENINodes (issue 18), as pure functions.

An ENINode (cluster-scoped, named and owned by its Node) has one writer per
half: the controller writes its spec (the ENIs the node should have), the
node's agent its status (what it found and did). The object itself is
eni_controller/eninode.py's, shared with the agent; the I/O shell around these
functions is eninode_sync.py and the reconciler.

* `desired_interfaces`: one entry per *attached* ENI, sorted, so an unchanged
  set is an unchanged object and `spec_patch` answers None. A NodeENI whose
  spec is invalid, or whose status is truncated, keeps its entries as they
  are: a typo never takes an MTU or a DPDK binding from a running ENI.
* `fold_reports`: a NodeENI's attachments with the agent's facts filled in,
  and the errors the nodes report. A report counts only when its eniID *and*
  macAddress are the attachment's. A node with an ENINode is authoritative; a
  node without one leaves the entries as they were, so a controller restart
  never clears and rewrites them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eni_controller import eninode, model
from eni_controller.eninode import DPDKRequest, ENINodeSpec, InterfaceStatus, WantedInterface
from eni_controller.model import Attachment, AttachmentState
from eni_controller.reconcile.status_fit import is_truncated
from eni_controller.spec import DEFAULT_DPDK_DRIVER, NodeENISpec, parse_spec


@dataclass(frozen=True, kw_only=True, slots=True)
class Holder:
    """One NodeENI's share of one node: its spec (None: invalid) and its entries there."""

    nodeeni: str
    spec: NodeENISpec | None
    attachments: Sequence[Attachment]
    # its status lists only some of its entries (status_fit.py's StatusTruncated)
    truncated: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeError:
    """An error a node's agent reports for one ENI of a NodeENI."""

    node: str
    eni_id: str
    interface_name: str | None
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Folded:
    attachments: tuple[Attachment, ...]
    errors: tuple[NodeError, ...]  # sorted by node, then ENI


def desired_interfaces(
    holders: Iterable[Holder], *, current: Sequence[WantedInterface] = ()
) -> tuple[WantedInterface, ...]:
    """A node's `spec.interfaces`; `current`, the spec it has now, gives the entries
    kept for a holder with an invalid spec or a truncated status."""
    entries: dict[str, WantedInterface] = {}
    for share in holders:
        attached = {a.eni_id: a for a in share.attachments if a.status is AttachmentState.ATTACHED}
        if share.truncated:
            # what its status cannot list is kept as it is, never taken away
            listed = {a.eni_id for a in share.attachments}
            unlisted = (
                c for c in current if c.node_eni == share.nodeeni and c.eni_id not in listed
            )
            entries.update((c.eni_id, c) for c in unlisted)
        if share.spec is None:
            kept = (c for c in current if c.node_eni == share.nodeeni and c.eni_id in attached)
            entries.update((c.eni_id, c) for c in kept)
            continue
        for a in attached.values():
            if a.mac_address and a.device_index is not None:
                entries.setdefault(
                    a.eni_id,
                    WantedInterface(
                        eni_id=a.eni_id,
                        mac_address=a.mac_address.lower(),
                        device_index=a.device_index,
                        node_eni=share.nodeeni,
                        mtu=share.spec.mtu,
                        dpdk=_dpdk(share.spec),
                    ),
                )
    return ENINodeSpec.of(entries.values()).interfaces


def holder(nodeeni: Mapping[str, Any], *, node: str) -> Holder | None:
    """A NodeENI's share of `node`, from the object as the API has it; None while
    it is being deleted (its ENIs are on their way out: the node lets go of them
    as the cleanup starts)."""
    metadata = nodeeni.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return None
    spec, _ = parse_spec(nodeeni.get("spec"))
    status = nodeeni.get("status")
    items = status.get("attachments") if isinstance(status, Mapping) else None
    mine = (
        Attachment.from_dict(item)
        for item in (items if isinstance(items, list) else ())
        if isinstance(item, Mapping) and item.get("nodeID") == node
    )
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    return Holder(
        nodeeni=str(metadata.get("name") or ""),
        spec=spec,
        attachments=tuple(a for a in mine if a is not None),
        truncated=is_truncated(
            c
            for item in (conditions if isinstance(conditions, list) else ())
            if (c := model.Condition.from_dict(item)) is not None
        ),
    )


def _dpdk(spec: NodeENISpec) -> DPDKRequest | None:
    if not spec.enable_dpdk:
        return None
    return DPDKRequest(
        driver=spec.dpdk_driver or DEFAULT_DPDK_DRIVER,
        resource_name=spec.dpdk_resource_name,
        pci_address=spec.dpdk_pci_address,
    )


def owner_reference(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference to a Node (so the ENINode goes with it); None without a uid."""
    metadata = node.get("metadata") or {}
    uid, name = metadata.get("uid"), metadata.get("name")
    if not isinstance(uid, str) or not uid or not isinstance(name, str):
        return None
    return eninode.node_owner_reference(node_name=name, node_uid=uid)


def new_eninode(
    name: str, interfaces: Sequence[WantedInterface], *, owner: Mapping[str, Any]
) -> dict[str, Any]:
    """The ENINode to create for node `name`, owned by the Node `owner` refers to."""
    spec = ENINodeSpec.of(interfaces)
    return eninode.eninode_body(node_name=name, node_uid=str(owner["uid"]), spec=spec)


def spec_patch(
    obj: Mapping[str, Any],
    interfaces: Sequence[WantedInterface],
    *,
    owner: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The merge patch that gives an existing ENINode this spec and the Node as
    owner (a Node re-created under the same name has a new uid), or None when it
    has both already. Other owners are kept."""
    patch: dict[str, Any] = {}
    wanted = ENINodeSpec.of(interfaces).to_dict()
    if obj.get("spec") != wanted:
        patch["spec"] = wanted
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    if not any(isinstance(r, Mapping) and r.get("uid") == owner["uid"] for r in refs):
        others = [r for r in refs if not (isinstance(r, Mapping) and r.get("kind") == "Node")]
        patch["metadata"] = {"ownerReferences": [*others, dict(owner)]}
    return patch or None


def fold_reports(
    attachments: Sequence[Attachment],
    *,
    reports: Mapping[str, Mapping[str, InterfaceStatus]],
    spec: NodeENISpec | None,
) -> Folded:
    """`attachments` with the agent's facts from `reports` (by node, then ENI id),
    and the errors the nodes report for them. The DPDK fields are set only while
    the report says bound (the resource name from the NodeENI's spec)."""
    folded: list[Attachment] = []
    errors: list[NodeError] = []
    for entry in attachments:
        node = reports.get(entry.node_id)
        if node is None:
            folded.append(entry)
            continue
        report = node.get(entry.eni_id)
        mac = entry.mac_address
        if report is not None and (mac is None or report.mac_address.lower() != mac.lower()):
            report = None  # a stale report, for a replaced ENI
        folded.append(_with_facts(entry, report, spec=spec))
        if report is not None and report.error:
            errors.append(
                NodeError(
                    node=entry.node_id,
                    eni_id=entry.eni_id,
                    interface_name=report.interface_name or None,
                    message=report.error,
                )
            )
    errors.sort(key=lambda e: (e.node, e.eni_id))
    return Folded(attachments=tuple(folded), errors=tuple(errors))


def _with_facts(
    entry: Attachment, report: InterfaceStatus | None, *, spec: NodeENISpec | None
) -> Attachment:
    if report is None:
        return dataclasses.replace(
            entry,
            interface_name=None,
            dpdk_bound=None,
            dpdk_driver=None,
            dpdk_pci_address=None,
            dpdk_resource_name=None,
        )
    bound = report.dpdk_bound
    resource = entry.dpdk_resource_name if spec is None else spec.dpdk_resource_name
    return dataclasses.replace(
        entry,
        interface_name=report.interface_name or None,
        dpdk_bound=bound,
        dpdk_driver=(report.driver or None) if bound else None,
        dpdk_pci_address=(report.pci_address or None) if bound else None,
        dpdk_resource_name=resource if bound else None,
    )

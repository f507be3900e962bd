"""The controller's decisions about ENINodes, the per-node objects (issue 18).

An ENINode (cluster-scoped, named after its Node, owned by it) has two writers,
one per half: the controller writes its spec (the ENIs the node should have and
what the node needs of each), the node's agent writes its status (what it found
and did). This module is the controller's side of that contract as pure
functions, so the I/O shell around them (eninode_sync.py, the reconciler) only
reads stores and writes. The object itself (its types, the canonical rendering
of a spec, the checked reading of a spec and the tolerant reading of a status)
is eni_controller/eninode.py's, shared with the agent: there is one model.

* `desired_interfaces`: a node's spec from the NodeENIs holding ENIs on it: one
  entry per *attached* ENI, sorted by deviceIndex then eniID, so an unchanged
  set is an unchanged object and `spec_patch` answers None (no write). A NodeENI
  whose spec is invalid keeps its entries as they are: a typo is never a reason
  to take an MTU or a DPDK binding away from a running ENI. Likewise a NodeENI
  whose status is truncated (status_fit.py) keeps the entries it cannot list.
* `fold_reports`: a NodeENI's planned attachments with the agent's facts filled
  in from the reports of the nodes they are on (interfaceName, dpdkBound,
  dpdkDriver, dpdkResourceName, dpdkPCIAddress), and the errors the nodes
  report. A report counts only when its eniID *and* macAddress are the
  attachment's: a stale report for a replaced ENI is never folded. A node with
  an ENINode is authoritative (no matching report: no facts); a node without
  one (no agent yet, or the ENINode informer not synced) leaves the entries as
  they were, so a controller restart never clears and rewrites them.

NodeENI status keeps one writer, the reconciler, which folds the reports into
the status it writes; status.py turns the errors into the NodeInterfacesReady
condition.
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
    """One NodeENI's share of one node: its spec (None: invalid) and its status
    entries on that node."""

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


Reports = Mapping[str, InterfaceStatus]
"""One node's reports (its agent's status entries) by ENI id."""


# -- the spec ------------------------------------------------------------------------


def desired_interfaces(
    holders: Iterable[Holder], *, current: Sequence[WantedInterface] = ()
) -> tuple[WantedInterface, ...]:
    """A node's `spec.interfaces`: one entry per ENI attached to it, sorted.

    `current` is the spec the node has now: a holder with an invalid spec keeps
    its entries from there (for the ENIs it still holds), unchanged.
    """
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


def spec_body(interfaces: Sequence[WantedInterface]) -> dict[str, Any]:
    """The ENINode `spec` for these entries (eninode.py's canonical rendering)."""
    return ENINodeSpec.of(interfaces).to_dict()


def interfaces_of(obj: Mapping[str, Any]) -> tuple[WantedInterface, ...]:
    """The valid entries of an ENINode's spec (eninode.py's checked reading)."""
    spec, _ = eninode.parse_spec(obj.get("spec"))
    return spec.interfaces


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
    wanted = spec_body(interfaces)
    if obj.get("spec") != wanted:
        patch["spec"] = wanted
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    if not any(isinstance(r, Mapping) and r.get("uid") == owner["uid"] for r in refs):
        others = [r for r in refs if not (isinstance(r, Mapping) and r.get("kind") == "Node")]
        patch["metadata"] = {"ownerReferences": [*others, dict(owner)]}
    return patch or None


# -- the agent's reports -------------------------------------------------------------


def reports_of(obj: Mapping[str, Any]) -> dict[str, InterfaceStatus]:
    """An ENINode's readable status entries, by ENI id (eninode.py's tolerant reading)."""
    return eninode.parse_status(obj.get("status")).by_eni()


def fold_reports(
    attachments: Sequence[Attachment],
    *,
    reports: Mapping[str, Reports],
    spec: NodeENISpec | None,
) -> Folded:
    """`attachments` with the agent's facts from `reports` (by node name; a node
    missing from it has no ENINode: its entries are left as they are), and the
    errors the nodes report for them.

    A report counts only if its eniID and macAddress are the attachment's. The
    DPDK fields describe a binding: set while the report says bound (driver and
    PCI address as reported, resource name from the NodeENI's spec), else absent.
    """
    folded: list[Attachment] = []
    errors: list[NodeError] = []
    for entry in attachments:
        node = reports.get(entry.node_id)
        if node is None:
            folded.append(entry)
            continue
        report = node.get(entry.eni_id)
        if report is None or not _same_mac(report.mac_address, entry.mac_address):
            report = None
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


def _same_mac(reported: str, attached: str | None) -> bool:
    return attached is not None and reported.lower() == attached.lower()

"""The controller's decisions about ENINodes, the per-node objects (issue 18).

An ENINode (cluster-scoped, named after its Node, owned by it) has two writers,
one per half: the controller writes its spec (the ENIs the node should have and
what the node needs of each), the node's agent writes its status (what it found
and did). This module is the controller's side of that contract as pure
functions, so the I/O shell around them (eninode_sync.py, the reconciler) only
reads stores and writes:

* `desired_interfaces`: a node's spec from the NodeENIs holding ENIs on it: one
  entry per *attached* ENI, sorted by deviceIndex then eniID, so an unchanged
  set is an unchanged object and `spec_patch` answers None (no write). A NodeENI
  whose spec is invalid keeps its entries as they are: a typo is never a reason
  to take an MTU or a DPDK binding away from a running ENI.
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

from eni_controller import model
from eni_controller.model import (  # the tolerant readers of status fields
    Attachment,
    AttachmentState,
    NodeENISpec,
    _opt_int,
    _opt_str,
    _without_none,
)

API_VERSION = f"{model.GROUP}/{model.VERSION}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DPDKSpec:
    """`spec.interfaces[].dpdk`: bind the ENI's PCI device for DPDK."""

    driver: str
    resource_name: str | None = None
    pci_address: str | None = None

    def to_dict(self) -> dict[str, object]:
        return _without_none(
            {
                "driver": self.driver,
                "resourceName": self.resource_name,
                "pciAddress": self.pci_address,
            }
        )

    @classmethod
    def from_dict(cls, raw: object) -> DPDKSpec | None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("driver"), str):
            return None
        return cls(
            driver=raw["driver"],
            resource_name=_opt_str(raw.get("resourceName")),
            pci_address=_opt_str(raw.get("pciAddress")),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class InterfaceSpec:
    """One item of an ENINode's `spec.interfaces`."""

    eni_id: str
    mac_address: str
    device_index: int
    nodeeni: str
    mtu: int | None = None
    dpdk: DPDKSpec | None = None

    def to_dict(self) -> dict[str, object]:
        return _without_none(
            {
                "eniID": self.eni_id,
                "macAddress": self.mac_address,
                "deviceIndex": self.device_index,
                "nodeENI": self.nodeeni,
                "mtu": self.mtu,
                "dpdk": None if self.dpdk is None else self.dpdk.to_dict(),
            }
        )

    @classmethod
    def from_dict(cls, raw: object) -> InterfaceSpec | None:
        """Read one spec item; None when a required field is missing or mistyped."""
        if not isinstance(raw, Mapping):
            return None
        eni_id, mac = _opt_str(raw.get("eniID")), _opt_str(raw.get("macAddress"))
        index, nodeeni = _opt_int(raw.get("deviceIndex")), _opt_str(raw.get("nodeENI"))
        if not eni_id or not mac or index is None or not nodeeni:
            return None
        return cls(
            eni_id=eni_id,
            mac_address=mac,
            device_index=index,
            nodeeni=nodeeni,
            mtu=_opt_int(raw.get("mtu")),
            dpdk=DPDKSpec.from_dict(raw.get("dpdk")),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class InterfaceReport:
    """What the folding uses of one item of an ENINode's `status.interfaces`."""

    eni_id: str
    mac_address: str
    interface_name: str | None = None
    pci_address: str | None = None
    driver: str | None = None
    dpdk_bound: bool | None = None
    error: str | None = None  # None when fine (absent or empty)

    @classmethod
    def from_dict(cls, raw: object) -> InterfaceReport | None:
        """Read one status item tolerantly; None without eniID or macAddress."""
        if not isinstance(raw, Mapping):
            return None
        eni_id, mac = _opt_str(raw.get("eniID")), _opt_str(raw.get("macAddress"))
        if not eni_id or not mac:
            return None
        bound = raw.get("dpdkBound")
        return cls(
            eni_id=eni_id,
            mac_address=mac,
            interface_name=_opt_str(raw.get("interfaceName")) or None,
            pci_address=_opt_str(raw.get("pciAddress")) or None,
            driver=_opt_str(raw.get("driver")) or None,
            dpdk_bound=bound if isinstance(bound, bool) else None,
            error=_opt_str(raw.get("error")) or None,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Holder:
    """One NodeENI's share of one node: its spec (None: invalid) and its status
    entries on that node."""

    nodeeni: str
    spec: NodeENISpec | None
    attachments: Sequence[Attachment]


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


Reports = Mapping[str, InterfaceReport]
"""One node's reports by ENI id."""


# -- the spec ------------------------------------------------------------------------


def desired_interfaces(
    holders: Iterable[Holder], *, current: Sequence[InterfaceSpec] = ()
) -> tuple[InterfaceSpec, ...]:
    """A node's `spec.interfaces`: one entry per ENI attached to it, sorted.

    `current` is the spec the node has now: a holder with an invalid spec keeps
    its entries from there (for the ENIs it still holds), unchanged.
    """
    entries: dict[str, InterfaceSpec] = {}
    for share in holders:
        attached = {a.eni_id: a for a in share.attachments if a.status is AttachmentState.ATTACHED}
        if share.spec is None:
            kept = (c for c in current if c.nodeeni == share.nodeeni and c.eni_id in attached)
            entries.update((c.eni_id, c) for c in kept)
            continue
        for a in attached.values():
            if a.mac_address and a.device_index is not None:
                entries.setdefault(
                    a.eni_id,
                    InterfaceSpec(
                        eni_id=a.eni_id,
                        mac_address=a.mac_address.lower(),
                        device_index=a.device_index,
                        nodeeni=share.nodeeni,
                        mtu=share.spec.mtu,
                        dpdk=_dpdk(share.spec),
                    ),
                )
    return tuple(sorted(entries.values(), key=lambda e: (e.device_index, e.eni_id)))


def holder(nodeeni: Mapping[str, Any], *, node: str) -> Holder | None:
    """A NodeENI's share of `node`, from the object as the API has it; None while
    it is being deleted (its ENIs are on their way out: the node lets go of them
    as the cleanup starts)."""
    metadata = nodeeni.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return None
    spec, _ = model.parse_spec(nodeeni.get("spec"))
    status = nodeeni.get("status")
    items = status.get("attachments") if isinstance(status, Mapping) else None
    mine = (
        Attachment.from_dict(item)
        for item in (items if isinstance(items, list) else ())
        if isinstance(item, Mapping) and item.get("nodeID") == node
    )
    return Holder(
        nodeeni=str(metadata.get("name") or ""),
        spec=spec,
        attachments=tuple(a for a in mine if a is not None),
    )


def _dpdk(spec: NodeENISpec) -> DPDKSpec | None:
    if not spec.enable_dpdk:
        return None
    return DPDKSpec(
        driver=spec.dpdk_driver or model.DEFAULT_DPDK_DRIVER,
        resource_name=spec.dpdk_resource_name,
        pci_address=spec.dpdk_pci_address,
    )


def spec_body(interfaces: Sequence[InterfaceSpec]) -> dict[str, Any]:
    """The ENINode `spec` for these entries."""
    return {"interfaces": [i.to_dict() for i in interfaces]}


def interfaces_of(eninode: Mapping[str, Any]) -> tuple[InterfaceSpec, ...]:
    """The readable entries of an ENINode's spec."""
    spec = eninode.get("spec")
    raw = spec.get("interfaces") if isinstance(spec, Mapping) else None
    items = (InterfaceSpec.from_dict(i) for i in (raw if isinstance(raw, list) else ()))
    return tuple(i for i in items if i is not None)


def owner_reference(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference to a Node (so the ENINode goes with it); None without a uid.
    Not blocking the Node's deletion, and not a controller reference."""
    metadata = node.get("metadata") or {}
    uid, name = metadata.get("uid"), metadata.get("name")
    if not isinstance(uid, str) or not uid or not isinstance(name, str):
        return None
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "name": name,
        "uid": uid,
        "blockOwnerDeletion": False,
        "controller": False,
    }


def new_eninode(
    name: str, interfaces: Sequence[InterfaceSpec], *, owner: Mapping[str, Any]
) -> dict[str, Any]:
    """The ENINode to create for node `name`."""
    return {
        "apiVersion": API_VERSION,
        "kind": model.ENINODE_KIND,
        "metadata": {"name": name, "ownerReferences": [dict(owner)]},
        "spec": spec_body(interfaces),
    }


def spec_patch(
    eninode: Mapping[str, Any],
    interfaces: Sequence[InterfaceSpec],
    *,
    owner: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The merge patch that gives an existing ENINode this spec and the Node as
    owner (a Node re-created under the same name has a new uid), or None when it
    has both already. Other owners are kept."""
    patch: dict[str, Any] = {}
    wanted = spec_body(interfaces)
    if eninode.get("spec") != wanted:
        patch["spec"] = wanted
    refs = (eninode.get("metadata") or {}).get("ownerReferences") or []
    if not any(isinstance(r, Mapping) and r.get("uid") == owner["uid"] for r in refs):
        others = [r for r in refs if not (isinstance(r, Mapping) and r.get("kind") == "Node")]
        patch["metadata"] = {"ownerReferences": [*others, dict(owner)]}
    return patch or None


# -- the agent's reports -------------------------------------------------------------


def reports_of(eninode: Mapping[str, Any]) -> dict[str, InterfaceReport]:
    """An ENINode's readable status entries, by ENI id."""
    status = eninode.get("status")
    raw = status.get("interfaces") if isinstance(status, Mapping) else None
    reports = (InterfaceReport.from_dict(i) for i in (raw if isinstance(raw, list) else ()))
    return {r.eni_id: r for r in reports if r is not None}


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
                    interface_name=report.interface_name,
                    message=report.error,
                )
            )
    errors.sort(key=lambda e: (e.node, e.eni_id))
    return Folded(attachments=tuple(folded), errors=tuple(errors))


def _with_facts(
    entry: Attachment, report: InterfaceReport | None, *, spec: NodeENISpec | None
) -> Attachment:
    bound = report is not None and report.dpdk_bound is True
    resource = entry.dpdk_resource_name if spec is None else spec.dpdk_resource_name
    return dataclasses.replace(
        entry,
        interface_name=None if report is None else report.interface_name,
        dpdk_bound=None if report is None else report.dpdk_bound,
        dpdk_driver=report.driver if bound and report is not None else None,
        dpdk_pci_address=report.pci_address if bound and report is not None else None,
        dpdk_resource_name=resource if bound else None,
    )


def _same_mac(reported: str, attached: str | None) -> bool:
    return attached is not None and reported.lower() == attached.lower()

"""Typed ENINode objects: the per-node record shared by the controller and the node agent.

One cluster-scoped ENINode per Node, same name, owned by the Node. The controller
writes ``spec`` (the ENIs this node should have), the node's agent writes
``status`` (what it found and did): neither clobbers the other. Invariants:

* a rendered spec or status is canonical (spec entries sorted by device index
  then ENI id, optional fields absent rather than null), so each writer writes
  only on a real change;
* ``parse_spec`` drops a bad entry with one problem naming its path and keeps
  the rest; ``parse_status`` drops junk; neither raises;
* ``InterfaceStatus.observed_at`` is not one of an entry's facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from eni_controller import model
from eni_controller import spec as nodeeni_spec
from eni_controller.fields import FieldReader, length_check, pattern_check, preview, wrong_type
from eni_controller.model import opt_bool, opt_enum, opt_int, opt_list, opt_str, without_none

GROUP: Final = model.GROUP
VERSION: Final = model.VERSION
KIND: Final = "ENINode"
PLURAL: Final = "eninodes"
API_VERSION: Final = f"{GROUP}/{VERSION}"

MAX_INTERFACES: Final = 128  # the CRD's spec.interfaces maxItems
DEVICE_INDEX_MAX: Final = 255
ERROR_MAX_LENGTH: Final = 1024  # the CRD's status.interfaces[].error maxLength
ENI_ID_PATTERN: Final = re.compile(r"eni-(?:[0-9a-f]{8}|[0-9a-f]{17})")
MAC_PATTERN: Final = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


class OperState(StrEnum):
    """``status.interfaces[].operState``: the link as the node sees it."""

    UP = "up"
    DOWN = "down"
    ABSENT = "absent"  # no link with the ENI's MAC (not attached yet, or hot-plug pending)
    DPDK = "dpdk"  # the PCI device is bound to a DPDK driver: no kernel link by design


@dataclass(frozen=True, kw_only=True, slots=True)
class DPDKRequest:
    """``dpdk``: bind the ENI's PCI device to ``driver`` and list it under ``resource_name``."""

    driver: str = nodeeni_spec.DEFAULT_DPDK_DRIVER
    resource_name: str | None = None
    pci_address: str | None = None  # else found from the MAC through sysfs

    def to_dict(self) -> dict[str, object]:
        return without_none(
            {
                "driver": self.driver,
                "resourceName": self.resource_name,
                "pciAddress": self.pci_address,
            }
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class WantedInterface:
    """One ``spec.interfaces`` entry: an ENI attached to this node, and what to do with it."""

    eni_id: str
    mac_address: str
    device_index: int
    node_eni: str
    mtu: int | None = None  # None: leave the interface's MTU alone
    dpdk: DPDKRequest | None = None

    def to_dict(self) -> dict[str, object]:
        return without_none(
            {
                "eniID": self.eni_id,
                "macAddress": self.mac_address,
                "deviceIndex": self.device_index,
                "nodeENI": self.node_eni,
                "mtu": self.mtu,
                "dpdk": None if self.dpdk is None else self.dpdk.to_dict(),
            }
        )


def _spec_order(entry: WantedInterface) -> tuple[int, str]:
    return entry.device_index, entry.eni_id


@dataclass(frozen=True, slots=True)
class ENINodeSpec:
    """A valid spec: each ENI id and each MAC once."""

    interfaces: tuple[WantedInterface, ...] = ()

    @classmethod
    def of(cls, interfaces: Iterable[WantedInterface]) -> ENINodeSpec:
        """The spec listing ``interfaces``, sorted as the API object keeps them."""
        return cls(tuple(sorted(interfaces, key=_spec_order)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "interfaces": [entry.to_dict() for entry in sorted(self.interfaces, key=_spec_order)]
        }

    def by_eni(self) -> dict[str, WantedInterface]:
        return {entry.eni_id: entry for entry in self.interfaces}


@dataclass(frozen=True, kw_only=True, slots=True)
class SpecProblem:
    """An entry ``parse_spec`` dropped; its ENI id and MAC when they were readable."""

    eni_id: str | None
    message: str
    mac_address: str = ""


def parse_spec(raw: object) -> tuple[ENINodeSpec, tuple[SpecProblem, ...]]:
    """The valid entries of a raw ENINode spec, and one problem per entry dropped (a
    field missing or invalid, an ENI id or MAC listed before), naming its path."""
    if raw is not None and not isinstance(raw, Mapping):
        return ENINodeSpec(), (_whole_spec(f"spec: {wrong_type('an object', raw)}"),)
    items = None if raw is None else raw.get("interfaces")
    if items is None:
        return ENINodeSpec(), ()
    if not isinstance(items, list | tuple):
        return ENINodeSpec(), (_whole_spec(f"spec.interfaces: {wrong_type('an array', items)}"),)
    problems: list[SpecProblem] = []
    if len(items) > MAX_INTERFACES:
        ignored = f"{len(items)} entries (at most {MAX_INTERFACES}); the rest ignored"
        problems.append(_whole_spec(f"spec.interfaces: {ignored}"))
    kept: dict[str, WantedInterface] = {}
    first_by_mac: dict[str, str] = {}
    for index, item in enumerate(items[:MAX_INTERFACES]):
        path = f"spec.interfaces[{index}]"
        entry, entry_problems = _parse_entry(path, item)
        if entry is not None and entry.eni_id in kept:
            entry_problems = [f"{path}.eniID: {entry.eni_id} is listed twice"]
        elif entry is not None and entry.mac_address in first_by_mac:
            first = first_by_mac[entry.mac_address]
            entry_problems = [f"{path}.macAddress: {entry.mac_address} is also the MAC of {first}"]
        if entry_problems:
            problems.append(
                SpecProblem(
                    eni_id=_readable(item, "eniID", ENI_ID_PATTERN),
                    mac_address=_readable(item, "macAddress", MAC_PATTERN) or "",
                    message="; ".join(entry_problems),
                )
            )
        elif entry is not None:
            kept[entry.eni_id] = entry
            first_by_mac[entry.mac_address] = entry.eni_id
    return ENINodeSpec.of(kept.values()), tuple(problems)


def _whole_spec(message: str) -> SpecProblem:
    return SpecProblem(eni_id=None, message=message)


def _readable(item: object, key: str, pattern: re.Pattern[str]) -> str | None:
    value = item.get(key) if isinstance(item, Mapping) else None
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


_ENI_ID_CHECK: Final = pattern_check(ENI_ID_PATTERN, "an ENI id (eni- and 8 or 17 hex digits)")
_MAC_CHECK: Final = pattern_check(MAC_PATTERN, "a lower-case MAC address (02:ab:...)")


def _check_node_eni(value: str) -> str | None:
    if not nodeeni_spec.DNS_SUBDOMAIN_PATTERN.fullmatch(value):
        return f"{preview(value)} is not a NodeENI name"
    if len(value) > nodeeni_spec.DNS_SUBDOMAIN_MAX_LENGTH:
        return f"longer than {nodeeni_spec.DNS_SUBDOMAIN_MAX_LENGTH} characters"
    return None


def _parse_entry(path: str, raw: object) -> tuple[WantedInterface | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"{path}: {wrong_type('an object', raw)}"]
    r = FieldReader(raw, path=path)
    eni_id = r.string("eniID", _ENI_ID_CHECK, required=True)
    mac = r.string("macAddress", _MAC_CHECK, required=True)
    device_index = r.integer("deviceIndex", 1, DEVICE_INDEX_MAX, required=True)
    node_eni = r.string("nodeENI", _check_node_eni, required=True)
    mtu = r.integer("mtu", nodeeni_spec.MTU_MIN, nodeeni_spec.MTU_MAX)
    dpdk = _parse_dpdk(r)
    if r.problems or eni_id is None or mac is None or device_index is None or node_eni is None:
        return None, r.problems
    return WantedInterface(
        eni_id=eni_id,
        mac_address=mac,
        device_index=device_index,
        node_eni=node_eni,
        mtu=mtu,
        dpdk=dpdk,
    ), []


def _parse_dpdk(entry: FieldReader) -> DPDKRequest | None:
    raw = entry.get("dpdk")
    if raw is None:
        return None
    path = f"{entry.path}.dpdk"
    if not isinstance(raw, Mapping):
        entry.report(path, wrong_type("an object", raw))
        return None
    r = FieldReader(raw, path=path, problems=entry.problems)
    driver = r.string("driver", nodeeni_spec.check_dpdk_driver, required=True)
    resource_name = r.string(
        "resourceName", length_check(1, nodeeni_spec.DPDK_RESOURCE_NAME_MAX_LENGTH)
    )
    pci_address = r.string("pciAddress", nodeeni_spec.check_pci_address)
    if driver is None:
        return None
    return DPDKRequest(driver=driver, resource_name=resource_name, pci_address=pci_address)


def one_line_error(text: str) -> str:
    """``text`` as a status error: one line, at most what the schema admits."""
    line = " ".join(text.split())
    return line if len(line) <= ERROR_MAX_LENGTH else line[: ERROR_MAX_LENGTH - 3] + "..."


@dataclass(frozen=True, kw_only=True, slots=True)
class InterfaceStatus:
    """One ``status.interfaces`` entry: what the agent found for one ENI."""

    eni_id: str
    mac_address: str
    oper_state: OperState
    interface_name: str | None = None  # None while no link has the MAC, or DPDK-bound
    pci_address: str | None = None
    mtu: int | None = None
    driver: str | None = None
    dpdk_bound: bool = False
    error: str = ""
    observed_at: str | None = None

    def facts(self) -> InterfaceStatus:
        """This entry without its timestamp: equal facts are the same report."""
        return replace(self, observed_at=None)

    def to_dict(self) -> dict[str, object]:
        return without_none(
            {
                "eniID": self.eni_id,
                "macAddress": self.mac_address,
                "interfaceName": self.interface_name,
                "pciAddress": self.pci_address,
                "mtu": self.mtu,
                "operState": str(self.oper_state),
                "driver": self.driver,
                "dpdkBound": self.dpdk_bound,
                "error": self.error or None,
                "observedAt": self.observed_at,
            }
        )

    @classmethod
    def from_dict(cls, raw: object) -> InterfaceStatus | None:
        """A status entry, or None when it lacks an ENI id, a MAC or a known state."""
        if not isinstance(raw, Mapping):
            return None
        eni_id = opt_str(raw.get("eniID"))
        mac = opt_str(raw.get("macAddress"))
        state = opt_enum(OperState, raw.get("operState"))
        if not eni_id or not mac or state is None:
            return None
        return cls(
            eni_id=eni_id,
            mac_address=mac,
            oper_state=state,
            interface_name=opt_str(raw.get("interfaceName")),
            pci_address=opt_str(raw.get("pciAddress")),
            mtu=opt_int(raw.get("mtu")),
            driver=opt_str(raw.get("driver")),
            dpdk_bound=opt_bool(raw.get("dpdkBound")) or False,
            error=opt_str(raw.get("error")) or "",
            observed_at=opt_str(raw.get("observedAt")),
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """``status.summary``: ENIs wanted by the spec, and how many of them are ready."""

    wanted: int = 0
    ready: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ENINodeStatus:
    observed_generation: int | None = None
    summary: Summary = Summary()
    interfaces: tuple[InterfaceStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return without_none(
            {
                "observedGeneration": self.observed_generation,
                "summary": {"wanted": self.summary.wanted, "ready": self.summary.ready},
                "interfaces": [entry.to_dict() for entry in self.interfaces],
            }
        )

    def by_eni(self) -> dict[str, InterfaceStatus]:
        return {entry.eni_id: entry for entry in self.interfaces}


def parse_status(raw: object) -> ENINodeStatus:
    """Status as the agent last wrote it; junk is dropped, never raised."""
    if not isinstance(raw, Mapping):
        return ENINodeStatus()
    summary = raw.get("summary")
    counts = summary if isinstance(summary, Mapping) else {}
    entries: dict[str, InterfaceStatus] = {}
    for item in opt_list(raw.get("interfaces")):
        entry = InterfaceStatus.from_dict(item)
        if entry is not None:
            entries.setdefault(entry.eni_id, entry)
    return ENINodeStatus(
        observed_generation=opt_int(raw.get("observedGeneration")),
        summary=Summary(
            wanted=opt_int(counts.get("wanted")) or 0, ready=opt_int(counts.get("ready")) or 0
        ),
        interfaces=tuple(entries.values()),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class ENINode:
    """An ENINode as read from the API: its spec checked, its status tolerated."""

    name: str
    generation: int | None
    resource_version: str | None
    spec: ENINodeSpec
    spec_problems: tuple[SpecProblem, ...]
    status: ENINodeStatus
    raw_status: Mapping[str, Any] | None  # as stored, to compare a rendering with

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ENINode:
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        spec, problems = parse_spec(obj.get("spec"))
        raw_status = obj.get("status")
        return cls(
            name=opt_str(metadata.get("name")) or "",
            generation=opt_int(metadata.get("generation")),
            resource_version=opt_str(metadata.get("resourceVersion")),
            spec=spec,
            spec_problems=problems,
            status=parse_status(raw_status),
            raw_status=raw_status if isinstance(raw_status, Mapping) else None,
        )


def node_owner_reference(*, node_name: str, node_uid: str) -> dict[str, Any]:
    """A Node as owner, so that its ENINode is deleted with it (not blocking, not controller)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "name": node_name,
        "uid": node_uid,
        "blockOwnerDeletion": False,
        "controller": False,
    }


def eninode_body(*, node_name: str, node_uid: str, spec: ENINodeSpec) -> dict[str, Any]:
    """A new ENINode for a Node, owned by it."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": node_name,
            "ownerReferences": [node_owner_reference(node_name=node_name, node_uid=node_uid)],
        },
        "spec": spec.to_dict(),
    }

"""Typed NodeENI objects, and the spec rules the controller enforces itself.

The Kubernetes API hands the controller plain camelCase dicts. This module turns
them into frozen, typed objects once, at the edge, so the rest of the controller
never digs through dicts or trusts their types.

The CRD schema enforces most spec rules, but not all of them: an object may have
been stored under an older CRD version or in a cluster where the schema was never
applied, and some rules (label syntax, a subnet listed twice) cannot be written in
the schema at all. So ``parse_spec`` checks every rule of the NodeENI spec and
returns every problem it finds, in words an operator can act on: they become the
message of the ``Ready=False/InvalidSpec`` condition. Status, on the other hand,
is written by the controller and the node agent, so it is read tolerantly: junk is
dropped, never raised.

A status item has two forms, one per NodeENI (reconcile/status_fit.py decides
which from the number of entries alone): the full one (``Attachment.to_dict``,
the SPEC's fields) and, for a NodeENI with more attachments than a status can
hold in full, the compact one (``Attachment.to_compact_dict``): exactly
COMPACT_ATTACHMENT_FIELDS, the fields the controller reads back (the ENINode
spec sync, the planner, the orphan sweep) and that identify the attachment.
Everything else is the same for every entry (mtu), derivable (instanceID from
the Node), in the node's ENINode (interfaceName, DPDK), or in EC2 (IP, subnet,
attachment id). ``from_dict`` reads both forms: a field the compact form leaves
out reads as None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, TypeVar

GROUP: Final = "networking.k8s.aws"
VERSION: Final = "v1alpha1"
PLURAL: Final = "nodeenis"
KIND: Final = "NodeENI"
# The per-node object (issue 18), ENINode: its kind and plural are eninode.py's
FINALIZER: Final = "nodeeni.networking.k8s.aws/finalizer"
CLEANUP_START_ANNOTATION: Final = "aws-multi-eni-controller/cleanup-start-time"

SUBNET_ID_PATTERN: Final = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
SECURITY_GROUP_ID_PATTERN: Final = re.compile(r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})")

MTU_MIN: Final = 576
MTU_MAX: Final = 9001
DESCRIPTION_MAX_LENGTH: Final = 255
SUBNET_NAME_MAX_LENGTH: Final = 256
SECURITY_GROUP_NAME_MAX_LENGTH: Final = 255
# The bounds of the NodeENI CRD (tests/unit/test_model.py reads the CRD and
# compares): checked here too, for objects stored before the CRD had them and
# for what the schema cannot express (the security groups' sum, label keys).
# trn1n.32xlarge, the largest instance type, has 80 network interfaces (0..79).
DEVICE_INDEX_MAX: Final = 79
SECURITY_GROUPS_MAX: Final = 16  # per ENI (AWS's limit), IDs and names together
SUBNETS_MAX: Final = 64  # per list, subnetIDs and subnetNames
NODE_SELECTOR_MAX_ENTRIES: Final = 32
DPDK_RESOURCE_NAME_MAX_LENGTH: Final = 253
DPDK_DRIVERS: Final = ("vfio-pci", "igb_uio", "uio_pci_generic")
DEFAULT_DPDK_DRIVER: Final = "vfio-pci"

# DDDD:BB:DD.F - the device number is 5 bits (00-1f), the function 3 bits (0-7).
_PCI_ADDRESS_PATTERN: Final = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]")
_LABEL_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN_PATTERN: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_LABEL_NAME_MAX_LENGTH: Final = 63
_DNS_SUBDOMAIN_MAX_LENGTH: Final = 253
_PREVIEW_MAX_LENGTH: Final = 60
# The compact status item: what the controller reads back of an attachment
# (routing.py's ENINode shares: eniID, macAddress, deviceIndex, status) and the
# node it is on. ~157 bytes with EKS-like values, against ~410 in full.
COMPACT_ATTACHMENT_FIELDS: Final = ("nodeID", "eniID", "macAddress", "deviceIndex", "status")

_E = TypeVar("_E", bound=StrEnum)


class AttachmentState(StrEnum):
    """``status.attachments[].status``."""

    ATTACHING = "attaching"
    ATTACHED = "attached"
    DETACHING = "detaching"
    FAILED = "failed"


class ConditionStatus(StrEnum):
    """``status.conditions[].status``."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


def _frozen_mapping(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


def _empty_mapping() -> Mapping[str, str]:
    return MappingProxyType({})


def default_eni_description(node_name: str) -> str:
    """The EC2 description of an ENI whose spec sets none."""
    return f"ENI created by nodeeni-controller for node {node_name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeENISpec:
    """A valid NodeENI spec, defaults applied.

    ``subnet_ids`` holds ``subnetID`` then ``subnetIDs``, and ``subnet_names``
    holds ``subnetName`` then ``subnetNames``, each value once, in the order given:
    the position of a subnet decides its device index.
    """

    node_selector: Mapping[str, str]
    subnet_ids: tuple[str, ...] = ()
    subnet_names: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    security_group_names: tuple[str, ...] = ()
    device_index: int = 1
    delete_on_termination: bool = True
    description: str | None = None
    mtu: int | None = None
    enable_dpdk: bool = False
    dpdk_driver: str | None = None
    dpdk_resource_name: str | None = None
    dpdk_pci_address: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_selector", _frozen_mapping(self.node_selector))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a node with these labels is selected; an empty selector selects all."""
        return all(labels.get(key) == value for key, value in self.node_selector.items())

    def eni_description(self, node_name: str) -> str:
        """The EC2 description for this spec's ENI on ``node_name``."""
        if self.description is not None:
            return self.description
        return default_eni_description(node_name)


@dataclass(frozen=True, kw_only=True, slots=True)
class Attachment:
    """One item of ``status.attachments``: an ENI of this NodeENI on one node.

    The node agent's facts (interface name, DPDK fields) come from its report in
    the node's ENINode; the controller folds them in (reconcile/eninodes.py).
    """

    node_id: str
    instance_id: str | None = None
    eni_id: str
    attachment_id: str | None = None
    subnet_id: str | None = None
    subnet_cidr: str | None = None
    mac_address: str | None = None
    private_ip_address: str | None = None
    device_index: int | None = None
    mtu: int | None = None
    status: AttachmentState | None = None
    last_updated: str | None = None
    dpdk_bound: bool | None = None
    dpdk_driver: str | None = None
    dpdk_resource_name: str | None = None
    dpdk_pci_address: str | None = None
    interface_name: str | None = None

    @classmethod
    def from_dict(cls, raw: object) -> Attachment | None:
        """Read one status item; a field of the wrong type reads as None.

        Returns None when the item is not an object or lacks ``nodeID`` or ``eniID``.
        """
        if not isinstance(raw, Mapping):
            return None
        node_id = _opt_str(raw.get("nodeID"))
        eni_id = _opt_str(raw.get("eniID"))
        if not node_id or not eni_id:
            return None
        return cls(
            node_id=node_id,
            instance_id=_opt_str(raw.get("instanceID")),
            eni_id=eni_id,
            attachment_id=_opt_str(raw.get("attachmentID")),
            subnet_id=_opt_str(raw.get("subnetID")),
            subnet_cidr=_opt_str(raw.get("subnetCIDR")),
            mac_address=_opt_str(raw.get("macAddress")),
            private_ip_address=_opt_str(raw.get("privateIPAddress")),
            device_index=_opt_int(raw.get("deviceIndex")),
            mtu=_opt_int(raw.get("mtu")),
            status=_opt_enum(AttachmentState, raw.get("status")),
            last_updated=_opt_str(raw.get("lastUpdated")),
            dpdk_bound=_opt_bool(raw.get("dpdkBound")),
            dpdk_driver=_opt_str(raw.get("dpdkDriver")),
            dpdk_resource_name=_opt_str(raw.get("dpdkResourceName")),
            dpdk_pci_address=_opt_str(raw.get("dpdkPCIAddress")),
            interface_name=_opt_str(raw.get("interfaceName")),
        )

    def to_dict(self, *, last_updated: str | None = None) -> dict[str, object]:
        """The camelCase status item, without the fields that are None;
        `last_updated` stamps it in place of the entry's own."""
        return _without_none(
            {
                "nodeID": self.node_id,
                "instanceID": self.instance_id,
                "eniID": self.eni_id,
                "attachmentID": self.attachment_id,
                "subnetID": self.subnet_id,
                "subnetCIDR": self.subnet_cidr,
                "macAddress": self.mac_address,
                "privateIPAddress": self.private_ip_address,
                "deviceIndex": self.device_index,
                "mtu": self.mtu,
                "status": None if self.status is None else self.status.value,
                "lastUpdated": last_updated or self.last_updated,
                "dpdkBound": self.dpdk_bound,
                "dpdkDriver": self.dpdk_driver,
                "dpdkResourceName": self.dpdk_resource_name,
                "dpdkPCIAddress": self.dpdk_pci_address,
                "interfaceName": self.interface_name,
            }
        )

    def to_compact_dict(self) -> dict[str, object]:
        """The compact status item: COMPACT_ATTACHMENT_FIELDS only, without those that are None."""
        return _without_none(
            {
                "nodeID": self.node_id,
                "eniID": self.eni_id,
                "macAddress": self.mac_address,
                "deviceIndex": self.device_index,
                "status": None if self.status is None else self.status.value,
            }
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Condition:
    """One item of ``status.conditions`` (the standard Kubernetes shape)."""

    type: str
    status: ConditionStatus
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None

    @classmethod
    def from_dict(cls, raw: object) -> Condition | None:
        """Read one condition; None when it has no ``type`` or no valid ``status``."""
        if not isinstance(raw, Mapping):
            return None
        type_ = _opt_str(raw.get("type"))
        status = _opt_enum(ConditionStatus, raw.get("status"))
        if not type_ or status is None:
            return None
        return cls(
            type=type_,
            status=status,
            reason=_opt_str(raw.get("reason")),
            message=_opt_str(raw.get("message")),
            last_transition_time=_opt_str(raw.get("lastTransitionTime")),
            observed_generation=_opt_int(raw.get("observedGeneration")),
        )

    def to_dict(self) -> dict[str, object]:
        """The camelCase condition, without the fields that are None."""
        return _without_none(
            {
                "type": self.type,
                "status": self.status.value,
                "reason": self.reason,
                "message": self.message,
                "lastTransitionTime": self.last_transition_time,
                "observedGeneration": self.observed_generation,
            }
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeENIStatus:
    """``status`` of a NodeENI."""

    attachments: tuple[Attachment, ...] = ()
    conditions: tuple[Condition, ...] = ()
    observed_generation: int | None = None
    attached_count: int | None = None
    desired_count: int | None = None

    @classmethod
    def from_dict(cls, raw: object) -> NodeENIStatus:
        """Read a status tolerantly: unreadable items and fields are dropped."""
        if not isinstance(raw, Mapping):
            return cls()
        attachments = (Attachment.from_dict(item) for item in _opt_list(raw.get("attachments")))
        conditions = (Condition.from_dict(item) for item in _opt_list(raw.get("conditions")))
        return cls(
            attachments=tuple(item for item in attachments if item is not None),
            conditions=tuple(item for item in conditions if item is not None),
            observed_generation=_opt_int(raw.get("observedGeneration")),
            attached_count=_opt_int(raw.get("attachedCount")),
            desired_count=_opt_int(raw.get("desiredCount")),
        )

    def to_dict(self) -> dict[str, object]:
        """The camelCase status; the two lists are always present, even when empty."""
        return _without_none(
            {
                "attachments": [item.to_dict() for item in self.attachments],
                "conditions": [item.to_dict() for item in self.conditions],
                "observedGeneration": self.observed_generation,
                "attachedCount": self.attached_count,
                "desiredCount": self.desired_count,
            }
        )

    def condition(self, type_: str) -> Condition | None:
        """The condition of this type, if the status has one."""
        return next((item for item in self.conditions if item.type == type_), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeENI:
    """A NodeENI object. ``spec`` is None exactly when ``problems`` is not empty."""

    name: str
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: Mapping[str, str] = field(default_factory=_empty_mapping)
    annotations: Mapping[str, str] = field(default_factory=_empty_mapping)
    finalizers: tuple[str, ...] = ()
    deletion_timestamp: str | None = None
    spec: NodeENISpec | None
    problems: tuple[str, ...] = ()
    status: NodeENIStatus = field(default_factory=NodeENIStatus)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_mapping(self.labels))
        object.__setattr__(self, "annotations", _frozen_mapping(self.annotations))

    @property
    def being_deleted(self) -> bool:
        return self.deletion_timestamp is not None

    @property
    def has_finalizer(self) -> bool:
        return FINALIZER in self.finalizers

    @classmethod
    def from_dict(
        cls,
        obj: Mapping[str, object],
        *,
        default_device_index: int = 1,
        default_delete_on_termination: bool = True,
    ) -> NodeENI:
        """Read a NodeENI as the API returns it. Never raises on a bad spec or status."""
        metadata = obj.get("metadata")
        if not isinstance(metadata, Mapping):
            metadata = {}
        spec, problems = parse_spec(
            obj.get("spec"),
            default_device_index=default_device_index,
            default_delete_on_termination=default_delete_on_termination,
        )
        return cls(
            name=_opt_str(metadata.get("name")) or "",
            uid=_opt_str(metadata.get("uid")) or "",
            generation=_opt_int(metadata.get("generation")) or 0,
            resource_version=_opt_str(metadata.get("resourceVersion")) or "",
            labels=_string_map(metadata.get("labels")),
            annotations=_string_map(metadata.get("annotations")),
            finalizers=tuple(
                item for item in _opt_list(metadata.get("finalizers")) if isinstance(item, str)
            ),
            deletion_timestamp=_opt_str(metadata.get("deletionTimestamp")),
            spec=spec,
            problems=problems,
            status=NodeENIStatus.from_dict(obj.get("status")),
        )


def parse_spec(
    raw: object,
    *,
    default_device_index: int = 1,
    default_delete_on_termination: bool = True,
) -> tuple[NodeENISpec | None, tuple[str, ...]]:
    """Validate a raw NodeENI spec: ``(spec, ())`` when valid, else ``(None, problems)``.

    Every problem is reported, each naming its field, e.g.
    ``spec.mtu: 10000 is out of range (576..9001)``. Unknown fields are ignored
    (the API server prunes them). Never raises, whatever the JSON types.
    """
    if not isinstance(raw, Mapping):
        message = "is missing" if raw is None else _wrong_type("an object", raw)
        return None, (f"spec: {message}",)
    reader = _SpecReader(raw)
    node_selector = _read_node_selector(reader)
    subnet_ids = _read_unique_values(
        reader, "subnetID", "subnetIDs", _SUBNET_ID_CHECK, max_items=SUBNETS_MAX
    )
    subnet_names = _read_unique_values(
        reader, "subnetName", "subnetNames", _SUBNET_NAME_CHECK, max_items=SUBNETS_MAX
    )
    _require_one_of(reader, "subnet", ("subnetID", "subnetIDs", "subnetName", "subnetNames"))
    security_group_ids = _read_unique_values(
        reader, None, "securityGroupIDs", _SG_ID_CHECK, max_items=SECURITY_GROUPS_MAX
    )
    security_group_names = _read_unique_values(
        reader, None, "securityGroupNames", _SG_NAME_CHECK, max_items=SECURITY_GROUPS_MAX
    )
    _require_one_of(reader, "security group", ("securityGroupIDs", "securityGroupNames"))
    groups = len(security_group_ids) + len(security_group_names)
    if groups > SECURITY_GROUPS_MAX >= max(len(security_group_ids), len(security_group_names)):
        # (a list past the bound on its own was reported as such)
        reader.report(
            "spec",
            f"{groups} security groups in securityGroupIDs and securityGroupNames together"
            f" (at most {SECURITY_GROUPS_MAX} per ENI allowed)",
        )
    device_index = reader.integer(
        "deviceIndex", 1, DEVICE_INDEX_MAX, note="0 is the instance's primary ENI"
    )
    delete_on_termination = reader.boolean("deleteOnTermination")
    description = reader.string("description", _length_check(0, DESCRIPTION_MAX_LENGTH))
    mtu = reader.integer("mtu", MTU_MIN, MTU_MAX)
    enable_dpdk = reader.boolean("enableDPDK") or False
    dpdk_driver = reader.string("dpdkDriver", _check_dpdk_driver)
    dpdk_resource_name = reader.string(
        "dpdkResourceName", _length_check(1, DPDK_RESOURCE_NAME_MAX_LENGTH)
    )
    dpdk_pci_address = reader.string("dpdkPCIAddress", _check_pci_address)

    if reader.problems or node_selector is None:
        return None, tuple(reader.problems)
    if dpdk_driver is None and enable_dpdk:
        dpdk_driver = DEFAULT_DPDK_DRIVER
    spec = NodeENISpec(
        node_selector=node_selector,
        subnet_ids=subnet_ids,
        subnet_names=subnet_names,
        security_group_ids=security_group_ids,
        security_group_names=security_group_names,
        device_index=default_device_index if device_index is None else device_index,
        delete_on_termination=(
            default_delete_on_termination
            if delete_on_termination is None
            else delete_on_termination
        ),
        description=description,
        mtu=mtu,
        enable_dpdk=enable_dpdk,
        dpdk_driver=dpdk_driver,
        dpdk_resource_name=dpdk_resource_name,
        dpdk_pci_address=dpdk_pci_address,
    )
    return spec, ()


_Check = Callable[[str], str | None]
"""Says why a string value is invalid (a phrase that follows the field path), or None."""


class _SpecReader:
    """Reads the fields of one raw spec, recording every problem found.

    A field that is absent or null reads as None without a problem; the API
    server drops nulls from fields that are not nullable.
    """

    def __init__(self, raw: Mapping[Any, Any]) -> None:
        self._raw = raw
        self.problems: list[str] = []

    def get(self, key: str) -> object:
        return self._raw.get(key)

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def string(self, key: str, check: _Check) -> str | None:
        value = self.get(key)
        return None if value is None else self.checked_string(f"spec.{key}", value, check)

    def checked_string(self, path: str, value: object, check: _Check) -> str | None:
        if not isinstance(value, str):
            self.report(path, _wrong_type("a string", value))
            return None
        reason = check(value)
        if reason is not None:
            self.report(path, reason)
            return None
        return value

    def string_list(self, key: str, check: _Check, *, max_items: int) -> list[tuple[str, str]]:
        """The valid items of a string array, each with its path."""
        value = self.get(key)
        if value is None:
            return []
        path = f"spec.{key}"
        if not isinstance(value, list | tuple):
            self.report(path, _wrong_type("an array of strings", value))
            return []
        if len(value) > max_items:
            self.report(path, f"has {len(value)} items (at most {max_items} allowed)")
        items: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            checked = self.checked_string(item_path, item, check)
            if checked is not None:
                items.append((item_path, checked))
        return items

    def integer(
        self, key: str, minimum: int, maximum: int | None = None, *, note: str = ""
    ) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        path = f"spec.{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            self.report(path, _wrong_type("an integer", value))
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"{minimum}..{maximum}"
            self.report(path, f"{value} is out of range ({bounds}{'; ' + note if note else ''})")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.report(f"spec.{key}", _wrong_type("true or false", value))
        return None


def _read_node_selector(reader: _SpecReader) -> dict[str, str] | None:
    path = "spec.nodeSelector"
    raw = reader.get("nodeSelector")
    if raw is None:
        reader.report(path, "is required (use {} to select every node)")
        return None
    if not isinstance(raw, Mapping):
        reader.report(path, _wrong_type("an object mapping label keys to values", raw))
        return None
    if len(raw) > NODE_SELECTOR_MAX_ENTRIES:
        reader.report(path, f"has {len(raw)} entries (at most {NODE_SELECTOR_MAX_ENTRIES} allowed)")
    selector: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            reader.report(path, f"label key {key!r} must be a string")
            continue
        key_problem = _label_key_problem(key)
        if key_problem is not None:
            reader.report(path, f"key {_preview(key)} is not a valid label key: {key_problem}")
        checked = reader.checked_string(f"{path}[{_preview(key)}]", value, _check_label_value)
        if key_problem is None and checked is not None:
            selector[key] = checked
    return selector


def _read_unique_values(
    reader: _SpecReader, single_key: str | None, list_key: str, check: _Check, *, max_items: int
) -> tuple[str, ...]:
    """Read a subnet or security-group field pair: the single field, then the list.

    Each value may be given once across both fields.
    """
    entries: list[tuple[str, str]] = []
    if single_key is not None:
        single = reader.string(single_key, check)
        if single is not None:
            entries.append((f"spec.{single_key}", single))
    entries.extend(reader.string_list(list_key, check, max_items=max_items))
    first_path: dict[str, str] = {}
    for path, value in entries:
        if value in first_path:
            reader.report(path, f"{_preview(value)} is listed twice (first at {first_path[value]})")
        else:
            first_path[value] = path
    return tuple(first_path)


def _require_one_of(reader: _SpecReader, what: str, keys: Sequence[str]) -> None:
    if any(_is_given(reader.get(key)) for key in keys):
        return
    choices = ", ".join(keys[:-1]) + f" or {keys[-1]}"
    reader.report("spec", f"at least one {what} is required (set {choices})")


def _is_given(value: object) -> bool:
    """Whether a field counts towards "at least one": present, and not an empty list."""
    return value is not None and not (isinstance(value, list | tuple) and not value)


def _aws_id_check(pattern: re.Pattern[str], prefix: str, kind: str) -> _Check:
    def check(value: str) -> str | None:
        if pattern.fullmatch(value):
            return None
        return (
            f"{_preview(value)} is not a valid {kind}"
            f' (expected "{prefix}" followed by 8 or 17 lowercase hex digits)'
        )

    return check


def _length_check(minimum: int, maximum: int | None) -> _Check:
    def check(value: str) -> str | None:
        if len(value) < minimum:
            return "must not be empty"
        if maximum is not None and len(value) > maximum:
            return f"is {len(value)} characters long (at most {maximum} allowed)"
        return None

    return check


_SUBNET_ID_CHECK: Final = _aws_id_check(SUBNET_ID_PATTERN, "subnet-", "subnet ID")
_SG_ID_CHECK: Final = _aws_id_check(SECURITY_GROUP_ID_PATTERN, "sg-", "security group ID")
_SUBNET_NAME_CHECK: Final = _length_check(1, SUBNET_NAME_MAX_LENGTH)
_SG_NAME_CHECK: Final = _length_check(1, SECURITY_GROUP_NAME_MAX_LENGTH)


def _check_dpdk_driver(value: str) -> str | None:
    if value in DPDK_DRIVERS:
        return None
    return f"{_preview(value)} is not a supported DPDK driver (use {', '.join(DPDK_DRIVERS)})"


def _check_pci_address(value: str) -> str | None:
    if _PCI_ADDRESS_PATTERN.fullmatch(value):
        return None
    return (
        f"{_preview(value)} is not a PCI address (expected DDDD:BB:DD.F in hex, "
        "device 00-1f, function 0-7, e.g. 0000:00:06.0)"
    )


def _check_label_value(value: str) -> str | None:
    if value == "":
        return None
    problem = _label_name_problem(value, "it")
    return None if problem is None else f"{_preview(value)} is not a valid label value: {problem}"


def _label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label key (``[prefix/]name``), or None."""
    if key.count("/") > 1:
        return "use at most one '/', between an optional DNS subdomain prefix and the name"
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "the prefix before '/' must not be empty"
        if len(prefix) > _DNS_SUBDOMAIN_MAX_LENGTH:
            return (
                f"the prefix is {len(prefix)} characters long"
                f" (at most {_DNS_SUBDOMAIN_MAX_LENGTH} allowed)"
            )
        if not _DNS_SUBDOMAIN_PATTERN.fullmatch(prefix):
            return (
                "the prefix must be a lowercase DNS subdomain (letters, digits, '-' and '.',"
                " starting and ending with a letter or digit, e.g. example.com)"
            )
    return _label_name_problem(name, "the name")


def _label_name_problem(text: str, subject: str) -> str | None:
    if not text:
        return f"{subject} must not be empty"
    if len(text) > _LABEL_NAME_MAX_LENGTH:
        return (
            f"{subject} is {len(text)} characters long (at most {_LABEL_NAME_MAX_LENGTH} allowed)"
        )
    if not _LABEL_NAME_PATTERN.fullmatch(text):
        return (
            f"{subject} must start and end with a letter or digit"
            " and contain only letters, digits, '-', '_' and '.'"
        )
    return None


def _wrong_type(expected: str, value: object) -> str:
    got = "null" if value is None else f"{_json_type(value)} {_preview(value)}"
    return f"must be {expected}, got {got}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _preview(value: object) -> str:
    """``value`` as JSON, shortened so that one bad value cannot flood a condition message."""
    if isinstance(value, str):
        if len(value) > _PREVIEW_MAX_LENGTH:
            value = value[: _PREVIEW_MAX_LENGTH - 3] + "..."
        return json.dumps(value, ensure_ascii=False)
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except ValueError:  # a circular structure, which JSON from the API cannot hold
        text = repr(value)
    if len(text) > _PREVIEW_MAX_LENGTH:
        return text[: _PREVIEW_MAX_LENGTH - 3] + "..."
    return text


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _opt_enum(enum: type[_E], value: object) -> _E | None:
    if not isinstance(value, str):
        return None
    try:
        return enum(value)
    except ValueError:
        return None


def _opt_list(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _without_none(fields: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in fields.items() if value is not None}

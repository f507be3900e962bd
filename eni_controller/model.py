"""Typed NodeENI objects.

The Kubernetes API hands the controller plain camelCase dicts. This module turns
them into frozen, typed objects once, at the edge, so the rest of the controller
never digs through dicts or trusts their types. The spec is checked rule by rule
(spec.py: every problem in words an operator can act on). Status, on the other
hand, is written by the controller and the node agent, so it is read
tolerantly: junk is dropped, never raised.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeVar

from eni_controller.spec import NodeENISpec, parse_spec

GROUP: Final = "networking.k8s.aws"
VERSION: Final = "v1alpha1"
PLURAL: Final = "nodeenis"
KIND: Final = "NodeENI"
# The per-node object (issue 18), ENINode: its kind and plural are eninode.py's
FINALIZER: Final = "nodeeni.networking.k8s.aws/finalizer"
CLEANUP_START_ANNOTATION: Final = "aws-multi-eni-controller/cleanup-start-time"

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
        node_id = opt_str(raw.get("nodeID"))
        eni_id = opt_str(raw.get("eniID"))
        if not node_id or not eni_id:
            return None
        return cls(
            node_id=node_id,
            instance_id=opt_str(raw.get("instanceID")),
            eni_id=eni_id,
            attachment_id=opt_str(raw.get("attachmentID")),
            subnet_id=opt_str(raw.get("subnetID")),
            subnet_cidr=opt_str(raw.get("subnetCIDR")),
            mac_address=opt_str(raw.get("macAddress")),
            private_ip_address=opt_str(raw.get("privateIPAddress")),
            device_index=opt_int(raw.get("deviceIndex")),
            mtu=opt_int(raw.get("mtu")),
            status=opt_enum(AttachmentState, raw.get("status")),
            last_updated=opt_str(raw.get("lastUpdated")),
            dpdk_bound=opt_bool(raw.get("dpdkBound")),
            dpdk_driver=opt_str(raw.get("dpdkDriver")),
            dpdk_resource_name=opt_str(raw.get("dpdkResourceName")),
            dpdk_pci_address=opt_str(raw.get("dpdkPCIAddress")),
            interface_name=opt_str(raw.get("interfaceName")),
        )

    def to_dict(self, *, last_updated: str | None = None) -> dict[str, object]:
        """The camelCase status item, without the fields that are None;
        `last_updated` stamps it in place of the entry's own."""
        return without_none(
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
        return without_none(
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
        type_ = opt_str(raw.get("type"))
        status = opt_enum(ConditionStatus, raw.get("status"))
        if not type_ or status is None:
            return None
        return cls(
            type=type_,
            status=status,
            reason=opt_str(raw.get("reason")),
            message=opt_str(raw.get("message")),
            last_transition_time=opt_str(raw.get("lastTransitionTime")),
            observed_generation=opt_int(raw.get("observedGeneration")),
        )

    def to_dict(self) -> dict[str, object]:
        """The camelCase condition, without the fields that are None."""
        return without_none(
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
        attachments = (Attachment.from_dict(item) for item in opt_list(raw.get("attachments")))
        conditions = (Condition.from_dict(item) for item in opt_list(raw.get("conditions")))
        return cls(
            attachments=tuple(item for item in attachments if item is not None),
            conditions=tuple(item for item in conditions if item is not None),
            observed_generation=opt_int(raw.get("observedGeneration")),
            attached_count=opt_int(raw.get("attachedCount")),
            desired_count=opt_int(raw.get("desiredCount")),
        )

    def to_dict(self) -> dict[str, object]:
        """The camelCase status; the two lists are always present, even when empty."""
        return without_none(
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
            name=opt_str(metadata.get("name")) or "",
            uid=opt_str(metadata.get("uid")) or "",
            generation=opt_int(metadata.get("generation")) or 0,
            resource_version=opt_str(metadata.get("resourceVersion")) or "",
            labels=string_map(metadata.get("labels")),
            annotations=string_map(metadata.get("annotations")),
            finalizers=tuple(
                item for item in opt_list(metadata.get("finalizers")) if isinstance(item, str)
            ),
            deletion_timestamp=opt_str(metadata.get("deletionTimestamp")),
            spec=spec,
            problems=problems,
            status=NodeENIStatus.from_dict(obj.get("status")),
        )


def opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def opt_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def opt_enum(enum: type[_E], value: object) -> _E | None:
    if not isinstance(value, str):
        return None
    try:
        return enum(value)
    except ValueError:
        return None


def opt_list(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()


def string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def without_none(fields: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in fields.items() if value is not None}

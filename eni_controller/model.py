"""Typed NodeENI objects, made once at the edge from the API's camelCase dicts.

The spec is checked rule by rule (spec.py); status, written by the controller
and the node agent, is read tolerantly: junk is dropped, never raised.

A status item has two forms, one per NodeENI (reconcile/status_fit.py picks by
the number of entries): the full one (``Attachment.to_dict``) and the compact
one (``to_compact_dict``): exactly COMPACT_ATTACHMENT_FIELDS, the fields the
controller reads back and that identify the attachment; the rest is in the
Node, the node's ENINode or EC2. ``from_dict`` reads both forms.
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
FINALIZER: Final = "nodeeni.networking.k8s.aws/finalizer"
CLEANUP_START_ANNOTATION: Final = "aws-multi-eni-controller/cleanup-start-time"

# what the controller reads back of an attachment, and its node (~157 bytes, not ~410)
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


@dataclass(frozen=True, kw_only=True, slots=True)
class Attachment:
    """One item of ``status.attachments``: an ENI of this NodeENI on one node (the
    agent's facts, interface name and DPDK, folded in by reconcile/eninodes.py)."""

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
        """One status item (a field of the wrong type reads as None); None when it
        is not an object or lacks ``nodeID`` or ``eniID``."""
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
        """The camelCase item without None fields; `last_updated` replaces the entry's own."""
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
        """The compact status item: COMPACT_ATTACHMENT_FIELDS only, without None fields."""
        full = self.to_dict()
        return {key: full[key] for key in COMPACT_ATTACHMENT_FIELDS if key in full}


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
        """One condition; None without a ``type`` or a valid ``status``."""
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
    attachments: tuple[Attachment, ...] = ()
    conditions: tuple[Condition, ...] = ()
    observed_generation: int | None = None
    attached_count: int | None = None
    desired_count: int | None = None

    @classmethod
    def from_dict(cls, raw: object) -> NodeENIStatus:
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
        """The camelCase status; both lists present, even when empty."""
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
        return next((item for item in self.conditions if item.type == type_), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeENI:
    """A NodeENI object. ``spec`` is None exactly when ``problems`` is not empty."""

    name: str
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # made read-only below
    annotations: Mapping[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deletion_timestamp: str | None = None
    spec: NodeENISpec | None
    problems: tuple[str, ...] = ()
    status: NodeENIStatus = field(default_factory=NodeENIStatus)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "annotations", MappingProxyType(dict(self.annotations)))

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
        """A NodeENI as the API returns it; never raises on a bad spec or status."""
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

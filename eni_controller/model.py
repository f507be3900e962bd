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

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from types import MappingProxyType
from typing import Any, Final, TypeVar

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


def utc_now() -> str:
    """Now, as the API writes a timestamp (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        values = _read(_ATTACHMENT_KEYS, raw, "node_id", "eni_id")
        return None if values is None else cls(**values)

    def to_dict(self, *, last_updated: str | None = None) -> dict[str, object]:
        """The camelCase item without None fields; `last_updated` replaces the entry's own."""
        fields = _write(_ATTACHMENT_KEYS, self)
        if last_updated:
            fields["lastUpdated"] = last_updated
        return fields

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
        values = _read(_CONDITION_KEYS, raw, "type", "status")
        return None if values is None else cls(**values)

    def to_dict(self) -> dict[str, object]:
        return _write(_CONDITION_KEYS, self)


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
            **(_read(_STATUS_COUNT_KEYS, raw) or {}),
        )

    def to_dict(self) -> dict[str, object]:
        """The camelCase status; both lists present, even when empty."""
        return {
            "attachments": [item.to_dict() for item in self.attachments],
            "conditions": [item.to_dict() for item in self.conditions],
            **_write(_STATUS_COUNT_KEYS, self),
        }

    def condition(self, type_: str) -> Condition | None:
        return next((item for item in self.conditions if item.type == type_), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeENI:
    """A NodeENI object. ``spec`` is None exactly when ``problems`` is not empty."""

    name: str
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)  # made read-only below
    finalizers: tuple[str, ...] = ()
    deletion_timestamp: str | None = None
    spec: NodeENISpec | None
    problems: tuple[str, ...] = ()
    status: NodeENIStatus = field(default_factory=NodeENIStatus)

    def __post_init__(self) -> None:
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
    return next((member for member in enum if member.value == value), None)


def opt_list(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()


def string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


# attribute -> (camelCase key, reader of the raw value: None when it is of the wrong type)
_Keys = Mapping[str, tuple[str, Callable[[object], object]]]
_ATTACHMENT_KEYS: Final[_Keys] = {
    "node_id": ("nodeID", opt_str),
    "instance_id": ("instanceID", opt_str),
    "eni_id": ("eniID", opt_str),
    "attachment_id": ("attachmentID", opt_str),
    "subnet_id": ("subnetID", opt_str),
    "subnet_cidr": ("subnetCIDR", opt_str),
    "mac_address": ("macAddress", opt_str),
    "private_ip_address": ("privateIPAddress", opt_str),
    "device_index": ("deviceIndex", opt_int),
    "mtu": ("mtu", opt_int),
    "status": ("status", partial(opt_enum, AttachmentState)),
    "last_updated": ("lastUpdated", opt_str),
    "dpdk_bound": ("dpdkBound", opt_bool),
    "dpdk_driver": ("dpdkDriver", opt_str),
    "dpdk_resource_name": ("dpdkResourceName", opt_str),
    "dpdk_pci_address": ("dpdkPCIAddress", opt_str),
    "interface_name": ("interfaceName", opt_str),
}
_CONDITION_KEYS: Final[_Keys] = {
    "type": ("type", opt_str),
    "status": ("status", partial(opt_enum, ConditionStatus)),
    "reason": ("reason", opt_str),
    "message": ("message", opt_str),
    "last_transition_time": ("lastTransitionTime", opt_str),
    "observed_generation": ("observedGeneration", opt_int),
}
_STATUS_COUNT_KEYS: Final[_Keys] = {
    "observed_generation": ("observedGeneration", opt_int),
    "attached_count": ("attachedCount", opt_int),
    "desired_count": ("desiredCount", opt_int),
}


def _read(keys: _Keys, raw: object, *required: str) -> dict[str, Any] | None:
    """The attributes of `raw`; None if it is not an object or lacks a `required` one."""
    if not isinstance(raw, Mapping):
        return None
    values = {attr: read(raw.get(key)) for attr, (key, read) in keys.items()}
    return values if all(values[attr] for attr in required) else None


def _write(keys: _Keys, obj: object) -> dict[str, object]:
    """The camelCase fields of `obj` without None ones, enums as plain strings."""
    fields = without_none({key: getattr(obj, attr) for attr, (key, _) in keys.items()})
    return {k: v.value if isinstance(v, StrEnum) else v for k, v in fields.items()}


def without_none(fields: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in fields.items() if value is not None}

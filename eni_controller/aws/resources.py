"""EC2 resources as plain frozen dataclasses.

The reconcile core decides over these; it never sees botocore's dicts. The
``from_api`` constructors are the only place that knows EC2's response shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def tags_of(raw: Mapping[str, Any], key: str = "TagSet") -> Mapping[str, str]:
    return MappingProxyType({t["Key"]: t.get("Value", "") for t in raw.get(key) or ()})


@dataclass(frozen=True, kw_only=True, slots=True)
class ENIAttachment:
    attachment_id: str
    instance_id: str
    device_index: int
    status: str  # attaching | attached | detaching | detached
    delete_on_termination: bool

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ENIAttachment:
        return cls(
            attachment_id=raw["AttachmentId"],
            instance_id=raw.get("InstanceId", ""),
            device_index=int(raw.get("DeviceIndex", -1)),
            status=raw.get("Status", ""),
            delete_on_termination=bool(raw.get("DeleteOnTermination", False)),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkInterface:
    eni_id: str
    subnet_id: str
    vpc_id: str
    availability_zone: str
    status: str  # available | in-use | attaching | detaching | associated
    mac_address: str
    private_ip_address: str
    description: str
    security_group_ids: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    attachment: ENIAttachment | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> NetworkInterface:
        attachment = raw.get("Attachment")
        return cls(
            eni_id=raw["NetworkInterfaceId"],
            subnet_id=raw.get("SubnetId", ""),
            vpc_id=raw.get("VpcId", ""),
            availability_zone=raw.get("AvailabilityZone", ""),
            status=raw.get("Status", ""),
            mac_address=raw.get("MacAddress", ""),
            private_ip_address=raw.get("PrivateIpAddress", ""),
            description=raw.get("Description", ""),
            security_group_ids=tuple(g["GroupId"] for g in raw.get("Groups") or ()),
            tags=tags_of(raw),
            attachment=ENIAttachment.from_api(attachment)
            if attachment and attachment.get("AttachmentId")
            else None,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Instance:
    instance_id: str
    availability_zone: str
    state: str  # pending | running | shutting-down | terminated | stopping | stopped
    instance_type: str
    vpc_id: str
    occupied_device_indexes: frozenset[int]
    # not hashed: an Instance stays hashable
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def gone(self) -> bool:
        return self.state in ("shutting-down", "terminated")

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Instance:
        return cls(
            instance_id=raw["InstanceId"],
            availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
            state=raw.get("State", {}).get("Name", ""),
            instance_type=raw.get("InstanceType", ""),
            vpc_id=raw.get("VpcId", ""),
            occupied_device_indexes=frozenset(
                int(eni["Attachment"]["DeviceIndex"])
                for eni in raw.get("NetworkInterfaces") or ()
                if eni.get("Attachment", {}).get("DeviceIndex") is not None
            ),
            tags=tags_of(raw, "Tags"),
        )


def max_enis(raw: Mapping[str, Any]) -> tuple[str, int]:
    """An instance type of DescribeInstanceTypes, and how many ENIs it holds."""
    return raw["InstanceType"], int(raw.get("NetworkInfo", {})["MaximumNetworkInterfaces"])


@dataclass(frozen=True, kw_only=True, slots=True)
class Subnet:
    subnet_id: str
    vpc_id: str
    availability_zone: str
    cidr: str
    name: str | None
    # every tag, for the allow-list; not hashed: a Slot holding this Subnet stays hashable
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Subnet:
        tags = tags_of(raw, "Tags")
        return cls(
            subnet_id=raw["SubnetId"],
            vpc_id=raw.get("VpcId", ""),
            availability_zone=raw.get("AvailabilityZone", ""),
            cidr=raw.get("CidrBlock", ""),
            name=tags.get("Name"),
            tags=tags,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SecurityGroup:
    group_id: str
    group_name: str
    vpc_id: str
    name_tag: str | None
    # not hashed, as Subnet.tags
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> SecurityGroup:
        tags = tags_of(raw, "Tags")
        return cls(
            group_id=raw["GroupId"],
            group_name=raw.get("GroupName", ""),
            vpc_id=raw.get("VpcId", ""),
            name_tag=tags.get("Name"),
            tags=tags,
        )

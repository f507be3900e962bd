"""The in-memory EC2 of the unit tests: an aiobotocore EC2 client's surface
answering from dicts at once (`MemoryEC2`), under the controller's real
EC2Client (`unpaced_client`), and `RulesMemoryEC2` with the EC2 behaviours the
retry tests need.

`MemoryEC2` knows one VPC (`vpc-1`) with one subnet (SUBNET, Name `multus-a`,
in AZ) and one security group (SECURITY_GROUP, `multus`), running
instances of INSTANCE_TYPE, and the ENIs made through it or `put` there by
hand: describes filter by tag, id, subnet, VPC and name as EC2 does (values
OR-ed, filters AND-ed), an instance lists the ENIs attached to it, and
attach, detach and delete take effect at once. A test may change the world
it describes: `subnets`, `security_groups` (API records), `instances`
(`instance_record`s by id) and `instance_types` (type -> ENI limit) are
plain public containers. `RulesMemoryEC2` adds:

- ClientToken: a token seen before answers with the ENI it first made, even
  after that ENI was deleted (EC2's idempotency), and a token sent again with
  other parameters answers IdempotentParameterMismatch.
- `refuse[action] = code`: that action (a mutation, DescribeNetworkInterfaces
  or DescribeInstances) answers the AWS error `code` (`refuse_subnets` limits
  a CreateNetworkInterface refusal to those subnets).
- `sticky_delete_on_termination = False`: a DeleteOnTermination change is
  accepted and ignored, as plain moto does.
- AttachNetworkInterface of a deleted ENI answering
  InvalidNetworkInterfaceID.NotFound.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from eni_controller.aws.breaker import CircuitBreaker
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.ratelimit import BucketSpec, RateLimiter, RateLimits
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import CircuitBreakerConfig
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from tests.harness.ec2_errors import client_error
from tests.harness.ec2world import AZ_A, LARGE_INSTANCE_TYPE

AZ = AZ_A  # of every instance, subnet and ENI here
INSTANCE_TYPE = LARGE_INSTANCE_TYPE
_WIDE = BucketSpec(capacity=1e12, refill_per_second=1e12)


SUBNET = {
    "SubnetId": "subnet-0a000001",
    "VpcId": "vpc-1",
    "AvailabilityZone": AZ,
    "CidrBlock": "10.1.0.0/24",
    "Tags": [{"Key": "Name", "Value": "multus-a"}],
}
SECURITY_GROUP = {"GroupId": "sg-0a000001", "GroupName": "multus", "VpcId": "vpc-1", "Tags": []}
MAX_NETWORK_INTERFACES = 15  # INSTANCE_TYPE's


def instance_record(
    instance_id: str, *, vpc_id: str = "vpc-1", tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A running instance of INSTANCE_TYPE in AZ as DescribeInstances answers it,
    without its ENIs (MemoryEC2 adds those)."""
    return {
        "InstanceId": instance_id,
        "Placement": {"AvailabilityZone": AZ},
        "State": {"Name": "running"},
        "InstanceType": INSTANCE_TYPE,
        "VpcId": vpc_id,
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }


def _matches(
    item: dict[str, Any], filters: Sequence[dict[str, Any]], fields: dict[str, str]
) -> bool:
    """EC2's filter rule: every filter holds, each by any of its values."""
    for f in filters:
        name, values = f["Name"], f["Values"]
        if name.startswith("tag:"):
            tag_list = item.get("TagSet", item.get("Tags")) or ()
            value = next((t["Value"] for t in tag_list if t["Key"] == name[4:]), None)
        elif name == "attachment.instance-id":
            value = (item.get("Attachment") or {}).get("InstanceId")
        else:
            value = item.get(fields[name])
        if value not in values:
            return False
    return True


_ENI_FIELDS = {
    "network-interface-id": "NetworkInterfaceId",
    "subnet-id": "SubnetId",
    "vpc-id": "VpcId",
    "status": "Status",
}
_SUBNET_FIELDS = {"subnet-id": "SubnetId", "vpc-id": "VpcId"}
_GROUP_FIELDS = {"group-id": "GroupId", "group-name": "GroupName", "vpc-id": "VpcId"}


class MemoryEC2:
    """An aiobotocore EC2 client's surface, answering from dicts at once."""

    def __init__(self, instances: Sequence[str]) -> None:
        self._ids = itertools.count(1)
        self.enis: dict[str, dict[str, Any]] = {}
        self._by_uid: dict[str, list[dict[str, Any]]] = {}
        self.instances = {i: instance_record(i) for i in instances}
        self.instance_types = {INSTANCE_TYPE: MAX_NETWORK_INTERFACES}
        self.subnets = [copy.deepcopy(SUBNET)]
        self.security_groups = [copy.deepcopy(SECURITY_GROUP)]
        self.calls: dict[str, int] = {}

    def _count(self, action: str) -> None:
        self.calls[action] = self.calls.get(action, 0) + 1

    async def create_network_interface(self, **params: Any) -> dict[str, Any]:
        self._count("CreateNetworkInterface")
        n = next(self._ids)
        tag_list = params["TagSpecifications"][0]["Tags"]
        eni = {
            "NetworkInterfaceId": f"eni-{n:017x}",
            "SubnetId": params["SubnetId"],
            "VpcId": "vpc-1",
            "AvailabilityZone": AZ,
            "Status": "available",
            "MacAddress": f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
            "PrivateIpAddress": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            "Description": params["Description"],
            "Groups": [{"GroupId": g} for g in params["Groups"]],
            "TagSet": list(tag_list),
        }
        self._add(eni)
        return {"NetworkInterface": eni}

    def put(self, eni_id: str, *, eni_tags: Mapping[str, str]) -> None:
        """An available ENI in SUBNET made outside the controller (by hand, or by
        another controller), with `eni_tags`; no call is counted."""
        self._add(
            {
                "NetworkInterfaceId": eni_id,
                "SubnetId": SUBNET["SubnetId"],
                "VpcId": "vpc-1",
                "AvailabilityZone": AZ,
                "Status": "available",
                "MacAddress": "",
                "PrivateIpAddress": "",
                "Description": "",
                "Groups": [],
                "TagSet": [{"Key": k, "Value": v} for k, v in eni_tags.items()],
            }
        )

    def _add(self, eni: dict[str, Any]) -> None:
        self.enis[eni["NetworkInterfaceId"]] = eni
        tag_list = eni["TagSet"]
        uid = next((t["Value"] for t in tag_list if t["Key"] == tags.NODEENI_UID_KEY), "")
        self._by_uid.setdefault(uid, []).append(eni)

    async def attach_network_interface(self, **params: Any) -> dict[str, Any]:
        self._count("AttachNetworkInterface")
        eni = self.enis[params["NetworkInterfaceId"]]
        attachment_id = "eni-attach-" + eni["NetworkInterfaceId"][4:]
        eni["Status"] = "in-use"
        eni["Attachment"] = {
            "AttachmentId": attachment_id,
            "InstanceId": params["InstanceId"],
            "DeviceIndex": params["DeviceIndex"],
            "Status": "attached",
            "DeleteOnTermination": False,
        }
        return {"AttachmentId": attachment_id}

    async def modify_network_interface_attribute(self, **params: Any) -> dict[str, Any]:
        self._count("ModifyNetworkInterfaceAttribute")
        eni = self.enis[params["NetworkInterfaceId"]]
        eni["Attachment"]["DeleteOnTermination"] = params["Attachment"]["DeleteOnTermination"]
        return {}

    async def create_tags(self, **params: Any) -> dict[str, Any]:
        self._count("CreateTags")
        for eni_id in params["Resources"]:
            tag_set = self.enis[eni_id]["TagSet"]
            added = {t["Key"] for t in params["Tags"]}
            tag_set[:] = [t for t in tag_set if t["Key"] not in added] + list(params["Tags"])
        return {}

    async def detach_network_interface(self, **params: Any) -> dict[str, Any]:
        self._count("DetachNetworkInterface")
        for eni in self.enis.values():
            if (eni.get("Attachment") or {}).get("AttachmentId") == params["AttachmentId"]:
                del eni["Attachment"]
                eni["Status"] = "available"
                return {}
        raise client_error("InvalidAttachmentID.NotFound", action="DetachNetworkInterface")

    async def delete_network_interface(self, **params: Any) -> dict[str, Any]:
        self._count("DeleteNetworkInterface")
        eni = self.enis.get(params["NetworkInterfaceId"])
        if eni is None:
            raise client_error(
                "InvalidNetworkInterfaceID.NotFound", action="DeleteNetworkInterface"
            )
        del self.enis[params["NetworkInterfaceId"]]
        for listed in self._by_uid.values():
            if eni in listed:
                listed.remove(eni)
        return {}

    async def describe_network_interfaces(self, **params: Any) -> dict[str, Any]:
        self._count("DescribeNetworkInterfaces")
        filters = params.get("Filters") or []
        by_uid = [f for f in filters if f["Name"] == f"tag:{tags.NODEENI_UID_KEY}"]
        candidates = (
            [e for uid in by_uid[0]["Values"] for e in self._by_uid.get(uid, ())]
            if by_uid
            else list(self.enis.values())
        )
        return {"NetworkInterfaces": [e for e in candidates if _matches(e, filters, _ENI_FIELDS)]}

    async def describe_instances(self, **params: Any) -> dict[str, Any]:
        self._count("DescribeInstances")
        (ids,) = (f["Values"] for f in params["Filters"] if f["Name"] == "instance-id")
        attached: dict[str, list[dict[str, Any]]] = {}
        for eni in self.enis.values():
            if eni.get("Attachment"):
                attached.setdefault(eni["Attachment"]["InstanceId"], []).append(eni)
        instances = [
            {
                **self.instances[i],
                "NetworkInterfaces": [
                    {"Attachment": {"DeviceIndex": 0}},
                    *({"Attachment": dict(e["Attachment"])} for e in attached.get(i, ())),
                ],
            }
            for i in ids
            if i in self.instances
        ]
        return {"Reservations": [{"Instances": instances}]}

    async def describe_instance_types(self, **params: Any) -> dict[str, Any]:
        self._count("DescribeInstanceTypes")
        return {
            "InstanceTypes": [
                {
                    "InstanceType": t,
                    "NetworkInfo": {"MaximumNetworkInterfaces": self.instance_types[t]},
                }
                for t in params["InstanceTypes"]
                if t in self.instance_types
            ]
        }

    async def describe_subnets(self, **params: Any) -> dict[str, Any]:
        self._count("DescribeSubnets")
        filters = params.get("Filters") or []
        return {
            "Subnets": [
                copy.deepcopy(s) for s in self.subnets if _matches(s, filters, _SUBNET_FIELDS)
            ]
        }

    async def describe_security_groups(self, **params: Any) -> dict[str, Any]:
        self._count("DescribeSecurityGroups")
        filters = params.get("Filters") or []
        return {
            "SecurityGroups": [
                copy.deepcopy(g)
                for g in self.security_groups
                if _matches(g, filters, _GROUP_FIELDS)
            ]
        }


ONE_ATTEMPT = RetryPolicy(max_attempts=1)  # an EC2 error is raised as it comes


def unpaced_client(raw: Any, *, metrics: Metrics, retry: RetryPolicy | None = None) -> EC2Client:
    """The controller's EC2 client over `raw`, its token buckets opened wide
    (`retry=ONE_ATTEMPT` for tests that want a refusal raised as it comes)."""
    return EC2Client(
        raw,
        limiter=RateLimiter(RateLimits(describe=_WIDE, mutating=_WIDE)),
        breaker=CircuitBreaker(CircuitBreakerConfig()),
        retry=retry or RetryPolicy(),
        metrics=metrics,
    )


class RulesMemoryEC2(MemoryEC2):
    def __init__(self, instances: Sequence[str]) -> None:
        super().__init__(instances)
        self.refuse: dict[str, str] = {}
        self.refuse_subnets: set[str] = set()
        self.sticky_delete_on_termination = True
        self.tokens: dict[str, tuple[str, dict[str, Any]]] = {}  # token -> (params, response)

    def _refused(self, action: str, params: dict[str, Any]) -> None:
        code = self.refuse.get(action)
        if code is None:
            return
        subnet = params.get("SubnetId")
        if (
            action == "CreateNetworkInterface"
            and self.refuse_subnets
            and subnet not in self.refuse_subnets
        ):
            return
        self._count(action)  # refused calls count: EC2 received them
        raise client_error(code, action=action)

    async def create_network_interface(self, **params: Any) -> dict[str, Any]:
        self._refused("CreateNetworkInterface", params)
        token = params.get("ClientToken")
        fingerprint = json.dumps(
            {k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True
        )
        if token is not None and token in self.tokens:
            self._count("CreateNetworkInterface")
            seen, response = self.tokens[token]
            if seen != fingerprint:
                raise client_error("IdempotentParameterMismatch", action="CreateNetworkInterface")
            return copy.deepcopy(response)
        response = await super().create_network_interface(**params)
        if token is not None:  # the answer as it was at creation, as EC2 replays it
            self.tokens[token] = (fingerprint, copy.deepcopy(response))
        return response

    async def attach_network_interface(self, **params: Any) -> dict[str, Any]:
        self._refused("AttachNetworkInterface", params)
        if params["NetworkInterfaceId"] not in self.enis:
            self._count("AttachNetworkInterface")
            raise client_error(
                "InvalidNetworkInterfaceID.NotFound", action="AttachNetworkInterface"
            )
        return await super().attach_network_interface(**params)

    async def describe_network_interfaces(self, **params: Any) -> dict[str, Any]:
        self._refused("DescribeNetworkInterfaces", params)
        return await super().describe_network_interfaces(**params)

    async def describe_instances(self, **params: Any) -> dict[str, Any]:
        self._refused("DescribeInstances", params)
        return await super().describe_instances(**params)

    async def modify_network_interface_attribute(self, **params: Any) -> dict[str, Any]:
        self._refused("ModifyNetworkInterfaceAttribute", params)
        if "Attachment" in params and not self.sticky_delete_on_termination:
            self._count("ModifyNetworkInterfaceAttribute")
            return {}
        if "Groups" in params:
            self._count("ModifyNetworkInterfaceAttribute")
            self.enis[params["NetworkInterfaceId"]]["Groups"] = [
                {"GroupId": g} for g in params["Groups"]
            ]
            return {}
        return await super().modify_network_interface_attribute(**params)

"""The EC2 world every test starts from, seeded into the moto server.

One VPC; subnets in two AZs with Name tags (including one name used twice, for
the ambiguous-name case); security groups found by group name or Name tag; and
running instances in both AZs for Kubernetes Nodes to point at.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import boto3

from eni_controller.aws.ec2 import eni_tag_specifications
from eni_controller.reconcile import tags
from tests.harness.realism.config import OBSERVER_HEADER

REGION = "us-east-1"
AZ_A = "us-east-1a"
AZ_B = "us-east-1b"
# The two multus subnets of AZ_A (seeded below): a NodeENI over both puts two ENIs
# on a node, which a SMALL_INSTANCE_TYPE holds beside its primary.
MULTUS_SUBNETS_A = ("multus-a", "multus-a-2")
SMALL_INSTANCE_TYPE = "m5.large"  # MaximumNetworkInterfaces 3
LARGE_INSTANCE_TYPE = "c5.24xlarge"  # MaximumNetworkInterfaces 15
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
AMBIGUOUS_SUBNET_NAME = "ambiguous-subnet"
AMBIGUOUS_SG_NAME = "ambiguous-sg"


@dataclass(frozen=True, kw_only=True)
class Subnet:
    id: str
    name: str
    az: str
    cidr: str


@dataclass(frozen=True, kw_only=True)
class SecurityGroup:
    id: str
    group_name: str
    name_tag: str


@dataclass(frozen=True, kw_only=True)
class Instance:
    id: str
    az: str
    instance_type: str

    @property
    def provider_id(self) -> str:
        return f"aws:///{self.az}/{self.id}"


@dataclass(frozen=True, kw_only=True)
class World:
    endpoint: str
    region: str
    vpc_id: str
    subnets: tuple[Subnet, ...]
    security_groups: tuple[SecurityGroup, ...]
    instances: tuple[Instance, ...]

    def subnet(self, name: str) -> Subnet:
        (match,) = (s for s in self.subnets if s.name == name)
        return match

    def security_group(self, group_name: str) -> SecurityGroup:
        (match,) = (g for g in self.security_groups if g.group_name == group_name)
        return match

    def instances_in(self, az: str) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.az == az)

    def node_subnet(self, az: str) -> Subnet:
        """The `nodes-<a|b>` subnet instances of `az` run in."""
        return self.subnet(node_subnet_name(az))


# name, AZ, CIDR
_SUBNETS = (
    ("nodes-a", AZ_A, "10.0.0.0/24"),
    ("nodes-b", AZ_B, "10.0.100.0/24"),
    ("multus-a", AZ_A, "10.0.1.0/24"),
    ("multus-a-2", AZ_A, "10.0.11.0/24"),
    ("multus-b", AZ_B, "10.0.2.0/24"),
    ("multus-b-2", AZ_B, "10.0.12.0/24"),
    (AMBIGUOUS_SUBNET_NAME, AZ_A, "10.0.21.0/24"),
    (AMBIGUOUS_SUBNET_NAME, AZ_B, "10.0.22.0/24"),
)
# group name, Name tag
_SECURITY_GROUPS = (
    ("multus-sg", "multus-sg"),
    ("multus-sg-2", "multus-sg-2"),
    ("sg-by-tag-group", "tagged-sg"),
    ("ambiguous-1", AMBIGUOUS_SG_NAME),
    ("ambiguous-2", AMBIGUOUS_SG_NAME),
)
# AZ, instance type, count
_INSTANCES = (
    (AZ_A, SMALL_INSTANCE_TYPE, 2),
    (AZ_A, "c5.xlarge", 1),
    (AZ_B, SMALL_INSTANCE_TYPE, 2),
)


def ec2_client(endpoint: str, *, observer: bool = False) -> Any:
    """A boto3 EC2 client of the moto server. An `observer` one is the test looking:
    the realism layer neither counts, throttles nor fails its requests and hides
    no new ENI from it (tests.harness.realism.middleware), so sampling EC2 during
    a run changes none of the figures measured about the client under test."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint, **FAKE_CREDENTIALS)
    if observer:

        def mark(request: Any, **_: Any) -> None:
            request.headers[OBSERVER_HEADER] = "1"

        ec2.meta.events.register("before-sign.ec2", mark)
    return ec2


def seed_world(endpoint: str) -> World:
    """Create the seeded resources on a fresh moto server and describe them."""
    ec2 = ec2_client(endpoint)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        Subnet(
            id=ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=cidr,
                AvailabilityZone=az,
                TagSpecifications=[_name_tag("subnet", name)],
            )["Subnet"]["SubnetId"],
            name=name,
            az=az,
            cidr=cidr,
        )
        for name, az, cidr in _SUBNETS
    )
    groups = tuple(
        SecurityGroup(
            id=ec2.create_security_group(
                GroupName=group_name,
                Description=f"seeded {group_name}",
                VpcId=vpc_id,
                TagSpecifications=[_name_tag("security-group", name_tag)],
            )["GroupId"],
            group_name=group_name,
            name_tag=name_tag,
        )
        for group_name, name_tag in _SECURITY_GROUPS
    )
    image_id = ec2.describe_images()["Images"][0]["ImageId"]
    node_subnets = {s.az: s.id for s in subnets if s.name == node_subnet_name(s.az)}
    instances: list[Instance] = []
    for az, instance_type, count in _INSTANCES:
        reservation = ec2.run_instances(
            ImageId=image_id,
            InstanceType=instance_type,
            MinCount=count,
            MaxCount=count,
            SubnetId=node_subnets[az],
        )
        instances += [
            Instance(id=i["InstanceId"], az=az, instance_type=instance_type)
            for i in reservation["Instances"]
        ]
    return World(
        endpoint=endpoint,
        region=REGION,
        vpc_id=vpc_id,
        subnets=subnets,
        security_groups=groups,
        instances=tuple(instances),
    )


def node_subnet_name(az: str) -> str:
    """`nodes-a` for us-east-1a: the seeded subnet that holds an AZ's instances."""
    return f"nodes-{az[-1]}"


def launch_instance(
    endpoint: str, *, az: str, instance_type: str, subnet_id: str | None = None
) -> Instance:
    """A fresh running instance in the seeded `nodes-<az>` subnet.

    For tests whose outcome depends on an instance's ENIs (device indexes, the
    ENI limit, termination): the seeded instances are shared by the session.
    Without `subnet_id` the subnet is found by its Name tag in `az`.
    """
    ec2 = _shared_client(endpoint)
    if subnet_id is None:
        subnets = ec2.describe_subnets(
            Filters=[
                {"Name": "tag:Name", "Values": [node_subnet_name(az)]},
                {"Name": "availability-zone", "Values": [az]},
            ]
        )["Subnets"]
        if len(subnets) != 1:
            raise LookupError(
                f"expected one {node_subnet_name(az)} subnet in {az}, found {len(subnets)}"
            )
        subnet_id = subnets[0]["SubnetId"]
    image_id = _image_id(endpoint)
    (launched,) = ec2.run_instances(
        ImageId=image_id, InstanceType=instance_type, MinCount=1, MaxCount=1, SubnetId=subnet_id
    )["Instances"]
    return Instance(id=launched["InstanceId"], az=az, instance_type=instance_type)


def launch_instances(
    endpoint: str, *, az: str, instance_type: str, count: int
) -> tuple[Instance, ...]:
    """`count` fresh running instances in the seeded `nodes-<az>` subnet, in one
    RunInstances call (a fleet for a scale case), launched as an observer so the
    realism layer's counters and faults leave them out."""
    ec2 = ec2_client(endpoint, observer=True)
    (subnet,) = ec2.describe_subnets(
        Filters=[
            {"Name": "tag:Name", "Values": [node_subnet_name(az)]},
            {"Name": "availability-zone", "Values": [az]},
        ]
    )["Subnets"]
    launched = ec2.run_instances(
        ImageId=_image_id(endpoint),
        InstanceType=instance_type,
        MinCount=count,
        MaxCount=count,
        SubnetId=subnet["SubnetId"],
    )["Instances"]
    return tuple(Instance(id=i["InstanceId"], az=az, instance_type=instance_type) for i in launched)


def create_tagged_eni(
    world: World,
    *,
    subnet: str,
    nodeeni: str,
    uid: str,
    node: str,
    instance_id: str,
    cluster_name: str | None = None,
) -> str:
    """An ENI in the seeded `subnet` with the tags the controller gives its own, made
    behind its back (a crashed controller's leftover, one made after a snapshot, or
    another cluster's: `cluster_name`)."""
    subnet_id = world.subnet(subnet).id
    made = tags.eni_tags(
        nodeeni=nodeeni,
        uid=uid,
        node=node,
        instance_id=instance_id,
        subnet_id=subnet_id,
        cluster_name=cluster_name,
    )
    eni_id: str = _shared_client(world.endpoint).create_network_interface(
        SubnetId=subnet_id,
        TagSpecifications=eni_tag_specifications(made),
    )["NetworkInterface"]["NetworkInterfaceId"]
    return eni_id


@functools.cache
def _shared_client(endpoint: str) -> Any:
    """One client per endpoint for helpers called per test (clients take ~0.3 s to build)."""
    return ec2_client(endpoint)


@functools.cache
def _image_id(endpoint: str) -> str:
    image_id: str = _shared_client(endpoint).describe_images()["Images"][0]["ImageId"]
    return image_id


def _name_tag(resource_type: str, name: str) -> dict[str, Any]:
    return {"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}


def create_go_controller_eni(
    world: World, *, subnet: str, nodeeni: str, node: str, instance_id: str, device_index: int
) -> str:
    """An ENI as the Go aws-multi-eni-controller makes it (NodeENI, Node, SubnetID and
    the managed-by tag; no uid, instance or cluster tag), attached at `device_index`."""
    client = _shared_client(world.endpoint)
    subnet_id = world.subnet(subnet).id
    go_tags = {
        tags.NODEENI_KEY: nodeeni,
        tags.NODE_KEY: node,
        tags.SUBNET_KEY: subnet_id,
        tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE,
    }
    eni_id: str = client.create_network_interface(
        SubnetId=subnet_id,
        Groups=[world.security_group("multus-sg").id],
        Description=f"ENI created by nodeeni-controller for node {node}",
        TagSpecifications=eni_tag_specifications(go_tags),
    )["NetworkInterface"]["NetworkInterfaceId"]
    client.attach_network_interface(
        NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=device_index
    )
    return eni_id

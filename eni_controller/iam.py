"""The IAM policy the controller needs, built from the code it authorizes.

`eni-controller iam-policy` prints it for one cluster; deploy/iam/policy.json is
the same policy with placeholders (a unit test holds the file equal to
`policy_template()`). Built here, not read from the file, so it cannot drift
from the code: its Describe actions are `aws.ec2.EC2_ACTIONS`, its tag
conditions use the tag keys of `reconcile.tags` that every create sends.

Invariants:
- every action in `EC2_ACTIONS` is granted, and nothing else except
  `ec2:CreateTags`, granted only as part of CreateNetworkInterface (and to
  complete the tags of the Go controller's ENIs), never on any other resource;
- the controller may create only ENIs tagged `kubernetes.io/cluster/<name>=owned`
  and managed-by, only in the cluster VPC's subnets and security groups, and may
  attach, detach, modify and delete only ENIs that carry the cluster tag.
"""

from __future__ import annotations

import re
from typing import Any, Final

from eni_controller.aws.ec2 import EC2_ACTIONS
from eni_controller.config import CLUSTER_NAME_PATTERN, VPC_ID_PATTERN
from eni_controller.reconcile.tags import CLUSTER_TAG_PREFIX, MANAGED_BY_KEY, MANAGED_BY_VALUE

POLICY_VERSION: Final = "2012-10-17"
PLACEHOLDERS: Final = {
    "cluster_name": "${CLUSTER_NAME}",
    "vpc_id": "${VPC_ID}",
    "region": "${REGION}",
    "account_id": "${ACCOUNT_ID}",
}
ANY: Final = "*"
OWNED: Final = "owned"

DESCRIBE_ACTIONS: Final = tuple(a for a in EC2_ACTIONS if a.startswith("Describe"))
# the mutations of one of our ENIs (authorized by its cluster tag); all but the
# delete also authorize the instance the ENI is (or gets) attached to
INSTANCE_ACTIONS: Final = (
    "AttachNetworkInterface",
    "DetachNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
)
ENI_ACTIONS: Final = (*INSTANCE_ACTIONS, "DeleteNetworkInterface")

_REGION_RE: Final = re.compile(r"\*|[a-z]{2}(?:-[a-z]+)+-\d+")
_ACCOUNT_RE: Final = re.compile(r"\*|\d{12}")
_PARTITION_RE: Final = re.compile(r"aws(?:-[a-z]+)*")


class PolicyInputError(ValueError):
    """An argument that would make a wrong or over-broad policy."""


def _actions(names: tuple[str, ...]) -> list[str]:
    return [f"ec2:{name}" for name in names]


def _allow(
    sid: str, action: str | list[str], resource: str | list[str], condition: Any = None
) -> dict[str, Any]:
    statement = {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}
    return statement if condition is None else {**statement, "Condition": condition}


def _build(
    *, cluster_name: str, vpc_id: str, region: str, account_id: str, partition: str
) -> dict[str, Any]:
    def arn(resource: str) -> str:
        return f"arn:{partition}:ec2:{region}:{account_id}:{resource}"

    eni_arn = arn("network-interface/*")
    cluster_tag = f"{CLUSTER_TAG_PREFIX}{cluster_name}"
    in_vpc = {"ArnLike": {"ec2:Vpc": arn(f"vpc/{vpc_id}")}}
    create = "ec2:CreateNetworkInterface"
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            # Describe* has no resource-level permissions: "*" is the only form.
            _allow("Describe", _actions(DESCRIBE_ACTIONS), ANY),
            _allow(
                "CreateOnlyENIsTaggedForThisCluster",
                create,
                eni_arn,
                {
                    "StringEquals": {
                        f"aws:RequestTag/{cluster_tag}": OWNED,
                        f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
                    }
                },
            ),
            _allow(
                "CreateInClusterVPCSubnetsAndSecurityGroups",
                create,
                [arn("subnet/*"), arn("security-group/*")],
                in_vpc,
            ),
            _allow(
                "TagENIsOnlyAtCreation",
                "ec2:CreateTags",
                eni_arn,
                {"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}},
            ),
            # Migration from the Go controller: its ENIs carry the managed-by tag
            # and no cluster tag; they are adopted by adding this cluster's.
            _allow(
                "CompleteTheTagsOfGoControllerENIs",
                "ec2:CreateTags",
                eni_arn,
                {
                    "StringEquals": {
                        f"aws:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
                        f"aws:RequestTag/{cluster_tag}": OWNED,
                    }
                },
            ),
            _allow(
                "ManageOnlyThisClustersENIs",
                _actions(ENI_ACTIONS),
                eni_arn,
                {"StringEquals": {f"aws:ResourceTag/{cluster_tag}": OWNED}},
            ),
            # The node's instance: its tags vary by how the node group was made,
            # so it is not conditioned; the ENI statement above is the guard.
            _allow("AttachToAndDetachFromInstances", _actions(INSTANCE_ACTIONS), arn("instance/*")),
            _allow(
                "SetSecurityGroupsOfTheClusterVPC",
                "ec2:ModifyNetworkInterfaceAttribute",
                arn("security-group/*"),
                in_vpc,
            ),
        ],
    }


def policy_template(*, partition: str = "aws") -> dict[str, Any]:
    """The policy with PLACEHOLDERS left in (deploy/iam/policy.json)."""
    return _build(**PLACEHOLDERS, partition=partition)


def render_policy(
    *,
    cluster_name: str,
    vpc_id: str,
    region: str = ANY,
    account_id: str = ANY,
    partition: str = "aws",
) -> dict[str, Any]:
    """The policy for one cluster. `region`/`account_id` "*" match any (the VPC id
    alone is unique). Raises PolicyInputError for a value that is not an id of its
    kind: a wildcard in the cluster name would grant other clusters' ENIs."""
    checks = (
        ("cluster name", cluster_name, CLUSTER_NAME_PATTERN),
        ("VPC id", vpc_id, VPC_ID_PATTERN),
        ("region", region, _REGION_RE),
        ("account id", account_id, _ACCOUNT_RE),
        ("partition", partition, _PARTITION_RE),
    )
    for label, value, pattern in checks:
        if not pattern.fullmatch(value):
            raise PolicyInputError(f"not a valid {label}: {value!r}")
    return _build(
        cluster_name=cluster_name,
        vpc_id=vpc_id,
        region=region,
        account_id=account_id,
        partition=partition,
    )

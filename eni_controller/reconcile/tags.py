"""The tags that make an ENI ours, and the ClientToken that makes creating it idempotent.

Tags are written at creation (TagSpecifications), so an ENI is never visible
untagged: after a crash at any step a describe by tag finds it again. An
operator's EXTRA_ENI_TAGS ride along but never replace one of ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

from eni_controller.aws.resources import NetworkInterface

CLUSTER_TAG_PREFIX: Final = "kubernetes.io/cluster/"
MANAGED_BY_KEY: Final = f"{CLUSTER_TAG_PREFIX}managed-by"
MANAGED_BY_VALUE: Final = "nodeeni-controller"
NODEENI_KEY: Final = "NodeENI"
NODEENI_UID_KEY: Final = "NodeENIUID"
NODE_KEY: Final = "Node"
INSTANCE_KEY: Final = "InstanceID"
SUBNET_KEY: Final = "SubnetID"
NO_MANAGE_KEY: Final = "node.k8s.amazonaws.com/no_manage"  # keeps the VPC CNI away
TAG_VALUE_MAX: Final = 256
NAME_KEY: Final = "Name"
# The keys every create writes (plus the cluster's kubernetes.io/cluster/<name>):
# an operator's extra tag may use none of them, nor the cluster prefix.
RESERVED_KEYS: Final = frozenset(
    {NAME_KEY, NODEENI_KEY, NODEENI_UID_KEY, NODE_KEY, INSTANCE_KEY, SUBNET_KEY}
    | {MANAGED_BY_KEY, NO_MANAGE_KEY}
)
TAGS_PER_RESOURCE_MAX: Final = 50  # EC2's limit, our tags included
EXTRA_TAGS_MAX: Final = TAGS_PER_RESOURCE_MAX - len(RESERVED_KEYS) - 1  # 1: the cluster tag


def eni_tags(
    *,
    nodeeni: str,
    uid: str,
    node: str,
    instance_id: str,
    subnet_id: str,
    cluster_name: str | None,
    extra: Mapping[str, str] | None = None,
) -> Mapping[str, str]:
    """Every tag a create writes: `extra` (the operator's EXTRA_ENI_TAGS) and ours,
    ours last so that none of them can be overridden."""
    suffix = subnet_id.removeprefix("subnet-")[-8:]
    tags = {
        **(extra or {}),
        # names of up to 253 characters each would overflow EC2's 256; the
        # subnet suffix is kept so the Name still tells sibling ENIs apart
        NAME_KEY: f"nodeeni-{nodeeni}-{node}"[: TAG_VALUE_MAX - len(suffix) - 1] + f"-{suffix}",
        NODEENI_KEY: nodeeni,
        NODEENI_UID_KEY: uid,
        NODE_KEY: node,
        INSTANCE_KEY: instance_id,
        SUBNET_KEY: subnet_id,
        MANAGED_BY_KEY: MANAGED_BY_VALUE,
        NO_MANAGE_KEY: "true",
    }
    if cluster_name:
        tags[f"{CLUSTER_TAG_PREFIX}{cluster_name}"] = "owned"
    return tags


def client_token(*, uid: str, node: str, instance_id: str, subnet_id: str) -> str:
    """The first idempotency token of a slot's CreateNetworkInterface (64 hex, as
    AWS allows). The instance is part of it: a node name reused by a new instance
    gets a new ENI, not the old one back from AWS's idempotency window."""
    return hashlib.sha256("/".join((uid, node, instance_id, subnet_id)).encode()).hexdigest()


def owned_by(tagged: Mapping[str, str]) -> list[str]:
    """Each <name> of a `kubernetes.io/cluster/<name>: owned` tag (managed-by is none)."""
    return [
        key.removeprefix(CLUSTER_TAG_PREFIX)
        for key, value in tagged.items()
        if key.startswith(CLUSTER_TAG_PREFIX) and key != MANAGED_BY_KEY and value == "owned"
    ]


def owning_cluster(eni: NetworkInterface) -> str | None:
    """The cluster whose cluster tag the ENI carries (None: no cluster identity, or
    the Go controller's)."""
    return next(iter(owned_by(eni.tags)), None)


def log_fields(eni: NetworkInterface) -> dict[str, str]:
    """The fields of a log line about `eni`: its id, NodeENI, node and instance."""
    instance_id = eni.attachment.instance_id if eni.attachment else eni.tags.get(INSTANCE_KEY)
    fields = {
        "eni_id": eni.eni_id,
        "nodeeni": eni.tags.get(NODEENI_KEY),
        "node": eni.tags.get(NODE_KEY),
        "instance_id": instance_id,
    }
    return {key: value for key, value in fields.items() if value}

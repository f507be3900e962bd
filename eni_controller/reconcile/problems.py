"""Why a node cannot be served: the guardrails, and the problems a plan reports.

Pure, like the planner it serves. The guardrails: a subnet or security group in
another VPC than a node's instance is refused for that node (`VPCMismatch`), and
one without its allow-list tag (SUBNET_ALLOW_TAG, SECURITY_GROUP_ALLOW_TAG) is
refused everywhere (`NotAllowed`); a refused group would be on every ENI of a
node, so it refuses the whole node. Each problem's message names the resource
and what it should be, so status alone tells an operator what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from eni_controller.aws.resources import Instance, SecurityGroup, Subnet

TagRule = tuple[str, str]  # an allow-list: (key, value) of the tag a resource must carry


class ProblemReason(StrEnum):
    AZ_MISMATCH = "AZMismatch"
    ATTACHMENT_LIMIT_EXCEEDED = "AttachmentLimitExceeded"
    INSTANCE_NOT_FOUND = "InstanceNotFound"
    ATTRIBUTE_NOT_APPLIED = "AttributeNotApplied"
    VPC_MISMATCH = "VPCMismatch"
    NOT_ALLOWED = "NotAllowed"


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeProblem:
    node: str  # "" for a problem of the whole NodeENI (a resource not allowed)
    reason: str  # a ProblemReason, or one derived from an AWS error code
    message: str
    # False: the ENIs work, something about them does not (Degraded, still Ready)
    blocks_ready: bool = True


def not_allowed(
    noun: str, tagged: Mapping[str, Mapping[str, str]], *, rule: TagRule | None
) -> dict[str, NodeProblem]:
    """By ID, a NotAllowed problem for each of `tagged` (ID: tags) without the `rule` tag."""
    if rule is None:
        return {}
    key, value = rule
    lacks = f"lacks the tag {key}={value} that {noun.upper().replace(' ', '_')}_ALLOW_TAG requires"
    return {
        ident: NodeProblem(
            node="", reason=ProblemReason.NOT_ALLOWED, message=f"{noun} {ident} {lacks}"
        )
        for ident, tags in tagged.items()
        if tags.get(key) != value
    }


def guard(
    node: str,
    instance: Instance,
    *,
    subnets: Sequence[Subnet],
    groups: Sequence[SecurityGroup],
    refused: Mapping[str, NodeProblem],
) -> tuple[set[str], list[NodeProblem]]:
    """Of the node's in-AZ `subnets`, the IDs the guardrails let through, and a
    VPCMismatch for each group or subnet in another VPC than the node's instance."""
    resources = [("security group", g.group_id, g.vpc_id) for g in groups]
    resources += [("subnet", s.subnet_id, s.vpc_id) for s in subnets]
    problems = [
        NodeProblem(
            node=node,
            reason=ProblemReason.VPC_MISMATCH,
            message=f"{noun} {ident} is in {vpc}, but node {node}'s instance"
            f" {instance.instance_id} is in {instance.vpc_id}",
        )
        for noun, ident, vpc in resources
        if _elsewhere(vpc, instance)
    ]
    if any(g.group_id in refused or _elsewhere(g.vpc_id, instance) for g in groups):
        return set(), problems
    passed = {
        s.subnet_id
        for s in subnets
        if s.subnet_id not in refused and not _elsewhere(s.vpc_id, instance)
    }
    return passed, problems


def _elsewhere(vpc_id: str, instance: Instance) -> bool:
    """Whether a resource of `vpc_id` is in another VPC than `instance` (unknown: no)."""
    return bool(vpc_id and instance.vpc_id and vpc_id != instance.vpc_id)


def instance_not_found(node: str, instance_id: str) -> NodeProblem:
    message = f"instance {instance_id} of node {node} not found in EC2"
    return NodeProblem(node=node, reason=ProblemReason.INSTANCE_NOT_FOUND, message=message)


def az_mismatch(node: str, instance: Instance, subnets: Sequence[Subnet]) -> NodeProblem:
    listed = ", ".join(f"{s.subnet_id} ({s.availability_zone})" for s in subnets)
    message = f"node {node} is in {instance.availability_zone}; no listed subnet is: {listed}"
    return NodeProblem(node=node, reason=ProblemReason.AZ_MISMATCH, message=message)


def limit_exceeded(node: str, instance: Instance, limit: int | None) -> NodeProblem:
    message = (
        f"node {node} ({instance.instance_type}) holds {len(instance.occupied_device_indexes)}"
        f" ENIs, its limit is {limit if limit is not None else 'unknown'}"
    )
    return NodeProblem(node=node, reason=ProblemReason.ATTACHMENT_LIMIT_EXCEEDED, message=message)

"""This cluster's identity: its name and its VPC, known once before leading starts.

Only the cluster tag `kubernetes.io/cluster/<name>=owned` tells one cluster's
ENIs from another's, so the orphan sweep deletes nothing without a name. The
name is CLUSTER_NAME, or else discovered from the EKS tags of the nodes'
instances; the VPC is VPC_ID, or else the nodes' instances' VPC.

Invariants: discovery is unambiguous or nothing (guessing would let one cluster
reclaim another's ENIs); configured values always win; an identity is resolved
at most once with success and never changes after that (a renamed cluster would
orphan its ENIs); a failed describe leaves it unresolved, never "no name".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import structlog

from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.errors import EC2Error
from eni_controller.aws.resources import Instance
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags

log = structlog.get_logger(__name__)

EKS_CLUSTER_NAME_KEY: Final = "eks:cluster-name"


@dataclass(frozen=True, kw_only=True, slots=True)
class Discovery:
    """What the nodes' instances say: a name and a VPC (None: none, or ambiguous)."""

    name: str | None
    vpc_id: str | None
    names_seen: frozenset[str]
    vpcs_seen: frozenset[str]


def instance_cluster_names(instance: Instance) -> frozenset[str]:
    """`eks:cluster-name` and every `kubernetes.io/cluster/<name>=owned` (not managed-by)."""
    names = set(tags.owned_by(instance.tags))
    eks = instance.tags.get(EKS_CLUSTER_NAME_KEY)
    if eks:
        names.add(eks)
    return frozenset(names)


def discover(instances: Iterable[Instance]) -> Discovery:
    """The cluster name and VPC of `instances`, each only if exactly one is seen."""
    listed = list(instances)
    names = frozenset().union(*(instance_cluster_names(i) for i in listed))
    vpcs = frozenset(i.vpc_id for i in listed if i.vpc_id)
    return Discovery(
        name=next(iter(names)) if len(names) == 1 else None,
        vpc_id=next(iter(vpcs)) if len(vpcs) == 1 else None,
        names_seen=names,
        vpcs_seen=vpcs,
    )


class ClusterIdentity:
    """The cluster's name (None: unknown, ENIs get no cluster tag) and VPC, and
    `reason`: where the name came from, or why there is none. `resolve` fills
    them once, before leading starts; nobody else writes them."""

    def __init__(self, *, name: str | None, vpc_id: str | None) -> None:
        self.name = name  # as configured until resolved
        self.vpc_id = vpc_id
        self.resolved = False
        self.reason = "not resolved yet"

    async def resolve(
        self, ec2: EC2Client, *, instance_ids: Iterable[str], metrics: Metrics
    ) -> None:
        """Fill in what is not configured from the nodes' instances, once; set the gauge."""
        if self.resolved:
            return
        wanted = sorted(set(instance_ids))
        discovery = discover(())
        if (self.name is None or self.vpc_id is None) and wanted:
            try:
                discovery = discover((await ec2.describe_instances(wanted)).values())
            except EC2Error as err:
                self.reason = f"describing the nodes' instances failed ({err.code})"
                metrics.cluster_identity_known.set(0)
                log.warning(
                    "cluster identity unknown for now: the orphan sweep reclaims nothing",
                    reason=self.reason,
                    error_code=err.code,
                )
                return
        configured_name = self.name
        self.name = self.name or discovery.name
        self.vpc_id = self.vpc_id or discovery.vpc_id
        self.resolved = True
        if configured_name:
            self.reason = "CLUSTER_NAME"
        elif discovery.name:
            self.reason = "discovered from the nodes' instance tags"
        elif len(discovery.names_seen) > 1:
            self.reason = (
                "the nodes' instances name more than one cluster "
                f"({', '.join(sorted(discovery.names_seen))}); set CLUSTER_NAME"
            )
        elif not wanted:
            self.reason = "no CLUSTER_NAME and no node with an EC2 providerID to discover it from"
        else:
            self.reason = "no CLUSTER_NAME and the nodes' instances carry no cluster tag"
        metrics.cluster_identity_known.set(1 if self.name else 0)
        if self.name:
            log.info(
                "cluster identity", cluster_name=self.name, vpc_id=self.vpc_id, source=self.reason
            )
        else:
            log.warning(
                "no cluster identity: ENIs get no cluster tag and the orphan sweep reclaims"
                " nothing",
                reason=self.reason,
                vpc_id=self.vpc_id,
            )
        if self.vpc_id is None and len(discovery.vpcs_seen) > 1:  # VPC_ID unset
            log.warning(
                "the nodes' instances are in more than one VPC: set VPC_ID; the orphan sweep"
                " reclaims nothing until then",
                vpcs=sorted(discovery.vpcs_seen),
            )

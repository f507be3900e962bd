"""This cluster's identity: its name and its VPC, known once before leading starts.

Every cluster in an account tags its ENIs with the same managed-by tag, so only
the cluster tag `kubernetes.io/cluster/<name>=owned` tells one cluster's ENIs
from another's. The orphan sweep deletes nothing without it (another cluster's
NodeENIs are unknown to this informer: its ENIs would all look unclaimed).

The name is CLUSTER_NAME, or else discovered from the tags EKS puts on the
nodes' instances (`eks:cluster-name=<name>`, `kubernetes.io/cluster/<name>=owned`).
The VPC is VPC_ID, or else the VPC of the nodes' instances. Discovery is
unambiguous or nothing: two names (or two VPCs) among the instances give no
name (no VPC), with a log line that says so; guessing would let one cluster
reclaim another's ENIs.

Invariants: a ClusterIdentity is resolved at most once with success and never
changes after that (ENIs tagged with one name are never re-tagged, so a name
that changed mid-run would orphan them); configured values always win over
discovered ones; a failed describe leaves it unresolved (the next leadership
term tries again), never resolved to "no name".
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
    """What the nodes' instances say: a name and a VPC (None: none, or ambiguous),
    and why a value is missing."""

    name: str | None
    vpc_id: str | None
    names_seen: frozenset[str]
    vpcs_seen: frozenset[str]


def instance_cluster_names(instance: Instance) -> frozenset[str]:
    """The cluster names an instance's tags give: `eks:cluster-name` and every
    `kubernetes.io/cluster/<name>=owned` (the managed-by key is not a cluster)."""
    names = {
        key.removeprefix(tags.CLUSTER_TAG_PREFIX)
        for key, value in instance.tags.items()
        if key.startswith(tags.CLUSTER_TAG_PREFIX)
        and key != tags.MANAGED_BY_KEY
        and value == "owned"
    }
    eks = instance.tags.get(EKS_CLUSTER_NAME_KEY)
    if eks:
        names.add(eks)
    return frozenset(names)


def discover(instances: Iterable[Instance]) -> Discovery:
    """The cluster name and VPC of `instances` (the nodes'), each only if exactly
    one is seen. Instances without a name tag do not count against a name."""
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
    """The cluster's name and VPC, shared by whoever needs them (the sweep, the
    reconciler's ENI tags). `resolve` fills it once, before leading starts."""

    def __init__(self, *, name: str | None, vpc_id: str | None) -> None:
        self._configured_name = name
        self._configured_vpc_id = vpc_id
        self._name = name
        self._vpc_id = vpc_id
        self._resolved = False
        self._reason = "not resolved yet"

    @classmethod
    def known(cls, *, name: str | None, vpc_id: str | None) -> ClusterIdentity:
        """An identity resolved to exactly these values (for tests and tools)."""
        identity = cls(name=name, vpc_id=vpc_id)
        identity._resolved = True
        identity._reason = "given" if name else "no cluster name given"
        return identity

    @property
    def name(self) -> str | None:
        """The cluster name (None: unknown; ENIs get no cluster tag)."""
        return self._name

    @property
    def vpc_id(self) -> str | None:
        return self._vpc_id

    @property
    def resolved(self) -> bool:
        return self._resolved

    @property
    def reason(self) -> str:
        """Where the name came from, or why there is none."""
        return self._reason

    async def resolve(
        self, ec2: EC2Client, *, instance_ids: Iterable[str], metrics: Metrics
    ) -> None:
        """Fill in what is not configured from the nodes' instances (one batched
        describe), once. Sets the identity gauge; warns once if no name is known."""
        if self._resolved:
            return
        wanted = sorted(set(instance_ids))
        discovery = Discovery(name=None, vpc_id=None, names_seen=frozenset(), vpcs_seen=frozenset())
        if (self._configured_name is None or self._configured_vpc_id is None) and wanted:
            try:
                found = await ec2.describe_instances(wanted)
            except EC2Error as err:
                self._reason = f"describing the nodes' instances failed ({err.code})"
                metrics.cluster_identity_known.set(0)
                log.warning(
                    "cluster identity unknown for now: the orphan sweep reclaims nothing",
                    reason=self._reason,
                    error_code=err.code,
                )
                return
            discovery = discover(found.values())
        self._name = self._configured_name or discovery.name
        self._vpc_id = self._configured_vpc_id or discovery.vpc_id
        self._resolved = True
        if self._configured_name:
            self._reason = "CLUSTER_NAME"
        elif discovery.name:
            self._reason = "discovered from the nodes' instance tags"
        elif len(discovery.names_seen) > 1:
            self._reason = (
                "the nodes' instances name more than one cluster "
                f"({', '.join(sorted(discovery.names_seen))}); set CLUSTER_NAME"
            )
        elif not wanted:
            self._reason = "no CLUSTER_NAME and no node with an EC2 providerID to discover it from"
        else:
            self._reason = "no CLUSTER_NAME and the nodes' instances carry no cluster tag"
        metrics.cluster_identity_known.set(1 if self._name else 0)
        if self._name:
            log.info(
                "cluster identity",
                cluster_name=self._name,
                vpc_id=self._vpc_id,
                source=self._reason,
            )
        else:
            log.warning(
                "no cluster identity: ENIs get no cluster tag and the orphan sweep reclaims"
                " nothing",
                reason=self._reason,
                vpc_id=self._vpc_id,
            )
        if not self._configured_vpc_id and len(discovery.vpcs_seen) > 1:
            log.warning(
                "the nodes' instances are in more than one VPC: set VPC_ID; the orphan sweep"
                " reclaims nothing until then",
                vpcs=sorted(discovery.vpcs_seen),
            )

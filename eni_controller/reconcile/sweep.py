"""The orphan sweep: the safety net under every crash window.

Every ENI the controller creates carries the managed-by tag from birth. Once in
a while one filtered describe lists them all (shared with the resync, see
ec2view.py) and the pure function `decide` picks the orphans for the cleanup
pool. The managed-by tag is shared by every cluster of the account (and the Go
controller), so an ENI is reclaimed only if all of these hold:

- it carries THIS cluster's tag; without a cluster identity nothing is reclaimed;
- it is in this cluster's VPC (unknown: nothing is reclaimed);
- no NodeENI claims it, by its NodeENIUID tag or in status.attachments;
- it is not attached to an instance no Node names (skipped and logged: the
  cleanup would force-detach it from a machine that is not ours);
- it has stayed so for the grace period, whose clock restarts whenever it is
  not, so a restart (or a claim that comes and goes) only delays a reclaim.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from eni_controller.aws.identity import ClusterIdentity
from eni_controller.aws.resources import NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.model import NodeENIStatus
from eni_controller.reconcile import tags
from eni_controller.reconcile.cleanup import CleanupPool
from eni_controller.reconcile.ec2view import EC2View
from eni_controller.reconcile.nodes import NodeView

log = structlog.get_logger(__name__)

SWEEP_OWNER = "orphan-sweep"


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepFacts:
    """What the sweep decides against, besides the ENIs themselves."""

    cluster_name: str | None
    vpc_id: str | None
    claimed_uids: frozenset[str]
    claimed_eni_ids: frozenset[str]
    node_instance_ids: frozenset[str]


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepDecision:
    reclaim: tuple[NetworkInterface, ...]  # past the grace period
    first_seen: Mapping[str, float]  # the grace clocks to keep
    foreign: tuple[NetworkInterface, ...]  # unclaimed, on an instance no node names
    blocked: str | None  # why nothing at all may be reclaimed


def decide(
    enis: Iterable[NetworkInterface],
    *,
    facts: SweepFacts,
    first_seen: Mapping[str, float],
    now: float,
    grace_seconds: float,
) -> SweepDecision:
    if not facts.cluster_name:
        blocked = "no cluster identity (set CLUSTER_NAME, or tag the nodes' instances)"
        return SweepDecision(reclaim=(), first_seen={}, foreign=(), blocked=blocked)
    if not facts.vpc_id:
        blocked = "the cluster's VPC is unknown (set VPC_ID)"
        return SweepDecision(reclaim=(), first_seen={}, foreign=(), blocked=blocked)
    candidates: list[NetworkInterface] = []
    foreign: list[NetworkInterface] = []
    for eni in enis:
        ours = tags.owning_cluster(eni) == facts.cluster_name and eni.vpc_id == facts.vpc_id
        claimed = (
            eni.tags.get(tags.NODEENI_UID_KEY) in facts.claimed_uids
            or eni.eni_id in facts.claimed_eni_ids
        )
        if not ours or claimed:
            continue
        attachment = eni.attachment
        if attachment is not None and attachment.instance_id not in facts.node_instance_ids:
            foreign.append(eni)
        else:
            candidates.append(eni)
    seen = {e.eni_id: first_seen.get(e.eni_id, now) for e in candidates}
    due = [e for e in candidates if now - seen[e.eni_id] >= grace_seconds]
    reclaim = tuple(sorted(due, key=lambda e: e.eni_id))
    return SweepDecision(reclaim=reclaim, first_seen=seen, foreign=tuple(foreign), blocked=None)


def node_instance_ids(nodes: Iterable[Mapping[str, Any]]) -> set[str]:
    """The EC2 instances the Nodes' providerIDs name (other providerIDs name none)."""
    views = (NodeView.from_api(node) for node in nodes)
    return {view.instance_id for view in views if view.instance_id is not None}


def claimed_eni_ids(nodeenis: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ENI ids listed in the NodeENIs' status.attachments."""
    return {
        attachment.eni_id
        for raw in nodeenis
        for attachment in NodeENIStatus.from_dict(raw.get("status")).attachments
        if attachment.eni_id
    }


class OrphanSweep:
    def __init__(
        self,
        managed: EC2View,
        cleanup: CleanupPool,
        *,
        identity: ClusterIdentity,
        claimed_uids: Callable[[], Iterable[str]],
        claimed_eni_ids: Callable[[], Iterable[str]],
        node_instance_ids: Callable[[], Iterable[str]],
        grace_seconds: float,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._managed = managed
        self._cleanup = cleanup
        self._identity = identity
        self._claimed_uids = claimed_uids
        self._claimed_eni_ids = claimed_eni_ids
        self._node_instance_ids = node_instance_ids
        self._grace = grace_seconds
        self._metrics = metrics
        self._clock = clock
        self._first_seen: dict[str, float] = {}

    async def run(self, *, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.sweep()
            except Exception:
                log.exception("orphan sweep failed")

    async def sweep(self) -> list[str]:
        """One pass; returns the ENI ids handed to cleanup."""
        identity = self._identity
        if not identity.resolved or not identity.name:
            self._first_seen = {}  # nothing can be reclaimed: not worth a describe
            self._metrics.orphan_sweeps.inc()
            log.info("orphan sweep reclaims nothing: no cluster identity", reason=identity.reason)
            return []
        managed = await self._managed.every()
        facts = SweepFacts(
            cluster_name=identity.name,
            vpc_id=identity.vpc_id,
            claimed_uids=frozenset(self._claimed_uids()),
            claimed_eni_ids=frozenset(self._claimed_eni_ids()),
            node_instance_ids=frozenset(self._node_instance_ids()),
        )
        decision = decide(
            managed,
            facts=facts,
            first_seen=self._first_seen,
            now=self._clock(),
            grace_seconds=self._grace,
        )
        self._first_seen = dict(decision.first_seen)
        if decision.blocked is not None:
            log.info("orphan sweep reclaims nothing", reason=decision.blocked)
        for eni in decision.foreign:
            log.info(
                "orphan sweep skips an ENI attached to an instance that is no node of this cluster",
                **tags.log_fields(eni),
            )
        reclaimed: list[NetworkInterface] = []
        for eni in decision.reclaim:  # one already pending is not submitted again
            if self._cleanup.submit(eni, nodeeni=SWEEP_OWNER):
                log.info("orphan ENI reclaimed", **tags.log_fields(eni))
                reclaimed.append(eni)
        self._metrics.orphan_sweeps.inc()
        self._metrics.orphans_reclaimed.inc(len(reclaimed))
        return [e.eni_id for e in reclaimed]

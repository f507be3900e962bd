"""The orphan sweep: the safety net under every crash window.

Every ENI the controller creates carries the managed-by tag from birth. Once
in a while one paginated, filtered describe lists them all (shared with the
resync, see ec2view.py); `decide` picks the orphans, which go to the cleanup
pool. The decision is a pure function over plain data so each of its rules
can be tested alone.

The managed-by tag is the same in every cluster of the account (and on the Go
controller's ENIs), and another cluster's NodeENIs are unknown to this
informer, so everything another cluster made would look unclaimed. An ENI is
reclaimed only if all of these hold:

- it carries THIS cluster's tag (`kubernetes.io/cluster/<name>=owned`); an ENI
  without a cluster tag is never reclaimed, and without a cluster identity
  (no CLUSTER_NAME, nothing discovered) nothing is;
- it is in this cluster's VPC (VPC_ID or the nodes' instances' VPC; unknown:
  nothing is reclaimed);
- no NodeENI claims it: neither its NodeENIUID tag names a NodeENI the
  informer holds, nor any NodeENI's status.attachments lists its id;
- it is not attached to an instance that no Node's providerID names (the
  cleanup would force-detach it from a machine that is not ours): such an
  ENI is skipped and logged, never deleted;
- it has stayed so for the grace period. The grace clock starts when the
  sweep first sees an ENI reclaimable and restarts whenever it is not, so a
  restart (or a claim that comes and goes) only ever delays a reclaim.
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
    """`reclaim`: past the grace period, to the cleanup pool. `first_seen`: the
    grace clocks to keep (every ENI reclaimable now). `foreign`: ours by tag and
    unclaimed, but attached to an instance that is no node of this cluster.
    `blocked`: why nothing at all may be reclaimed (None: the sweep may act)."""

    reclaim: tuple[NetworkInterface, ...]
    first_seen: Mapping[str, float]
    foreign: tuple[NetworkInterface, ...]
    blocked: str | None


def decide(
    enis: Iterable[NetworkInterface],
    *,
    facts: SweepFacts,
    first_seen: Mapping[str, float],
    now: float,
    grace_seconds: float,
) -> SweepDecision:
    """Which of `enis` to reclaim now; see the module docstring for the rules."""
    if not facts.cluster_name:
        blocked = "no cluster identity (set CLUSTER_NAME, or tag the nodes' instances)"
        return SweepDecision(reclaim=(), first_seen={}, foreign=(), blocked=blocked)
    if not facts.vpc_id:
        blocked = "the cluster's VPC is unknown (set VPC_ID)"
        return SweepDecision(reclaim=(), first_seen={}, foreign=(), blocked=blocked)
    candidates: list[NetworkInterface] = []
    foreign: list[NetworkInterface] = []
    for eni in enis:
        if tags.owning_cluster(eni) != facts.cluster_name or eni.vpc_id != facts.vpc_id:
            continue
        if (
            eni.tags.get(tags.NODEENI_UID_KEY) in facts.claimed_uids
            or eni.eni_id in facts.claimed_eni_ids
        ):
            continue
        attachment = eni.attachment
        if attachment is not None and attachment.instance_id not in facts.node_instance_ids:
            foreign.append(eni)
            continue
        candidates.append(eni)
    seen = {e.eni_id: first_seen.get(e.eni_id, now) for e in candidates}
    reclaim = tuple(
        sorted(
            (e for e in candidates if now - seen[e.eni_id] >= grace_seconds),
            key=lambda e: e.eni_id,
        )
    )
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
            # nothing can be reclaimed: not even worth a describe
            self._first_seen = {}
            self._metrics.orphan_sweeps.inc()
            log.info(
                "orphan sweep reclaims nothing: no cluster identity",
                reason=identity.reason,
            )
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
        reclaimed = [e for e in decision.reclaim if not self._cleanup.pending(e.eni_id)]
        for eni in reclaimed:
            log.info("orphan ENI reclaimed", **tags.log_fields(eni))
            self._cleanup.submit(eni.eni_id, nodeeni=SWEEP_OWNER, seen=eni)
        self._metrics.orphan_sweeps.inc()
        self._metrics.orphans_reclaimed.inc(len(reclaimed))
        return [e.eni_id for e in reclaimed]

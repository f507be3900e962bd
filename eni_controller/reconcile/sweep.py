"""The orphan sweep: the safety net under every crash window.

Every ENI the controller creates carries the managed-by tag from birth. Once
in a while one paginated, filtered describe lists them all; an ENI whose
NodeENIUID belongs to no NodeENI the informer knows (deleted, or dropped
after MAX_CLEANUP_DURATION) is unclaimed. Unclaimed for longer than the grace
period, it goes to the cleanup pool. ENIs without our tag are never looked at.

The managed-by tag is the same in every cluster, and another cluster's
NodeENIs are unknown to this informer, so an ENI counts as ours only if its
cluster tag names this cluster (CLUSTER_NAME), or, without a CLUSTER_NAME,
if it names no cluster at all. Two clusters in one account must each set
CLUSTER_NAME; otherwise each would reclaim the other's ENIs.
The grace clock starts when the sweep first sees an ENI unclaimed, so a
restart only ever delays a reclaim, never hastens one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import structlog

from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from eni_controller.reconcile.cleanup import CleanupPool
from eni_controller.reconcile.ec2view import ManagedENIs

log = structlog.get_logger(__name__)

SWEEP_OWNER = "orphan-sweep"


class OrphanSweep:
    def __init__(
        self,
        managed: ManagedENIs,
        cleanup: CleanupPool,
        *,
        claimed_uids: Callable[[], Iterable[str]],
        cluster_name: str | None,
        grace_seconds: float,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._managed = managed
        self._cleanup = cleanup
        self._claimed_uids = claimed_uids
        self._cluster_name = cluster_name
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
        managed = await self._managed.every()
        ours = [e for e in managed if tags.owning_cluster(e) == self._cluster_name]
        claimed = set(self._claimed_uids())
        now = self._clock()
        unclaimed = {e.eni_id for e in ours if e.tags.get(tags.NODEENI_UID_KEY) not in claimed}
        self._first_seen = {i: self._first_seen.get(i, now) for i in unclaimed}
        by_id = {e.eni_id: e for e in ours}
        reclaimed = [
            eni_id
            for eni_id, seen in sorted(self._first_seen.items())
            if now - seen >= self._grace and not self._cleanup.pending(eni_id)
        ]
        for eni_id in reclaimed:
            log.info("orphan ENI reclaimed", **tags.log_fields(by_id[eni_id]))
            self._cleanup.submit(eni_id, nodeeni=SWEEP_OWNER, seen=by_id[eni_id])
        self._metrics.orphan_sweeps.inc()
        self._metrics.orphans_reclaimed.inc(len(reclaimed))
        return reclaimed

"""What EC2 says, for reconciles: our ENIs, the nodes' instances, and (through
aws/lookup.py and aws/limits.py) subnets, security groups and instance-type
limits. An informer for EC2, which has no watch: answers are kept until
something says they may be stale.

* The one freshness rule: an answer about a key (a NodeENI uid, an instance id)
  serves a reader only if its describe started after the key's last
  `changed()`; else the reader describes, batched (aws/batch.py). Changes are
  counted, not timed, so two in one clock tick are never confused.
* `changed()` comes from routing (events), the executor and the cleanup pool
  (every mutating call) and the reconciler (what it leaves unsettled); an
  attach of ours that succeeded is written into the kept facts (`took`).
* An ENI we deleted (`deleted()`) is left out of every answer, however old.
* A resync's `refresh` (one describe of every managed ENI) serves every uid not
  changed since it started; the orphan sweep reads it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from eni_controller.aws.batch import Batcher
from eni_controller.aws.ec2 import FILTER_VALUES_PER_CALL, EC2Client
from eni_controller.aws.limits import InstanceTypeLimits
from eni_controller.aws.lookup import Resolver
from eni_controller.aws.resources import Instance, NetworkInterface
from eni_controller.reconcile import tags
from eni_controller.reconcile.retries import keep_newest


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Every managed ENI, from a describe started at change count `at`."""

    at: int
    enis: Sequence[NetworkInterface]
    by_uid: Mapping[str, Sequence[NetworkInterface]]


class EC2View:
    """Our ENIs by NodeENI uid, and instance facts by instance id."""

    def __init__(self, ec2: EC2Client, *, vpc_id: str | None) -> None:
        self._ec2 = ec2
        self.resolver = Resolver(ec2, vpc_id=vpc_id)  # subnets and security groups
        self.limits = InstanceTypeLimits(ec2)
        self._count = 0  # the change counter: the batchers' clock
        self._changed: dict[str, int] = {}  # uid or instance id -> its last change
        self._latest: _Snapshot | None = None
        self._refreshing: tuple[int, asyncio.Task[_Snapshot]] | None = None
        self._answers: dict[str, tuple[int, Sequence[NetworkInterface]]] = {}  # by uid
        self._facts: dict[str, tuple[int, Instance]] = {}  # by instance id
        self._deleted: dict[str, None] = {}  # ENI ids we deleted, oldest first (bounded)
        self._by_uid = Batcher(
            self._describe_uids, max_keys=FILTER_VALUES_PER_CALL, clock=lambda: self._count
        )
        self._by_instance = Batcher(
            ec2.describe_instances, max_keys=FILTER_VALUES_PER_CALL, clock=lambda: self._count
        )

    def changed(self, *, uid: str | None = None, instance: str | None = None) -> None:
        """This uid's ENIs, or this instance, may have changed: the next reader describes."""
        self._count += 1
        for key in (uid, instance):
            if key:
                self._changed[key] = self._count

    def took(self, instance_id: str, *, index: int) -> None:
        """An attach of ours at `index` succeeded: the kept facts show it taken."""
        kept = self._facts.get(instance_id)
        if kept is not None:
            at, facts = kept
            occupied = facts.occupied_device_indexes | {index}
            self._facts[instance_id] = (at, replace(facts, occupied_device_indexes=occupied))

    def deleted(self, eni_id: str) -> None:
        """We deleted this ENI (EC2 said so, or NotFound): no answer shows it again."""
        keep_newest(self._deleted, eni_id, None)

    def _live(self, enis: Iterable[NetworkInterface]) -> list[NetworkInterface]:
        return [e for e in enis if e.eni_id not in self._deleted]

    def forget(self, *, uid: str | None = None, instance: str | None = None) -> None:
        """The NodeENI or the node is gone: drop what is kept about it."""
        for key in (uid, instance):
            if key:
                self._changed.pop(key, None)
                self._answers.pop(key, None)
                self._facts.pop(key, None)

    def refresh(self) -> asyncio.Task[_Snapshot]:
        """Start one describe of every managed ENI (a resync is about to ask for all)."""
        at = self._count
        task = asyncio.create_task(self._take(at))
        task.add_done_callback(_consume_exception)
        self._refreshing = (at, task)
        return task

    def stop(self) -> None:
        """Cancel a refresh still running (the term or the process ends)."""
        if self._refreshing is not None:
            self._refreshing[1].cancel()
            self._refreshing = None

    async def every(self) -> list[NetworkInterface]:
        """Every ENI with the managed-by tag, any cluster's (the orphan sweep): from a
        refresh running now, else from a new one, which reconciles then share."""
        running = self._refreshing[1] if self._refreshing is not None else self.refresh()
        return self._live((await asyncio.shield(running)).enis)

    async def legacy(self, nodeeni: str) -> list[NetworkInterface]:
        """The Go controller's ENIs for the NodeENI named `nodeeni` (its name, no uid)
        in the latest snapshot; before the first one, waits for the term's refresh."""
        if self._latest is None and self._refreshing is not None:
            await asyncio.shield(self._refreshing[1])
        if self._latest is None:
            return []
        return [
            e
            for e in self._live(self._latest.by_uid.get("", ()))
            if e.tags.get(tags.NODEENI_KEY) == nodeeni
        ]

    async def enis(self, uid: str) -> list[NetworkInterface]:
        """The ENIs tagged with `uid`, as a describe started after its last change saw them."""
        changed = self._changed.get(uid, 0)
        answer, refreshing, latest = self._answers.get(uid), self._refreshing, self._latest
        # a refresh running started after the latest snapshot; this uid's own answer
        # serves only if newer than both
        snapshot_at = latest.at if latest is not None else -1
        if refreshing is not None:
            snapshot_at = refreshing[0]
        if answer is not None and answer[0] >= changed and answer[0] > snapshot_at:
            return self._live(answer[1])
        if snapshot_at >= changed:
            snapshot = await asyncio.shield(refreshing[1]) if refreshing is not None else latest
            assert snapshot is not None
            return self._live(snapshot.by_uid.get(uid, ()))
        at, found = await self._by_uid.load([uid], not_before=changed)
        enis = tuple(found.get(uid, ()))
        if at >= self._changed.get(uid, 0):
            self._answers[uid] = (int(at), enis)
        return self._live(enis)

    async def instances(self, instance_ids: Iterable[str]) -> dict[str, Instance]:
        """Facts about these instances, each from a describe started after its last change."""
        found: dict[str, Instance] = {}
        stale: list[str] = []
        for instance_id in dict.fromkeys(instance_ids):
            kept = self._facts.get(instance_id)
            if kept is not None and kept[0] >= self._changed.get(instance_id, 0):
                found[instance_id] = kept[1]
            else:
                stale.append(instance_id)
        if stale:
            not_before = max(self._changed.get(i, 0) for i in stale)
            at, described = await self._by_instance.load(stale, not_before=not_before)
            for instance_id in stale:
                instance = described.get(instance_id)
                if instance is None:
                    self._facts.pop(instance_id, None)
                    continue
                found[instance_id] = instance
                kept = self._facts.get(instance_id)
                if kept is None or kept[0] < at:
                    self._facts[instance_id] = (int(at), instance)
        return found

    async def _describe_uids(self, uids: Sequence[str]) -> Mapping[str, list[NetworkInterface]]:
        return _by_uid(
            await self._ec2.describe_network_interfaces(
                filters={f"tag:{tags.NODEENI_UID_KEY}": list(uids)}
            )
        )

    async def _take(self, at: int) -> _Snapshot:
        try:
            enis = await self._ec2.describe_network_interfaces(
                filters={f"tag:{tags.MANAGED_BY_KEY}": [tags.MANAGED_BY_VALUE]}
            )
        finally:
            if self._refreshing is not None and self._refreshing[0] == at:
                self._refreshing = None
        snapshot = _Snapshot(at=at, enis=enis, by_uid=_by_uid(enis))
        if self._latest is None or self._latest.at < at:
            self._latest = snapshot
            # answers older than the snapshot are superseded by it
            self._answers = {u: a for u, a in self._answers.items() if a[0] > at}
        return snapshot


def _by_uid(enis: Iterable[NetworkInterface]) -> dict[str, list[NetworkInterface]]:
    grouped: dict[str, list[NetworkInterface]] = {}
    for eni in enis:
        grouped.setdefault(eni.tags.get(tags.NODEENI_UID_KEY, ""), []).append(eni)
    return grouped


def _consume_exception(task: asyncio.Task[_Snapshot]) -> None:
    # a failed refresh fails the reconciles that waited on it (they retry);
    # with none waiting, it must not be reported as never retrieved
    if not task.cancelled():
        task.exception()

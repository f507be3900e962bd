"""What EC2 says about our ENIs and the nodes' instances, shared between reconciles.

A resync reconciles every NodeENI. When each reconcile described its own ENIs
and its nodes' instances, a cluster at rest paid two describes per NodeENI per
resync (21.7 per resync at 10 NodeENIs x 100 nodes,
bench/results/suite/large.json) for answers that had not changed.

- **ENIs.** A resync starts one paginated describe of every ENI carrying the
  managed-by tag. A reconcile uses a snapshot only if that describe started
  after the reconcile was last asked for, so the snapshot reflects whatever
  asked for it (our own actions included: they happen before the requeue);
  otherwise it describes its own ENIs by its uid tag, in one call with the
  other reconciles asking at the same moment (aws/batch.py). The last such
  answer per uid is kept beside the snapshot, by the same rule: the
  describe a reconcile made after acting is what the next one may use
  (a deletion starts its cleanups from it without a describe of its own).
  The orphan sweep lists every managed ENI through the same refresh, so a
  sweep and a resync that fall together make one describe, not two.
- **Instances.** Facts about an instance (zone, type, state, occupied device
  indexes) are kept from the last describe of it. A reconcile describes afresh
  the instances of nodes it may act on, and uses kept facts, up to
  INSTANCE_FACTS_MAX_AGE_SECONDS old, only for nodes whose every slot already
  holds an attached ENI of ours (the planner's `settled_nodes`): for those the
  plan can at most correct an attribute of an attached ENI, which needs no
  instance facts. A terminated instance still shows: AWS detaches or deletes
  its ENIs, which unsettles the node, and the Node object goes. For the other
  nodes, facts from a describe asked after the reconcile was (another
  NodeENI's, over the same nodes) are as good as its own describe; device
  indexes attached since are known to the executor's allocator, and AWS
  refuses a taken index or a full instance anyway. Fresh describes of
  instances are batched the same way. In the test server a describe of 100
  large instances cost as much as ~120 attach calls.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from eni_controller.aws.batch import Batcher
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import Instance, NetworkInterface
from eni_controller.reconcile import tags

INSTANCE_FACTS_MAX_AGE_SECONDS = 600.0
# `of(uid, since=ANY_AGE)`: the latest snapshot, however old. Only for work
# that a later describe checks (starting a deletion's cleanups), never for
# concluding that an ENI is absent.
ANY_AGE = -math.inf
FILTER_VALUES_PER_CALL = 200  # EC2's limit on the values of one filter


@dataclass(frozen=True, slots=True)
class _Snapshot:
    started: float
    enis: Sequence[NetworkInterface]
    by_uid: Mapping[str, Sequence[NetworkInterface]]


@dataclass(frozen=True, slots=True)
class _Answer:
    """One uid's ENIs from a describe that started no earlier than `started`."""

    started: float
    enis: Sequence[NetworkInterface]


class ManagedENIs:
    """Our ENIs by NodeENI uid: from a shared snapshot when one is fresh enough."""

    def __init__(self, ec2: EC2Client, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ec2 = ec2
        self._clock = clock
        self._latest: _Snapshot | None = None
        self._refreshing: tuple[float, asyncio.Task[_Snapshot]] | None = None
        self._by_uid = Batcher(self._describe_uids, max_keys=FILTER_VALUES_PER_CALL, clock=clock)
        self._answers: dict[str, _Answer] = {}  # the last by-uid describe, newer than _latest
        self.snapshots = 0  # read by tests: shared describes started

    def refresh(self) -> asyncio.Task[_Snapshot]:
        """Start one describe of every managed ENI (a resync is about to ask for all);
        a refresh already running since before now is not enough, so it starts another."""
        started = self._clock()
        self.snapshots += 1
        task = asyncio.create_task(self._take(started))
        task.add_done_callback(_consume_exception)
        self._refreshing = (started, task)
        return task

    async def every(self) -> list[NetworkInterface]:
        """Every ENI with the managed-by tag, any cluster's (the orphan sweep): from a
        refresh running now, else from a new one, which later reconciles share."""
        running = self._refreshing[1] if self._refreshing is not None else self.refresh()
        return list((await asyncio.shield(running)).enis)

    async def legacy(self, nodeeni: str) -> list[NetworkInterface]:
        """The Go controller's ENIs for the NodeENI named `nodeeni` (its tags name it
        but carry no NodeENIUID), as the latest snapshot of every managed ENI shows
        them (before the first snapshot, the refresh that takes it is waited for). A
        term starts with a refresh, so a controller installed after the Go
        controller was stopped sees every one before its first create."""
        if self._latest is None and self._refreshing is not None:
            await asyncio.shield(self._refreshing[1])
        if self._latest is None:
            return []
        return [
            e for e in self._latest.by_uid.get("", ()) if e.tags.get(tags.NODEENI_KEY) == nodeeni
        ]

    def stop(self) -> None:
        """Cancel a refresh still running (the term or the process ends)."""
        if self._refreshing is not None:
            self._refreshing[1].cancel()
            self._refreshing = None

    async def of(
        self, uid: str, *, since: float | None, also: Callable[[], Iterable[str]] = tuple
    ) -> list[NetworkInterface]:
        """The ENIs tagged with `uid`, as EC2 said at some moment after `since`
        (None: a describe made now).

        A describe made for it also carries the uids `also` gives (NodeENIs in
        the work queue): their reconciles, asked for before it started, use its
        answer instead of a describe each. A reconcile of one of them that is
        asked for again later (after acting) needs a newer answer: the queue's
        `last_added` is then no earlier than the end of the round that acted.
        """
        answer = self._newest(uid)
        if since is not None and answer is not None and answer.started >= since:
            return list(answer.enis)
        refreshing = self._refreshing
        if since is not None and refreshing is not None and refreshing[0] >= since:
            snapshot = await asyncio.shield(refreshing[1])
            return list(snapshot.by_uid.get(uid, ()))
        uids = list(dict.fromkeys([uid, *also()]))[:FILTER_VALUES_PER_CALL]
        started, found = await self._by_uid.get_at(uids, since=since)
        for asked in uids:
            held = self._newest(asked)
            if held is None or held.started < started:
                self._answers[asked] = _Answer(started, tuple(found.get(asked, ())))
        return list(found.get(uid, ()))

    def _newest(self, uid: str) -> _Answer | None:
        """The newest answer held for `uid`: its own (always newer than the
        snapshot, see `_take`), else the snapshot's."""
        answer = self._answers.get(uid)
        if answer is None and self._latest is not None:
            answer = _Answer(self._latest.started, self._latest.by_uid.get(uid, ()))
        return answer

    async def _describe_uids(self, uids: Sequence[str]) -> Mapping[str, list[NetworkInterface]]:
        return _by_uid(
            await self._ec2.describe_network_interfaces(
                filters={f"tag:{tags.NODEENI_UID_KEY}": list(uids)}
            )
        )

    async def _take(self, started: float) -> _Snapshot:
        try:
            enis = await self._ec2.describe_network_interfaces(
                filters={f"tag:{tags.MANAGED_BY_KEY}": [tags.MANAGED_BY_VALUE]}
            )
        finally:
            if self._refreshing is not None and self._refreshing[0] == started:
                self._refreshing = None
        snapshot = _Snapshot(started=started, enis=enis, by_uid=_by_uid(enis))
        if self._latest is None or self._latest.started < started:
            self._latest = snapshot
            # answers older than the snapshot are superseded (and NodeENIs since
            # deleted leave nothing behind)
            self._answers = {u: a for u, a in self._answers.items() if a.started > started}
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


class InstanceFacts:
    """Instances by id: described afresh when asked, kept ones where allowed."""

    def __init__(
        self,
        ec2: EC2Client,
        *,
        max_age: float = INSTANCE_FACTS_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age = max_age
        self._clock = clock
        self._kept: dict[str, tuple[float, Instance]] = {}
        self._describe = Batcher(
            ec2.describe_instances, max_keys=FILTER_VALUES_PER_CALL, clock=clock
        )

    def kept(
        self, instance_ids: Iterable[str], *, since: float | None = None
    ) -> dict[str, Instance]:
        """The facts kept for these instances that are young enough to serve: at most
        INSTANCE_FACTS_MAX_AGE_SECONDS old, or, with `since`, asked for at or after it."""
        oldest = self._clock() - self._max_age if since is None else since
        return {
            i: entry[1]
            for i in instance_ids
            if (entry := self._kept.get(i)) is not None and entry[0] >= oldest
        }

    async def describe(
        self, instance_ids: Sequence[str], *, since: float | None = None
    ) -> dict[str, Instance]:
        """Describe these instances after `since` (None: now); the answer is kept for
        later reconciles."""
        if not instance_ids:
            return {}
        started, found = await self._describe.get_at(instance_ids, since=since)
        for instance_id in instance_ids:
            kept = self._kept.get(instance_id)
            if kept is not None and kept[0] > started:
                continue  # a newer answer is kept already (this one came from a shared call)
            instance = found.get(instance_id)
            if instance is None:
                self._kept.pop(instance_id, None)
            else:
                self._kept[instance_id] = (started, instance)
        oldest = self._clock() - self._max_age  # instances of nodes that went: not kept forever
        self._kept = {i: entry for i, entry in self._kept.items() if entry[0] >= oldest}
        return found

"""Device-index allocation, one writer per instance across every NodeENI.

Two NodeENIs reconciled at once may target the same node. Each worker's view
of the instance comes from its own describe, seconds old; without a lock per
instance both would pick the same free index and one attach would fail (or,
against a lax API, overwrite).

Invariants:

- One holder per instance at a time (`DeviceIndexAllocator.hold`).
- `InstanceIndexes.pick` searches upward from the wanted index (the spec's
  ``deviceIndex`` plus the subnet's position) and never below it: lower
  indexes belong to the VPC CNI or to the NodeENI's other subnets. It stays
  below the instance type's ENI limit when the limit is known; with nothing
  free in that range the attach is refused (NoFreeDeviceIndex) instead of
  made anywhere. An index AWS refuses as in use is skipped only once a
  describe shows it taken.
- Indexes this process attached recently stay reserved for RESERVATION_SECONDS,
  because a describe may not show them yet. A reservation belongs to the ENI
  attached there: it keeps every other ENI off that index, never the ENI
  itself, so our own ENI detached by hand and attached again keeps its index.
  An ENI holds at most one reservation per instance. `release` drops one as
  soon as its ENI is known to be detached, `forget` all of an ENI's once it is
  deleted (a cleanup called off mid-detach, then started again on the
  detached ENI, never sees the detach it would release by index).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import NamedTuple

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import Instance

RESERVATION_SECONDS = 120.0
MAX_INDEX_CONFLICTS = 3
ATTACH_ACTION = "AttachNetworkInterface"


class _Reservation(NamedTuple):
    eni_id: str
    until: float  # the allocator clock's time it lapses at


class InstanceIndexes:
    """The indexes of one instance, while its lock is held.

    `occupied`: what AWS shows as taken (the describe's indexes, plus any a
    later describe confirmed). `reserved`: index -> the ENI of ours attached
    there recently.
    """

    __slots__ = ("attached", "occupied", "reserved")

    def __init__(self, *, occupied: Iterable[int], reserved: Mapping[int, str]) -> None:
        self.occupied: set[int] = set(occupied)
        self.reserved: dict[int, str] = dict(reserved)
        self.attached: dict[int, str] = {}  # taken while held: reserved from now on

    def pick(
        self, wanted: int, *, eni_id: str, floor: int | None = None, limit: int | None = None
    ) -> int | None:
        """The first free index from `wanted` upward, below `limit` (None: no known
        limit); when there is none and `floor` is below `wanted`, the first free one
        from `floor` up to `wanted`. Free: AWS does not show it occupied, and it is
        not reserved for another ENI. Never below `floor` (the spec's deviceIndex:
        lower indexes are the VPC CNI's) nor below `wanted` when `floor` is None;
        None if nothing is free."""
        ranges = [(wanted, limit)]
        if floor is not None and floor < wanted:
            ranges.append((floor, wanted))  # the node cannot have the wanted index
        for index, end in ranges:
            while end is None or index < end:
                if index not in self.occupied and self.reserved.get(index, eni_id) == eni_id:
                    return index
                index += 1
        return None

    def take(self, index: int, *, eni_id: str) -> None:
        """`eni_id` is (or may be) attached at `index`: reserve it for that ENI,
        dropping any other reservation it held here."""
        for held in (self.reserved, self.attached):
            for other in [i for i, owner in held.items() if owner == eni_id]:
                del held[other]
        self.reserved[index] = eni_id
        self.attached[index] = eni_id


class DeviceIndexAllocator:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._reserved: dict[str, dict[int, _Reservation]] = {}

    @contextlib.asynccontextmanager
    async def hold(
        self, instance_id: str, *, occupied: Iterable[int]
    ) -> AsyncIterator[InstanceIndexes]:
        """Hold the instance (one holder at a time); indexes `take`n inside are
        reserved for their ENI after, also when the block raises: an attach that
        failed after the call may still have landed there."""
        lock = self._locks.get(instance_id)
        if lock is None:
            lock = self._locks[instance_id] = asyncio.Lock()
        async with lock:
            indexes = InstanceIndexes(occupied=occupied, reserved=self.reserved(instance_id))
            try:
                yield indexes
            finally:
                now = self._clock()
                moved = set(indexes.attached.values())
                # the reservations as they are now (`release` may have dropped some
                # meanwhile), less those of ENIs attached elsewhere here
                reserved = {
                    i: r
                    for i, r in self._current(instance_id, now).items()
                    if r.eni_id not in moved
                }
                for index, eni_id in indexes.attached.items():
                    reserved[index] = _Reservation(eni_id, now + RESERVATION_SECONDS)
                if reserved:
                    self._reserved[instance_id] = reserved
                else:
                    self._reserved.pop(instance_id, None)

    def release(self, instance_id: str, index: int) -> None:
        """Forget the reservation of `index` (its ENI was seen detached: until then
        no other ENI of ours could be attached there)."""
        reserved = self._reserved.get(instance_id)
        if reserved is None or index not in reserved:
            return
        del reserved[index]
        if not reserved:
            del self._reserved[instance_id]

    def forget(self, eni_id: str) -> None:
        """The ENI is deleted: it holds no index anywhere any more."""
        for instance_id, reserved in list(self._reserved.items()):
            for index in [i for i, r in reserved.items() if r.eni_id == eni_id]:
                del reserved[index]
            if not reserved:
                del self._reserved[instance_id]

    def reserved(self, instance_id: str) -> dict[int, str]:
        """Index -> ENI id of the instance's unexpired reservations (for logs and tests)."""
        return {i: r.eni_id for i, r in self._current(instance_id, self._clock()).items()}

    def _current(self, instance_id: str, now: float) -> dict[int, _Reservation]:
        return {i: r for i, r in self._reserved.get(instance_id, {}).items() if r.until > now}


async def attach_at_free_index(
    ec2: EC2Client,
    allocator: DeviceIndexAllocator,
    *,
    eni_id: str,
    instance: Instance,
    wanted: int,
    floor: int,
    limit: int | None,
) -> tuple[str, int]:
    """Attach `eni_id` at the index `pick` finds, the instance held: the attachment
    id and the index. An index AWS refuses is skipped only once a describe shows it
    taken, at most MAX_INDEX_CONFLICTS in a row (then IndexConflict). No free index
    blocks the slot only on a fresh describe: kept facts may still show an ENI
    detached or deleted by hand since."""
    instance_id = instance.instance_id
    async with allocator.hold(instance_id, occupied=instance.occupied_device_indexes) as indexes:
        described = False
        for _ in range(MAX_INDEX_CONFLICTS):
            index = indexes.pick(wanted, eni_id=eni_id, floor=floor, limit=limit)
            if index is None and not described:
                described = True
                fresh = (await ec2.describe_instances([instance_id])).get(instance_id)
                if fresh is not None:
                    indexes.occupied = set(fresh.occupied_device_indexes)
                    index = indexes.pick(wanted, eni_id=eni_id, floor=floor, limit=limit)
            if index is None:  # only with a known limit: blocked, never below the floor
                raise errors.LimitExceeded(
                    action=ATTACH_ACTION,
                    code="NoFreeDeviceIndex",
                    message=(
                        f"no free device index on {instance_id} from the spec's deviceIndex "
                        f"{floor} up to {instance.instance_type}'s limit of {limit} network "
                        "interfaces"
                    ),
                )
            try:
                attachment_id = await ec2.attach_network_interface(
                    eni_id=eni_id, instance_id=instance_id, device_index=index
                )
            except errors.OutcomeUnknown:
                indexes.take(index, eni_id=eni_id)  # it may be attached there
                raise
            except errors.MaybeIndexConflict:
                # a conflict only if the instance shows the index taken now
                fresh = (await ec2.describe_instances([instance_id])).get(instance_id)
                if fresh is None or index not in fresh.occupied_device_indexes:
                    raise
                indexes.occupied.update(fresh.occupied_device_indexes)
                continue  # held outside the controller: the next index up
            indexes.take(index, eni_id=eni_id)
            return attachment_id, index
    raise errors.IndexConflict(
        action=ATTACH_ACTION,
        code="IndexConflict",
        message=(
            f"{MAX_INDEX_CONFLICTS} device indexes in a row from {wanted} up were taken on "
            f"{instance_id}"
        ),
    )

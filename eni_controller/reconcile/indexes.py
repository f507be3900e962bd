"""Device-index allocation, one writer per instance across every NodeENI.

Two NodeENIs reconciled at once may target the same node, each with its own
seconds-old describe; without a lock per instance both would pick the same free
index and one attach would fail.

Invariants:
- One holder per instance at a time (`DeviceIndexAllocator.hold`).
- `pick` searches upward from the wanted index, never below the spec's
  deviceIndex (lower ones are the VPC CNI's or other subnets'), and below the
  type's ENI limit when known; with nothing free the attach is refused
  (NoFreeDeviceIndex). An index AWS refuses is skipped only once a describe
  shows it taken.
- An index this process attached stays reserved for RESERVATION_SECONDS (a
  describe may not show it yet), for its own ENI only: our ENI detached by hand
  and attached again keeps its index. An ENI holds at most one reservation per
  instance; `release` drops one once its ENI is seen detached, `forget` all of an
  ENI's once it is deleted.
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
    """The indexes of one instance while its lock is held: `occupied` as AWS shows
    them, `reserved` index -> the ENI of ours attached there recently."""

    def __init__(
        self,
        *,
        occupied: Iterable[int],
        reserved: Mapping[int, str],
        on_take: Callable[[int, str], None] = lambda index, eni_id: None,
    ) -> None:
        self.occupied: set[int] = set(occupied)
        self.reserved: dict[int, str] = dict(reserved)
        self._on_take = on_take

    def pick(
        self, wanted: int, *, eni_id: str, floor: int | None = None, limit: int | None = None
    ) -> int | None:
        """The first free index from `wanted` up to `limit` (None: unbounded), else
        from `floor` up to `wanted`; None if nothing is free. Free: not occupied, and
        not reserved for another ENI."""
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
        """`eni_id` is (or may be) attached at `index`: its only reservation here."""
        self.reserved = {i: e for i, e in self.reserved.items() if e != eni_id} | {index: eni_id}
        self._on_take(index, eni_id)


class DeviceIndexAllocator:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._reserved: dict[str, dict[int, _Reservation]] = {}

    @contextlib.asynccontextmanager
    async def hold(
        self, instance_id: str, *, occupied: Iterable[int]
    ) -> AsyncIterator[InstanceIndexes]:
        """Hold the instance; indexes `take`n inside are reserved at once, so they
        stay so also when the block raises (a failed attach may still have landed)."""

        def reserve(index: int, eni_id: str) -> None:
            now = self._clock()
            reserved = {
                i: r for i, r in self._current(instance_id, now).items() if r.eni_id != eni_id
            }
            reserved[index] = _Reservation(eni_id, now + RESERVATION_SECONDS)
            self._reserved[instance_id] = reserved

        async with self._locks.setdefault(instance_id, asyncio.Lock()):
            yield InstanceIndexes(
                occupied=occupied, reserved=self.reserved(instance_id), on_take=reserve
            )

    def release(self, instance_id: str, index: int) -> None:
        """Forget the reservation of `index`: its ENI was seen detached."""
        reserved = self._reserved.get(instance_id, {})
        reserved.pop(index, None)
        if not reserved:
            self._reserved.pop(instance_id, None)

    def forget(self, eni_id: str) -> None:
        """The ENI is deleted: it holds no index anywhere any more."""
        for instance_id, reserved in list(self._reserved.items()):
            for index in [i for i, r in reserved.items() if r.eni_id == eni_id]:
                self.release(instance_id, index)

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
    id and the index. At most MAX_INDEX_CONFLICTS refused indexes in a row (then
    IndexConflict); no free index blocks the slot only on a fresh describe."""
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

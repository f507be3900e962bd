"""Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics.

Only one replica may act on EC2: two reconciling one NodeENI would race for
device indexes and create ENIs nobody records. Invariants:

- every `retry_period` a candidate creates the Lease when missing, keeps it when
  it holds it, takes it over when empty or expired; every write carries the
  resourceVersion read, so of two racing replicas one gets 409;
- expiry is judged by when *we* last saw the record change, on our monotonic
  clock, never by the holder's `renewTime` (another node's clock);
- a leader that has not renewed for `renew_deadline`, or sees another holder,
  stops its work before campaigning again; `renew_deadline < lease_duration`
  means it has stopped before anyone else can see the lease expired;
- on graceful shutdown it releases the Lease (client-go's ReleaseOnCancel), so a
  standby takes over at its next retry.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import math
import random
import time
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any, Final

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

log = structlog.get_logger(__name__)

DEFAULT_LEASE_NAME: Final = "nodeeni-controller-leader-election"
RELEASED_LEASE_DURATION_SECONDS: Final = 1
ACQUIRE_JITTER: Final = 0.2  # client-go's JitterFactor for a candidate's retries


def acquirable(
    record: client.V1LeaseSpec, *, identity: str, observed_at: float, now: float
) -> bool:
    """Whether `identity` may write itself into the Lease holding `record`, which this
    replica last saw change at `observed_at` (the record's renewTime is ignored)."""
    if not record.holder_identity or record.holder_identity == identity:
        return True
    return now >= observed_at + (record.lease_duration_seconds or 0)


def next_record(
    old: client.V1LeaseSpec | None,
    *,
    identity: str,
    lease_duration_seconds: int,
    now: datetime.datetime,
) -> client.V1LeaseSpec:
    """The record `identity` writes to acquire or renew: a renewal keeps acquireTime and
    leaseTransitions, a takeover (also of a released Lease) counts one more."""
    if old is not None and old.holder_identity == identity:
        acquired, transitions = old.acquire_time, old.lease_transitions or 0
    else:
        acquired = now
        transitions = 0 if old is None else (old.lease_transitions or 0) + 1
    return client.V1LeaseSpec(
        holder_identity=identity,
        lease_duration_seconds=lease_duration_seconds,
        acquire_time=acquired,
        renew_time=now,
        lease_transitions=transitions,
    )


def micro_time(moment: datetime.datetime) -> datetime.datetime:
    """`moment`, safe to send as a MicroTime: isoformat() drops a zero fraction, which
    the server refuses (it wants 6 digits), so nudge it by 1 µs."""
    return moment if moment.microsecond else moment.replace(microsecond=1)


def wall_now() -> datetime.datetime:
    return micro_time(datetime.datetime.now(datetime.UTC))


class Attempt(enum.Enum):
    ACQUIRED = "acquired"  # we hold the Lease (created, taken over or renewed)
    HELD = "held"  # another replica validly holds it
    FAILED = "failed"  # API error, timeout or a lost race (409): try again


class LeaderElector:
    """Runs `lead()` only while this replica holds the Lease `namespace/name`."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str,
        name: str = DEFAULT_LEASE_NAME,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError(
                "timings must be positive, retry_period < renew_deadline < lease_duration: "
                f"got {retry_period}, {renew_deadline}, {lease_duration}"
            )
        self._leases = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False  # from acquiring the Lease until lead() has stopped again
        self._lease: client.V1Lease | None = None  # the last object read or written
        self._observed: client.V1LeaseSpec | None = None
        self._observed_at = 0.0
        self._log = log.bind(lease=f"{namespace}/{name}", identity=identity)

    @property
    def holder(self) -> str:
        """The holder in the last lease record this replica saw ("" if none or unknown)."""
        return (self._observed.holder_identity if self._observed else None) or ""

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign for the Lease and run `lead()` while holding it. Losing the Lease
        cancels `lead()`, waits for it and campaigns again. When `lead()` returns or
        raises, release the Lease and do the same; when cancelled, cancel `lead()`,
        wait for it, release and re-raise."""
        while True:
            renewed_at = await self._acquire()
            lead_task = asyncio.create_task(lead(), name=f"lead:{self.identity}")
            self.is_leader = True
            try:
                finished = await self._renew(lead_task, renewed_at)
            except asyncio.CancelledError:
                await self._stop(lead_task)
                await self._release()
                raise
            await self._stop(lead_task)
            if finished:
                await self._release()
                if not lead_task.cancelled() and (err := lead_task.exception()) is not None:
                    raise err
                return

    async def _acquire(self) -> float:
        """Try until we hold the Lease; returns when (our clock) the winning attempt started."""
        while True:
            started = time.monotonic()
            if await self._attempt(within=self.renew_deadline) is Attempt.ACQUIRED:
                self._log.info("became leader")
                return started
            await asyncio.sleep(self.retry_period * (1 + ACQUIRE_JITTER * random.random()))

    async def _renew(self, lead_task: asyncio.Task[None], renewed_at: float) -> bool:
        """Renew every retry_period: True once lead() finished, False when leadership is
        lost. The deadline counts from the *start* of the last successful attempt: every
        other replica observed its write later still."""
        while True:
            deadline = renewed_at + self.renew_deadline
            pause = min(self.retry_period, deadline - time.monotonic())
            await asyncio.wait([lead_task], timeout=max(pause, 0.0))
            if lead_task.done():
                return True
            started = time.monotonic()
            if started >= deadline:
                self._log.warning("lost leadership: renew deadline passed", holder=self.holder)
                return False
            result = await self._attempt(within=deadline - started)
            if result is Attempt.ACQUIRED:
                renewed_at = started
            elif result is Attempt.HELD:
                self._log.warning("lost leadership: lease held by another", holder=self.holder)
                return False

    async def _stop(self, lead_task: asyncio.Task[None]) -> None:
        """Cancel lead() and wait until it has really finished, then stop being leader."""
        if not lead_task.done():
            lead_task.cancel()
            margin = self.lease_duration - self.renew_deadline
            done, _ = await asyncio.wait([lead_task], timeout=margin)
            if not done:
                self._log.error("lead() still running after cancellation", waited=margin)
                await asyncio.wait([lead_task])
        self.is_leader = False
        if not lead_task.cancelled() and (err := lead_task.exception()) is not None:
            self._log.error("lead() failed", error=repr(err))

    async def _attempt(self, *, within: float) -> Attempt:
        try:
            async with asyncio.timeout(within):
                return await self._try_acquire_or_renew()
        except Exception as err:  # an API error, a timeout, the API unreachable
            self._log.warning(
                "lease request failed", error=repr(err), status=getattr(err, "status", None)
            )
        return Attempt.FAILED

    async def _try_acquire_or_renew(self) -> Attempt:
        record = None
        try:
            lease = await self._leases.read_namespaced_lease(self.name, self.namespace)
        except ApiException as err:
            if err.status != HTTPStatus.NOT_FOUND:
                raise
            lease = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name))
        else:
            now = time.monotonic()  # after the read: we saw this record no earlier than now
            record = self._observe(lease, now)
            if not acquirable(
                record, identity=self.identity, observed_at=self._observed_at, now=now
            ):
                return Attempt.HELD
        lease.spec = next_record(
            record,
            identity=self.identity,
            lease_duration_seconds=math.ceil(self.lease_duration),
            now=wall_now(),
        )  # metadata keeps the resourceVersion we read
        try:
            if record is None:
                written = await self._leases.create_namespaced_lease(self.namespace, lease)
            else:
                written = await self._leases.replace_namespaced_lease(
                    self.name, self.namespace, lease
                )
        except ApiException as err:
            if err.status != HTTPStatus.CONFLICT:
                raise
            self._log.debug("lost the race for the lease", holder=self.holder)
            return Attempt.FAILED
        self._observe(written, time.monotonic())
        return Attempt.ACQUIRED

    def _observe(self, lease: client.V1Lease, now: float) -> client.V1LeaseSpec:
        """Keep `lease` as the last read or written; its record, if changed, as seen `now`."""
        self._lease = lease
        record = lease.spec or client.V1LeaseSpec()
        if record != self._observed:
            if self._observed is None or record.holder_identity != self._observed.holder_identity:
                self._log.info("lease holder observed", holder=record.holder_identity or None)
            self._observed = record
            self._observed_at = now
        return record

    async def _release(self) -> None:
        """Hand the Lease back, with the resourceVersion we last wrote: a 409 means
        someone changed it since, and it is no longer ours to release."""
        lease, observed = self._lease, self._observed
        if lease is None or observed is None or observed.holder_identity != self.identity:
            return
        now = wall_now()
        lease.spec = client.V1LeaseSpec(
            lease_duration_seconds=RELEASED_LEASE_DURATION_SECONDS,
            acquire_time=now,
            renew_time=now,
            lease_transitions=observed.lease_transitions,
        )
        try:
            async with asyncio.timeout(self.renew_deadline):
                written = await self._leases.replace_namespaced_lease(
                    self.name, self.namespace, lease
                )
        except Exception as err:
            self._log.warning(
                "lease not released", error=repr(err), status=getattr(err, "status", None)
            )
            return
        self._observe(written, time.monotonic())
        self._log.info("released the lease")

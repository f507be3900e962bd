"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it.

Two replicas must never both create ENIs. The leader renews its Lease every
retry period; if it cannot renew for renew_deadline it stops its work and
waits for it to stop, which happens before lease_duration runs out, so before
anyone else may take over. A standby judges expiry by when *it* last saw the
Lease change (its own clock), never by trusting the holder's timestamps. On
a graceful exit the leader releases the Lease, so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

log = structlog.get_logger(__name__)

LEASE_NAME = "nodeeni-controller-leader-election"
HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str,
        identity: str,
        name: str = LEASE_NAME,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_change: Callable[[bool], None] | None = None,
        release_on_cancel: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("need retry_period < renew_deadline < lease_duration")
        self._leases = client.CoordinationV1Api(api)
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry = retry_period
        self._on_change = on_change
        self._release_on_cancel = release_on_cancel
        self._clock = clock
        self._observed: tuple[str | None, str | None] = (None, None)
        self._observed_at = 0.0
        self.is_leader = False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign, lead while leader, campaign again after losing; until cancelled."""
        while True:
            await self._acquire()
            self._set(leader=True)
            work = asyncio.create_task(lead())
            try:
                finished = await self._keep(work)
            except asyncio.CancelledError:
                await _stop(work)
                self._set(leader=False)
                if self._release_on_cancel:
                    await self._release()
                raise
            await _stop(work)
            self._set(leader=False)
            if finished:
                await self._release()
                return

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                return
            await asyncio.sleep(self._retry)

    async def _keep(self, work: asyncio.Task[None]) -> bool:
        """Renew until the work ends (True) or the lease is lost (False)."""
        last_renew = self._clock()
        while not work.done():
            await asyncio.wait({work}, timeout=self._retry)
            if work.done():
                break
            if await self._try_acquire_or_renew():
                last_renew = self._clock()
            elif self._clock() - last_renew >= self._renew_deadline:
                log.warning("leadership lost", identity=self.identity)
                return False
        return True

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        try:
            lease = await self._leases.read_namespaced_lease(self._name, self._namespace)
        except ApiException as err:
            if err.status != HTTP_NOT_FOUND:
                log.warning("lease read failed", status=err.status)
                return False
            return await self._create(now)
        except (TimeoutError, OSError) as err:
            log.warning("lease read failed", error=type(err).__name__)
            return False
        spec = lease.spec
        holder = spec.holder_identity or None
        seen = (holder, str(spec.renew_time))
        if seen != self._observed:
            self._observed, self._observed_at = seen, self._clock()
        expired = self._clock() - self._observed_at >= self._lease_duration
        if holder not in (None, self.identity) and not expired:
            return False
        if holder != self.identity:
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.acquire_time = now
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = int(self._lease_duration)
        spec.renew_time = now
        try:
            await self._leases.replace_namespaced_lease(self._name, self._namespace, lease)
        except ApiException as err:
            if err.status != HTTP_CONFLICT:
                log.warning("lease update failed", status=err.status)
            return False
        except (TimeoutError, OSError) as err:
            log.warning("lease update failed", error=type(err).__name__)
            return False
        if holder != self.identity:
            log.info("lease acquired", identity=self.identity, previous=holder)
        return True

    async def _create(self, now: datetime.datetime) -> bool:
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self._name, namespace=self._namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=int(self._lease_duration),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        try:
            await self._leases.create_namespaced_lease(self._namespace, lease)
        except ApiException as err:
            if err.status != HTTP_CONFLICT:
                log.warning("lease create failed", status=err.status)
            return False
        log.info("lease created and acquired", identity=self.identity)
        return True

    async def _release(self) -> None:
        with contextlib.suppress(ApiException, OSError, asyncio.TimeoutError):
            lease = await self._leases.read_namespaced_lease(self._name, self._namespace)
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = ""
            lease.spec.lease_duration_seconds = 1
            await self._leases.replace_namespaced_lease(self._name, self._namespace, lease)
            log.info("lease released", identity=self.identity)

    def _set(self, *, leader: bool) -> None:
        if leader != self.is_leader:
            self.is_leader = leader
            if self._on_change is not None:
                self._on_change(leader)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

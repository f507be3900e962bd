"""The cleanup pool: detach, wait for `available`, delete, on workers of its own.

Waiting for a detachment takes seconds on AWS. Done inline, it would hold a
reconcile worker hostage; here it holds no worker at all. The
MAX_CONCURRENT_ENI_CLEANUP workers make the mutating calls (detach, delete);
a detached ENI is then parked, and one poller asks EC2 about every parked ENI
in one batched describe per poll, handing each ENI that is free back to the
workers for its delete. Asking per ENI cost two describes per ENI (one before
the detach, one or more while waiting), more EC2 calls than the deletions
themselves; now the describe before the detach uses what the submitter saw,
and the waits of hundreds of ENIs share one call
(bench/results/suite/large.json). A poll asks only for the parked ENIs still
in use (a status filter): one missing from the answer is `available` or gone,
so once EC2 has detached them the answer is empty instead of every parked ENI
in full (the test server spends ~1 ms per ENI it returns: at 1,000 ENIs the
polls' answers cost about a second).

Each wait is bounded by DETACHMENT_TIMEOUT; an ENI that is not free by then
goes back to the queue with backoff (described afresh, detached again), it is
never dropped. NotFound at any step means someone (AWS, DeleteOnTermination,
an operator) already did it: done.

The owner (the NodeENI whose status lists the ENI) is told as ENIs go, so its
status drops them, but at most once per NOTIFY_INTERVAL_SECONDS while more of
its ENIs are in the pool, and at once when its last one is gone (its finalizer
waits on that). Telling it per ENI made every deleted ENI cost a reconcile: a
describe of all the owner's remaining ENIs and a status write, most of them
409s on a resourceVersion the informer had not caught up with yet — at 1,000
ENIs, more EC2 work than the deletions themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

import structlog

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import NetworkInterface
from eni_controller.kube.workqueue import ShutDown, WorkQueue
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags

log = structlog.get_logger(__name__)

POLL_START_SECONDS = 0.1
# an ENI in any other status (`available`) is free to delete
NOT_FREE_STATUSES = ("in-use", "attaching", "detaching")
POLL_MAX_SECONDS = 2.0
NOTIFY_INTERVAL_SECONDS = 1.0


class DetachTimeout(Exception):
    """The ENI was still attached when DETACHMENT_TIMEOUT ran out."""


class CleanupPool:
    def __init__(
        self,
        ec2: EC2Client,
        *,
        workers: int,
        detach_timeout: float,
        on_done: Callable[[str], None],
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ec2 = ec2
        self._metrics = metrics
        self._workers = workers
        self._detach_timeout = detach_timeout
        self._on_done = on_done
        self._clock = clock
        self.queue: WorkQueue[str] = WorkQueue(name="eni-cleanup", base_delay=0.5, max_delay=60.0)
        self._owners: dict[str, str] = {}  # ENI id → NodeENI name, told when it is gone
        self._pending_by_owner: Counter[str] = Counter()
        self._notify_later: dict[str, asyncio.TimerHandle] = {}
        self._seen: dict[str, dict[str, str]] = {}  # ENI id → its log fields, once described
        self._submitted: dict[str, NetworkInterface] = {}  # what the submitter saw, used once
        self._started: dict[str, float] = {}  # ENI id → when its current attempt began
        self._parked: dict[str, float] = {}  # detached, awaiting `available`: ENI id → deadline
        self._free: set[str] = set()  # seen free by the poller: next pass deletes
        self._new_parked = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0  # read by tests: never above the worker count
        self.polls = 0  # read by tests: describes made while waiting for detachment

    def submit(self, eni_id: str, *, nodeeni: str, seen: NetworkInterface | None = None) -> None:
        """Queue an ENI for cleanup; `seen` (the submitter's describe of it, if any)
        spares the worker a describe before it detaches."""
        previous = self._owners.get(eni_id)
        if previous != nodeeni:
            if previous is not None:
                self._pending_by_owner[previous] -= 1
            self._pending_by_owner[nodeeni] += 1
        self._owners[eni_id] = nodeeni
        if seen is not None and eni_id not in self._parked and eni_id not in self._free:
            self._submitted[eni_id] = seen
            self._seen[eni_id] = tags.log_fields(seen)
        if eni_id not in self._parked:
            self.queue.add(eni_id)

    def pending(self, eni_id: str) -> bool:
        return eni_id in self._owners

    def pending_for(self, nodeeni: str) -> int:
        """How many of `nodeeni`'s ENIs are queued, parked or being cleaned."""
        return self._pending_by_owner.get(nodeeni, 0)

    @property
    def idle(self) -> bool:
        """No ENI queued, parked or being cleaned."""
        return not self._owners

    async def run(self) -> None:
        """Run the workers and the poller until cancelled (losing leadership, or
        exiting); the queue survives, so a later term picks up where this one stopped."""
        tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers)]
        tasks.append(asyncio.create_task(self._poll_parked()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for eni_id in self._parked:  # their wait is not over: the next term describes them
                self.queue.add(eni_id)
            self._parked.clear()

    async def _worker(self) -> None:
        while True:
            try:
                eni_id = await self.queue.get()
            except ShutDown:
                return
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._started.setdefault(eni_id, self._clock())
            try:
                finished = await self._step(eni_id)
            except asyncio.CancelledError:
                self.queue.add(eni_id)  # unfinished: the next term does it
                raise
            except errors.EC2Error as err:
                self._retry(eni_id, err)
            except Exception:
                log.exception("cleanup failed", **self._log_fields(eni_id))
                self._retry(eni_id, None)
            else:
                if finished:
                    self._finished(eni_id)
            finally:
                self.in_flight -= 1
                self.queue.done(eni_id)

    async def _step(self, eni_id: str) -> bool:
        """One worker pass: delete a free ENI, or detach one and park it; True when gone."""
        if eni_id in self._free:
            self._free.discard(eni_id)
            await self._delete(eni_id)
            return True
        eni = self._submitted.pop(eni_id, None) or await self._describe(eni_id)
        if eni is None:
            return True
        if eni.attachment is None:
            await self._delete(eni_id)
            return True
        if eni.attachment.status not in ("detaching", "detached"):
            with (
                self._metrics.eni_operation("detach"),
                contextlib.suppress(errors.AttachmentNotFound, errors.IncorrectState),
            ):
                await self._ec2.detach_network_interface(
                    attachment_id=eni.attachment.attachment_id, force=True
                )
        self._parked[eni_id] = self._clock() + self._detach_timeout
        self._new_parked.set()
        return False

    async def _delete(self, eni_id: str) -> None:
        with self._metrics.eni_operation("delete"), contextlib.suppress(errors.ENINotFound):
            await self._ec2.delete_network_interface(eni_id=eni_id)

    def _finished(self, eni_id: str) -> None:
        self._metrics.cleanups.labels("success").inc()
        self._observe(eni_id)
        self.queue.forget(eni_id)
        log.info("ENI cleaned up", **self._log_fields(eni_id))
        owner = self._owners.pop(eni_id, None)
        self._seen.pop(eni_id, None)
        if owner is not None:
            self._notify(owner)

    def _retry(self, eni_id: str, err: Exception | None) -> None:
        if err is not None:
            log.info(
                "cleanup will retry",
                error=type(err).__name__,
                detail=str(err),
                **self._log_fields(eni_id),
            )
        self._metrics.cleanups.labels("retry").inc()
        self._observe(eni_id)
        self._submitted.pop(eni_id, None)  # described afresh next time
        self.queue.add_rate_limited(eni_id)

    def _observe(self, eni_id: str) -> None:
        started = self._started.pop(eni_id, None)
        if started is not None:
            self._metrics.cleanup_duration.observe(self._clock() - started)

    async def _poll_parked(self) -> None:
        """Describe every parked ENI in one call per poll; free ones go to the workers.

        Polls start POLL_START_SECONDS after an ENI is parked and back off to
        POLL_MAX_SECONDS while nothing new is parked, as the per-ENI wait did.
        """
        delay = POLL_START_SECONDS
        while True:
            if not self._parked:
                self._new_parked.clear()
                await self._new_parked.wait()
                delay = POLL_START_SECONDS
            await asyncio.sleep(delay)
            if self._new_parked.is_set():
                self._new_parked.clear()
                delay = POLL_START_SECONDS
            else:
                delay = min(delay * 2, POLL_MAX_SECONDS)
            try:
                await self._poll_once()
            except errors.EC2Error as err:
                log.info("detach poll will retry", error=type(err).__name__, detail=str(err))
            except Exception:
                log.exception("detach poll failed; it will retry")

    async def _poll_once(self) -> None:
        waiting = sorted(self._parked)
        if not waiting:
            return
        self.polls += 1
        found = await self._ec2.describe_network_interfaces(
            filters={"status": list(NOT_FREE_STATUSES)}, eni_ids=waiting
        )
        by_id = {e.eni_id: e for e in found}
        now = self._clock()
        for eni_id in waiting:
            deadline = self._parked.get(eni_id)
            if deadline is None:
                continue  # left the pool while the describe ran (cancelled term)
            eni = by_id.get(eni_id)
            if eni is not None:
                self._seen[eni_id] = tags.log_fields(eni)
            if eni is None or eni.attachment is None or eni.attachment.status == "detached":
                del self._parked[eni_id]
                self._free.add(eni_id)
                self.queue.add_first(eni_id)  # its delete before another ENI's detach
            elif now >= deadline:
                del self._parked[eni_id]
                self._retry(eni_id, DetachTimeout(f"{eni_id} still {eni.attachment.status}"))

    def _notify(self, owner: str) -> None:
        """One of `owner`'s ENIs is gone: tell it now if it was the last, else soon."""
        self._pending_by_owner[owner] -= 1
        if self._pending_by_owner[owner] <= 0:
            del self._pending_by_owner[owner]
            later = self._notify_later.pop(owner, None)
            if later is not None:
                later.cancel()
            self._on_done(owner)
        elif owner not in self._notify_later:
            self._notify_later[owner] = asyncio.get_running_loop().call_later(
                NOTIFY_INTERVAL_SECONDS, self._notify_now, owner
            )

    def _notify_now(self, owner: str) -> None:
        self._notify_later.pop(owner, None)
        self._on_done(owner)

    def _log_fields(self, eni_id: str) -> dict[str, str]:
        """eni_id, and nodeeni/node/instance_id as far as known, for every line."""
        owner = self._owners.get(eni_id)
        # the ENI's own tag names its NodeENI even when the orphan sweep is the owner
        fields = {"eni_id": eni_id, **({"nodeeni": owner} if owner else {})}
        return {**fields, **self._seen.get(eni_id, {})}

    async def _describe(self, eni_id: str) -> NetworkInterface | None:
        found = await self._ec2.describe_network_interfaces(filters={}, eni_ids=[eni_id])
        if found:
            self._seen[eni_id] = tags.log_fields(found[0])
        return found[0] if found else None

"""The cleanup pool: detach, wait for `available`, delete, on workers of its own.

A detachment takes seconds on AWS: waited for inline, it would hold a reconcile
worker hostage. MAX_CONCURRENT_ENI_CLEANUP workers make the mutating calls and
park each detached ENI; one poller describes the parked ENIs still in use in one
batched call per poll and hands each free one back to the workers for its delete.

Invariants:

* Detach gently first: the next detach is forced only once an ENI is not free
  within DETACHMENT_TIMEOUT. A slow ENI is retried with backoff, never dropped.
* Destroy only what was decided: an ENI seen attached elsewhere than when its
  cleanup was decided (or attached at all, when it was decided unattached) is
  neither detached nor deleted; it leaves the pool and its owner decides again.
  A detach names its attachment, so a stale view never detaches a newer one.
* A cancelled ENI is left alone: a worker checks its job is still current
  right before every destructive call and after every await, and otherwise
  does nothing more for it (no requeue, no second notice).
* A leadership term owns its cleanups: when run() ends everything pending is
  dropped, and the next term decides again.
* NotFound at any step means someone already did it: done.
* `_jobs` keeps entry order, so its first job is the oldest (for the gauges).
* An owner is told its ENIs left the pool at most once per NOTIFY_INTERVAL_SECONDS
  while more are pending (a reconcile per deleted ENI costs more EC2 work than
  the deletion), and at once with its last one: its finalizer waits on that.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import NetworkInterface
from eni_controller.kube.workqueue import WorkQueue
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags

log = structlog.get_logger(__name__)

POLL_START_SECONDS = 0.1
NOT_FREE_STATUSES = ("in-use", "attaching", "detaching")  # any other (available): free
POLL_MAX_SECONDS = 2.0
NOTIFY_INTERVAL_SECONDS = 1.0
RETRY_BASE_SECONDS = 0.5
RETRY_MAX_SECONDS = 60.0


@dataclass(kw_only=True, eq=False)
class _Job:
    """One pending ENI; a new object each time the ENI enters the pool, so a worker
    still holding an old one (cancelled, or the term ended) knows it is stale."""

    owner: str
    entered: float  # when it entered the pool (the clock's time)
    instance_id: str | None = None  # attached there when cleanup was decided (None: not)
    view: NetworkInterface | None = None  # the submitter's, used once instead of a describe
    log_fields: dict[str, str] = field(default_factory=dict)
    started: float | None = None  # when the current attempt began
    force: bool = False  # a detach timed out: the next one is forced
    free: bool = False  # seen free by the poller: the next pass deletes
    detached_from: tuple[str, int] | None = None  # (instance, index) to release once free


def _new_queue() -> WorkQueue[str]:
    return WorkQueue(name="eni-cleanup", base_delay=RETRY_BASE_SECONDS, max_delay=RETRY_MAX_SECONDS)


def _fields(eni_id: str, job: _Job) -> dict[str, str | None]:
    """eni_id, nodeeni, node and instance_id, None where unknown (the ENI's own tag
    names its NodeENI even when the orphan sweep is the owner)."""
    known = {"eni_id": eni_id, "nodeeni": job.owner, **job.log_fields}
    return {"node": None, "instance_id": None, **known}


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
        on_detached: Callable[[str, int], None] = lambda *_: None,
        on_deleted: Callable[[str], None] = lambda _: None,
        on_event: Callable[[str, str, str], None] = lambda *_: None,
    ) -> None:
        """`on_done(owner)`: some of the owner's ENIs left the pool. `on_detached(
        instance_id, device_index)`: an ENI this pool detached is free. `on_deleted(
        eni_id)`: its delete succeeded or said NotFound. `on_event(owner, reason,
        message)`: a Normal Event (it must not block)."""
        self._ec2 = ec2
        self._metrics = metrics
        self._workers = workers
        self._detach_timeout = detach_timeout
        self._on_detached = on_detached
        self._on_deleted = on_deleted
        self._on_event = on_event
        self._clock = clock
        self.queue: WorkQueue[str] = _new_queue()  # a new one each term
        self._jobs: dict[str, _Job] = {}  # every pending ENI
        self._on_done = on_done
        self._owners: Counter[str] = Counter()  # owner -> how many of its ENIs are pending
        self._tell_later: dict[str, asyncio.TimerHandle] = {}
        self._parked: dict[str, float] = {}  # detached, awaiting `available`: ENI id → deadline
        self._new_parked = asyncio.Event()
        self.in_flight = 0
        metrics.watch_cleanup_pool(
            pending=lambda: len(self._jobs),
            in_flight=lambda: self.in_flight,
            oldest_pending_seconds=self._oldest_pending_seconds,
        )

    def submit(self, eni: NetworkInterface, *, nodeeni: str) -> bool:
        """Queue `eni`, as the decision saw it, for cleanup on behalf of `nodeeni`; False,
        doing nothing, if it is pending already. The view spares the worker a describe
        before the detach, and its attachment's instance is the only one the pool will
        detach the ENI from."""
        eni_id = eni.eni_id
        if eni_id in self._jobs:
            return False
        job = self._jobs[eni_id] = _Job(owner=nodeeni, entered=self._clock(), view=eni)
        job.instance_id = eni.attachment.instance_id if eni.attachment is not None else None
        job.log_fields = tags.log_fields(eni)
        self._owners[nodeeni] += 1
        self.queue.add(eni_id)
        return True

    def cancel(self, eni_id: str) -> bool:
        """Take the ENI out of the pool (its owner is told): no detach or delete is made
        for it from now on; one already sent is not undone. True if it was pending."""
        job = self._jobs.get(eni_id)
        if job is None:
            return False
        log.info("cleanup cancelled", **_fields(eni_id, job))
        self._leave(eni_id, job)
        return True

    def pending(self, eni_id: str) -> bool:
        return eni_id in self._jobs

    def pending_for(self, nodeeni: str) -> int:
        """How many of `nodeeni`'s ENIs are queued, parked or being cleaned."""
        return self._owners.get(nodeeni, 0)

    def _oldest_pending_seconds(self) -> float:
        """How long the oldest ENI has been pending (0: none). Called on a scrape
        thread: reads `_jobs` once, changes nothing."""
        try:
            oldest = next(iter(self._jobs.values()), None)
        except RuntimeError:  # the loop resized `_jobs` during the read: next scrape
            return 0.0
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest.entered)

    @property
    def idle(self) -> bool:
        """No ENI queued, parked or being cleaned."""
        return not self._jobs

    async def run(self) -> None:
        """Run the workers and the poller until cancelled; then drop everything pending."""
        queue = self.queue
        tasks = [asyncio.create_task(self._worker(queue)) for _ in range(self._workers)]
        tasks.append(asyncio.create_task(self._poll_parked()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            self._drop_all()  # before the tasks unwind: they see their jobs stale
            await asyncio.gather(*tasks, return_exceptions=True)
            await queue.shutdown(drain=False)  # its backoff timers

    def _drop_all(self) -> None:
        if self._jobs:
            log.info("cleanup pool stopped: pending cleanups dropped", enis=len(self._jobs))
        for later in self._tell_later.values():
            later.cancel()
        self._tell_later.clear()
        self._owners.clear()
        self._jobs.clear()
        self._parked.clear()
        self._new_parked.clear()
        self.queue = _new_queue()

    async def _worker(self, queue: WorkQueue[str]) -> None:
        while (eni_id := await queue.get()) is not None:
            job = self._jobs.get(eni_id)
            if job is None or eni_id in self._parked:  # cancelled, or the poller's now
                queue.done(eni_id)
                continue
            self.in_flight += 1
            if job.started is None:
                job.started = self._clock()
            try:
                await self._step(eni_id, job)
            except errors.EC2Error as err:
                if self._current(eni_id, job):
                    self._retry(eni_id, job, type(err).__name__, str(err))
            except Exception:
                if self._current(eni_id, job):
                    log.exception("cleanup failed", **_fields(eni_id, job))
                    self._retry(eni_id, job)
            finally:
                self.in_flight -= 1
                queue.done(eni_id)

    def _current(self, eni_id: str, job: _Job) -> bool:
        """Still pending, under this submission (not cancelled, the term not over)."""
        return self._jobs.get(eni_id) is job

    async def _step(self, eni_id: str, job: _Job) -> None:
        """One worker pass: delete a free ENI, or detach one and park it. Returns
        early, doing nothing more, once the job is no longer current."""
        if job.free:
            job.free = False
            return await self._delete(eni_id, job)
        eni, job.view = job.view, None
        if eni is None:
            found = await self._ec2.describe_network_interfaces(filters={}, eni_ids=[eni_id])
            if not self._current(eni_id, job):
                return
            if not found:
                log.info("ENI already deleted", **_fields(eni_id, job))
                return self._finished(eni_id, job)
            eni = found[0]
            job.log_fields = tags.log_fields(eni)
        attachment = eni.attachment
        if attachment is None:
            self._seen_free(eni_id, job)
            return await self._delete(eni_id, job)
        if attachment.instance_id != job.instance_id:
            return self._dropped(eni_id, job)
        if attachment.status != "detached" and (job.force or attachment.status != "detaching"):
            if job.force:
                log.warning(
                    "ENI not free within the detachment timeout: forcing its detach",
                    **_fields(eni_id, job),
                )
            try:
                with self._metrics.eni_operation("detach"):
                    await self._ec2.detach_network_interface(
                        attachment_id=attachment.attachment_id, force=job.force
                    )
            except (errors.AttachmentNotFound, errors.IncorrectState):
                pass  # detached already, or on its way: the poll tells
            else:
                if job.force:
                    self._metrics.forced_detaches.inc()
            if not self._current(eni_id, job):
                return
            job.force = False
        if attachment.instance_id and attachment.device_index >= 0:
            job.detached_from = (attachment.instance_id, attachment.device_index)
        self._parked[eni_id] = self._clock() + self._detach_timeout
        self._new_parked.set()

    async def _delete(self, eni_id: str, job: _Job) -> None:
        if not self._current(eni_id, job):
            return
        try:
            with self._metrics.eni_operation("delete"):
                await self._ec2.delete_network_interface(eni_id=eni_id)
        except errors.ENINotFound:
            log.info("ENI already deleted", **_fields(eni_id, job))
        else:
            log.info("ENI deleted", **_fields(eni_id, job))
            self._on_event(job.owner, "ENIDeleted", f"deleted {eni_id}")
        self._on_deleted(eni_id)
        if self._current(eni_id, job):
            self._finished(eni_id, job)

    def _finished(self, eni_id: str, job: _Job) -> None:
        self._metrics.cleanups.labels("success").inc()
        self._observe(job)
        self._leave(eni_id, job)

    def _seen_free(self, eni_id: str, job: _Job) -> None:
        """The ENI is detached: release the device index this pool detached it from."""
        if job.detached_from is not None:
            instance_id, device_index = job.detached_from
            job.detached_from = None
            fields = {**_fields(eni_id, job), "instance_id": instance_id}
            log.info("ENI detached", device_index=device_index, **fields)
            node = fields["node"] or instance_id
            self._on_event(job.owner, "ENIDetached", f"detached {eni_id} from node {node}")
            self._on_detached(instance_id, device_index)

    def _dropped(self, eni_id: str, job: _Job) -> None:
        """Attached elsewhere than decided: not ours to touch; the owner decides again."""
        fields = _fields(eni_id, job)
        log.info("cleanup dropped: ENI moved", decided_instance=job.instance_id, **fields)
        self._leave(eni_id, job)

    def _leave(self, eni_id: str, job: _Job) -> None:
        """The ENI leaves the pool (its place in the queue aside: a worker skips it),
        and its owner is told: now if it was the last, else soon."""
        del self._jobs[eni_id]
        self._parked.pop(eni_id, None)
        self.queue.forget(eni_id)
        owner = job.owner
        self._owners[owner] -= 1
        if self._owners[owner] <= 0:
            del self._owners[owner]
            if (later := self._tell_later.get(owner)) is not None:
                later.cancel()
            self._tell(owner)
        elif owner not in self._tell_later:
            self._tell_later[owner] = asyncio.get_running_loop().call_later(
                NOTIFY_INTERVAL_SECONDS, self._tell, owner
            )

    def _tell(self, owner: str) -> None:
        self._tell_later.pop(owner, None)
        self._on_done(owner)

    def _retry(self, eni_id: str, job: _Job, error: str = "", detail: str = "") -> None:
        """Again after the backoff; the log line names the `error`, if given."""
        if error:
            log.info("cleanup will retry", error=error, detail=detail, **_fields(eni_id, job))
        self._metrics.cleanups.labels("retry").inc()
        self._observe(job)
        job.view = None  # described afresh next time
        self.queue.add_rate_limited(eni_id)

    def _observe(self, job: _Job) -> None:
        if job.started is not None:
            self._metrics.cleanup_duration.observe(self._clock() - job.started)
            job.started = None

    async def _poll_parked(self) -> None:
        """Hand parked ENIs seen free to the workers; polls back off while none is new."""
        delay = POLL_START_SECONDS
        while True:
            if not self._parked:
                self._new_parked.clear()
                await self._new_parked.wait()
                delay = POLL_START_SECONDS
            await asyncio.sleep(delay)
            fresh = self._new_parked.is_set()
            self._new_parked.clear()
            delay = POLL_START_SECONDS if fresh else min(delay * 2, POLL_MAX_SECONDS)
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
        found = await self._ec2.describe_network_interfaces(
            filters={"status": list(NOT_FREE_STATUSES)}, eni_ids=waiting
        )
        by_id = {e.eni_id: e for e in found}
        now = self._clock()
        for eni_id in waiting:
            deadline = self._parked.get(eni_id)
            job = self._jobs.get(eni_id)
            if deadline is None or job is None:
                continue  # left the pool while the describe ran (cancelled, term over)
            eni = by_id.get(eni_id)
            if eni is not None:
                job.log_fields = tags.log_fields(eni)
            if eni is None or eni.attachment is None or eni.attachment.status == "detached":
                del self._parked[eni_id]
                self._seen_free(eni_id, job)
                job.free = True
                self.queue.add(eni_id, first=True)  # its delete before another ENI's detach
            elif eni.attachment.instance_id != job.instance_id:
                self._dropped(eni_id, job)  # re-attached elsewhere while we waited
            elif now >= deadline:
                del self._parked[eni_id]
                job.force = True
                detail = f"{eni_id} still {eni.attachment.status}"
                self._retry(eni_id, job, "DetachTimeout", detail)

"""The running controller: informers feed two work queues, workers drain them.

NodeENIs are reconciled from one queue (reconcile/routing.py), all of them again
every RECONCILE_PERIOD after one describe of all our ENIs. ENINode specs sync
from a queue of their own, keyed by node, so a sync neither waits behind nor
holds up a reconcile; the spec workers wait for the ENINode informer, so they
create only against a complete store. A cluster without the ENINode CRD keeps
working on NodeENIs.

Nothing may pin a key: every Kubernetes request is bounded by
KUBE_REQUEST_TIMEOUT (the API client is wrapped once, here), every reconcile by
RECONCILE_TIMEOUT, and running out retries the key after its backoff. Liveness
fails, naming worker and key, if a worker is on one key well past
RECONCILE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterable

import structlog
from kubernetes_asyncio import client

from eni_controller import model
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.errors import EC2Error
from eni_controller.aws.identity import ClusterIdentity
from eni_controller.config import Config
from eni_controller.health import LoopHeartbeat, WorkerActivity
from eni_controller.kube import informer
from eni_controller.kube.eninode_writes import ENINodeWriter
from eni_controller.kube.events import EventRecorder
from eni_controller.kube.leader import LeaderElector
from eni_controller.kube.resources import ResourceAPI
from eni_controller.kube.timeouts import KubeRequestTimeout, with_request_timeout
from eni_controller.kube.workqueue import WorkQueue
from eni_controller.kube.writes import Conflict, NodeENIWriter, retry_after_seconds
from eni_controller.metrics import Metrics
from eni_controller.reconcile.cleanup import CleanupPool
from eni_controller.reconcile.ec2view import EC2View
from eni_controller.reconcile.eninode_sync import ENINodeSpecs
from eni_controller.reconcile.executor import Executor
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.reconciler import EC2Side, KubeSide, Reconciler
from eni_controller.reconcile.retries import SlotBackoff
from eni_controller.reconcile.routing import ENINodeEvents, NodeENIEvents, NodeEvents
from eni_controller.reconcile.status_fit import DEFAULT_LIMITS as DEFAULT_STATUS_LIMITS
from eni_controller.reconcile.status_fit import StatusLimits
from eni_controller.reconcile.sweep import (
    SWEEP_OWNER,
    OrphanSweep,
    claimed_eni_ids,
    node_instance_ids,
)
from eni_controller.reconcile.tokens import ClientTokens

log = structlog.get_logger(__name__)

# on shutdown, in-flight reconciles get this long, then are cancelled (safe: the
# adoption that covers a crash covers it), well inside the 30 s grace period
DRAIN_SECONDS = 5.0
LOOP_STALL_SECONDS = 10.0
WORKER_STUCK_GRACE_SECONDS = 60.0  # past RECONCILE_TIMEOUT: liveness fails
ENINODE_SYNC_WORKERS = 2  # each sync is one write or none


class Controller:
    def __init__(
        self,
        *,
        config: Config,
        api: client.ApiClient,
        ec2: EC2Client,
        metrics: Metrics,
        identity: str | None = None,
        status_limits: StatusLimits = DEFAULT_STATUS_LIMITS,  # tests and benches lower them
    ) -> None:
        api = with_request_timeout(api, seconds=config.kube_request_timeout_seconds)
        self.config = config
        self.metrics = metrics
        self.heartbeat = LoopHeartbeat()
        self.workers = WorkerActivity()
        self.elector = (
            LeaderElector(
                api,
                namespace=config.pod_namespace,
                identity=identity or f"{socket.gethostname()}-{os.getpid()}",
                lease_duration=config.leader_lease_duration_seconds,
                renew_deadline=config.leader_renew_deadline_seconds,
                retry_period=config.leader_retry_period_seconds,
            )
            if config.enable_leader_election
            else None
        )
        self._informer_tasks: list[asyncio.Task[None]] = []
        self.queue: WorkQueue[str] = WorkQueue(name="nodeeni", metrics=metrics)
        self.eninode_queue: WorkQueue[str] = WorkQueue(name="eninode", metrics=metrics)
        self.writer = NodeENIWriter(client.CustomObjectsApi(api))
        self.view = EC2View(ec2, vpc_id=config.vpc_id)
        self.nodeenis = informer.Informer(
            name="nodeenis",
            api=ResourceAPI.nodeenis(api),
            handler=NodeENIEvents(
                self.queue, view=self.view, writes=self.writer, eninodes=self.eninode_queue
            ),
            indexers={informer.ATTACHED_NODES_INDEX: informer.nodeeni_attached_nodes_index},
            transform=informer.without_managed_fields,
        )
        self.nodes = informer.Informer(
            name="nodes",
            api=ResourceAPI.nodes(api),
            handler=NodeEvents(self.queue, self.nodeenis, view=self.view),
            indexers={informer.LABELS_INDEX: informer.node_labels_index},
            transform=informer.node_transform,  # what is read of a Node: NODE_*_KEPT
            complete=informer.complete_node,  # watched as metadata; the providerID read once
        )
        self.eninodes = informer.Informer(
            name="eninodes",
            api=ResourceAPI.eninodes(api),
            handler=ENINodeEvents(self.queue, eninodes=self.eninode_queue),
            transform=informer.without_managed_fields,
        )
        self.eninode_writer = ENINodeWriter(api)
        self.eninode_specs = ENINodeSpecs(
            nodeenis=self.nodeenis,
            nodes=self.nodes,
            eninodes=self.eninodes,
            writer=self.eninode_writer,
        )
        self._allocator = DeviceIndexAllocator()
        # resolved once, at the start of the first term (aws/identity.py)
        self.identity = ClusterIdentity(name=config.cluster_name, vpc_id=config.vpc_id)
        self._executor = Executor(
            ec2,
            self._allocator,
            metrics=metrics,
            cluster=self.identity,
            backoff=SlotBackoff(
                base=config.error_backoff_base_seconds,
                cap=config.error_backoff_max_seconds,
            ),
            tokens=ClientTokens(),
            extra_tags=dict(config.extra_eni_tags),
        )
        self.cleanup = CleanupPool(
            ec2,
            workers=config.max_concurrent_eni_cleanup,
            detach_timeout=config.detachment_timeout_seconds,
            on_done=self._cleaned,
            metrics=metrics,
            on_detached=self._detached,
            on_deleted=self._deleted,
            on_event=self._cleanup_event,
        )
        self._ec2 = ec2
        self.sweep = OrphanSweep(
            self.view,
            self.cleanup,
            identity=self.identity,
            claimed_uids=lambda: (raw["metadata"].get("uid", "") for raw in self.nodeenis.list()),
            claimed_eni_ids=lambda: claimed_eni_ids(self.nodeenis.list()),
            node_instance_ids=lambda: node_instance_ids(self.nodes.list()),
            grace_seconds=config.orphan_grace_period_seconds,
            metrics=metrics,
        )
        self.events = EventRecorder(api)
        self.reconciler = Reconciler(
            config=config,
            kube=KubeSide(
                nodeenis=self.nodeenis,
                nodes=self.nodes,
                eninodes=self.eninodes,
                writer=self.writer,
                events=self.events,
                status_limits=status_limits,
            ),
            ec2=EC2Side(view=self.view, executor=self._executor, cleanup=self.cleanup),
            metrics=metrics,
        )

    def ready(self) -> tuple[bool, str]:
        """Readiness: the informers have synced. Safe from another thread."""
        synced = self.nodeenis.has_synced and self.nodes.has_synced
        return synced, "" if synced else "informers not synced"

    def live(self) -> tuple[bool, str]:
        """Liveness: the loop ticks, the informers run, no worker is stuck. Thread-safe."""
        if not self.heartbeat.alive(stale_after=LOOP_STALL_SECONDS):
            return False, f"event loop stalled for {self.heartbeat.lag():.1f}s"
        if any(t.done() for t in self._informer_tasks):
            return False, "an informer stopped"
        stuck = self.workers.stuck(
            longer_than=self.config.reconcile_timeout_seconds + WORKER_STUCK_GRACE_SECONDS
        )
        if stuck:
            more = f" (and {len(stuck) - 1} more)" if len(stuck) > 1 else ""
            return False, f"{stuck[0]}{more}"
        return True, ""

    async def run(self) -> None:
        """Run until cancelled: informers always (a standby keeps a warm cache),
        workers, cleanup and the sweep only while leading. On exit, in-flight
        reconciles and their Events get DRAIN_SECONDS each, then the Lease goes."""
        self._informer_tasks = [
            asyncio.create_task(i.run()) for i in (self.nodeenis, self.nodes, self.eninodes)
        ]
        heartbeat = asyncio.create_task(self.heartbeat.run())
        leading: asyncio.Task[None] | None = None
        try:
            await asyncio.gather(self.nodeenis.wait_synced(), self.nodes.wait_synced())
            log.info(
                "informers synced", nodeenis=len(self.nodeenis.list()), nodes=len(self.nodes.list())
            )
            leading = asyncio.create_task(
                self.elector.run(self._lead) if self.elector is not None else self._lead()
            )
            await asyncio.shield(leading)
        finally:
            await asyncio.gather(
                self.queue.shutdown(drain=True, timeout=DRAIN_SECONDS),
                self.eninode_queue.shutdown(drain=True, timeout=DRAIN_SECONDS),
            )
            # counts the drained reconciles raised, within the same allowance
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_SECONDS):
                    await self.events.flush()
            await _cancel([leading] if leading is not None else [])
            await _cancel([*self._informer_tasks, heartbeat])

    async def _lead(self) -> None:
        log.info("leading: reconciling")
        # before any ENI is made: their cluster tag depends on it
        await self.identity.resolve(
            self._ec2, instance_ids=node_instance_ids(self.nodes.list()), metrics=self.metrics
        )
        self.metrics.leader.set(1)
        self.resync()  # a new term starts from everything
        sweep = self.sweep.run(interval_seconds=self.config.orphan_sweep_interval_seconds)
        jobs = [self._worker(i) for i in range(self.config.max_concurrent_reconciles)]
        jobs += [self._eninode_worker() for _ in range(ENINODE_SYNC_WORKERS)]
        jobs += [self.cleanup.run(), sweep, self._resync_forever()]
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.metrics.leader.set(0)
            self.view.stop()
            try:
                await _cancel(tasks)
            finally:  # once no worker can set one again: the next leader speaks for them
                self.metrics.forget_nodeenis()

    def _cleaned(self, owner: str) -> None:
        """Some of `owner`'s ENIs left the cleanup pool: reconcile it from a new describe."""
        if owner == SWEEP_OWNER:
            return
        raw = self.nodeenis.get(owner)
        if raw is not None:
            self.view.changed(uid=raw["metadata"].get("uid"))
        self.queue.add(owner)

    def _cleanup_event(self, owner: str, reason: str, message: str) -> None:
        """A Normal Event from the cleanup pool about `owner`, if a NodeENI we have."""
        raw = self.nodeenis.get(owner) if owner != SWEEP_OWNER else None
        if raw is None:
            return
        meta = raw["metadata"]  # only what names it: its spec and status are not read
        uid, version = str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))
        involved = model.NodeENI(name=owner, uid=uid, resource_version=version, spec=None)
        self.events.record_soon(involved, type_="Normal", reason=reason, message=message)

    def _detached(self, instance_id: str, index: int) -> None:
        """An ENI the cleanup pool detached is free: release its index, refresh the instance."""
        self._allocator.release(instance_id, index)
        self.view.changed(instance=instance_id)

    def _deleted(self, eni_id: str) -> None:
        """The cleanup pool deleted an ENI: forget its ClientToken, index and view."""
        self._executor.gone(eni_id)
        self.view.deleted(eni_id)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reconcile_period_seconds)
            self.resync()

    def resync(self) -> None:
        """Every NodeENI to the queue, served by one describe of all our ENIs; every
        node with an ENINode or an ENI to the ENINode queue."""
        names = [raw["metadata"]["name"] for raw in self.nodeenis.list()]
        for name in names:
            self.queue.add(name)
        if names:
            self.view.refresh()  # serves each of them, unless changed since
        for node in self.eninode_specs.nodes():
            self.eninode_queue.add(node)

    async def _eninode_worker(self) -> None:
        await self.eninodes.wait_synced()  # creates only against a complete store
        while (node := await self.eninode_queue.get()) is not None:
            try:
                async with asyncio.timeout(self.config.reconcile_timeout_seconds):
                    await self.eninode_specs.sync(node)
            except Exception as err:
                retry_in = self.eninode_queue.add_rate_limited(node)
                log.warning(
                    "eninode spec sync failed: retried with backoff",
                    node=node,
                    error=type(err).__name__,
                    status=getattr(err, "status", None),
                    retry_in=round(retry_in, 3),
                )
            else:
                self.eninode_queue.forget(node)
            finally:
                self.eninode_queue.done(node)

    async def _worker(self, number: int) -> None:
        while (key := await self.queue.get()) is not None:
            started = time.perf_counter()
            self.workers.started(number, key)
            # every line logged while reconciling `key` names it
            context = structlog.contextvars.bind_contextvars(nodeeni=key)
            deadline = asyncio.timeout(self.config.reconcile_timeout_seconds)
            try:
                async with deadline:
                    requeue = await self.reconciler.reconcile(key)
            except Exception as err:
                self._failed(err, overran=deadline.expired(), worker=number)
                # re-read and retry after the key's backoff, or the server's Retry-After
                self.queue.add_rate_limited(key, at_least=retry_after_seconds(err))
            else:
                self.queue.forget(key)
                self.metrics.reconciles.labels("success" if requeue is None else "requeue").inc()
                if requeue is not None:
                    self.queue.add_after(key, requeue)
            finally:
                structlog.contextvars.reset_contextvars(**context)
                self.metrics.reconcile_duration.observe(time.perf_counter() - started)
                self.workers.finished(number)
                self.queue.done(key)

    def _failed(self, err: Exception, *, overran: bool, worker: int) -> None:
        # past our own deadline the label is ours, whatever the cancelled reconcile raised
        error = "ReconcileTimeout" if overran else type(err).__name__
        if overran:
            log.warning(
                "reconcile timed out: cancelled, retried with backoff",
                worker=worker,
                timeout=self.config.reconcile_timeout_seconds,
            )
        elif isinstance(err, KubeRequestTimeout | EC2Error):  # the message says what and why
            log.warning("reconcile failed", error=error, detail=str(err))
        elif not isinstance(err, Conflict):  # a Conflict is routine: re-read, retry
            log.exception("reconcile failed", worker=worker)
        self.metrics.reconciles.labels("error").inc()
        self.metrics.reconcile_errors.labels(error).inc()


async def _cancel(tasks: Iterable[asyncio.Task[None]]) -> None:
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task

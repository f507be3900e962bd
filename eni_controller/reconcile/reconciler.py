"""One reconcile of one NodeENI: gather the facts, plan, act, write status.

The I/O shell around the planner: Nodes and NodeENIs come from the informers'
stores, EC2 from the EC2 view (ec2view.py); the planner decides, the executor
acts, status_writer.py writes.

* What it acted on, and what it leaves unsettled, is marked changed in the
  view, so the next reconcile looks at EC2 again; a resync of a NodeENI at rest
  makes no describe of its own and no write.
* The finalizer is added before anything is created, and removed only after a
  describe since the last change finds none of our ENIs left (or
  MAX_CLEANUP_DURATION ran out: the orphan sweep takes over).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from eni_controller import model
from eni_controller.aws.lookup import LookupFailed
from eni_controller.aws.resources import NetworkInterface
from eni_controller.config import Config
from eni_controller.kube.events import EventRecorder
from eni_controller.kube.informer import LABELS_INDEX
from eni_controller.kube.writes import NodeENIWriter
from eni_controller.metrics import Metrics
from eni_controller.model import AttachmentState
from eni_controller.reconcile import tags
from eni_controller.reconcile.adoption import GoAdoption
from eni_controller.reconcile.cleanup import CleanupPool
from eni_controller.reconcile.ec2view import EC2View
from eni_controller.reconcile.eninode_sync import Store
from eni_controller.reconcile.executor import Executor, Job, Outcome
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.planner import (
    Attach,
    CreateAndAttach,
    Plan,
    PlanInput,
    moved_by_someone_else,
    plan,
)
from eni_controller.reconcile.status import READY, Reason, failure_conditions, plan_conditions
from eni_controller.reconcile.status_fit import DEFAULT_LIMITS, StatusLimits
from eni_controller.reconcile.status_writer import StatusWriter
from eni_controller.spec import NodeENISpec

log = structlog.get_logger(__name__)
T = TypeVar("T")

PROGRESS_REQUEUE_SECONDS = 2.0  # attaching, or a slot to retry soon
LOOKUP_REQUEUE_SECONDS = 60.0  # a subnet or group that may be created later
CLEANUP_REQUEUE_SECONDS = 5.0  # the pool also requeues as each ENI goes
# slot outcomes after which EC2 may show something new
_CALLED_EC2 = (Outcome.DONE, Outcome.RETRY, Outcome.BLOCKED)


@dataclass(frozen=True, kw_only=True, slots=True)
class KubeSide:
    """The Kubernetes half: informers' stores, NodeENI writes, Events, status size."""

    nodeenis: Store
    nodes: Store
    eninodes: Store
    writer: NodeENIWriter
    events: EventRecorder
    status_limits: StatusLimits = DEFAULT_LIMITS


@dataclass(frozen=True, kw_only=True, slots=True)
class EC2Side:
    """The EC2 half: what EC2 says, the slots' calls, the cleanup of unwanted ENIs."""

    view: EC2View
    executor: Executor
    cleanup: CleanupPool


def _or_raise(outcome: T | BaseException) -> T:
    """One result of `gather(..., return_exceptions=True)`, or what it raised."""
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _age(started: str) -> float:
    """Seconds since an RFC 3339 time; an unreadable one counts as just now."""
    try:
        since = datetime.datetime.fromisoformat(started)
    except ValueError:
        return 0.0
    return (datetime.datetime.now(datetime.UTC) - since).total_seconds()


class Reconciler:
    def __init__(self, *, config: Config, kube: KubeSide, ec2: EC2Side, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._kube = kube
        self._view = ec2.view
        self._executor = ec2.executor
        self._cleanup = ec2.cleanup
        self._adoption = GoAdoption(
            view=ec2.view, executor=ec2.executor, events=kube.events, node=self._node
        )
        self._status = StatusWriter(
            writer=kube.writer,
            eninode=kube.eninodes.get,
            limits=kube.status_limits,
            metrics=metrics,
        )

    async def reconcile(self, name: str) -> float | None:
        """Reconcile the NodeENI `name` as the informer and EC2 show it now: seconds
        until it is reconciled again (None: when something changes)."""
        await self._kube.writer.caught_up(name)
        raw = self._kube.nodeenis.get(name)
        if raw is None:
            self._metrics.forget_nodeeni(name)
            return None  # deleted; its finalizer saw to its ENIs
        nodeeni = self._parse(raw)
        if nodeeni.being_deleted:
            return await self._delete(nodeeni)
        if not nodeeni.has_finalizer:
            # finalizer first: nothing is created that deletion could not find
            nodeeni = self._parse(
                await self._kube.writer.set_finalizers(
                    name,
                    [*nodeeni.finalizers, model.FINALIZER],
                    resource_version=nodeeni.resource_version,
                )
            )
        if nodeeni.spec is None:
            return await self._invalid(nodeeni)
        spec = nodeeni.spec
        nodes = self._matching_nodes(spec)
        found_subnets, found_groups, found_enis, found_instances = await asyncio.gather(
            self._view.resolver.subnets(ids=spec.subnet_ids, names=spec.subnet_names),
            self._view.resolver.security_groups(
                ids=spec.security_group_ids, names=spec.security_group_names
            ),
            self._view.enis(nodeeni.uid),
            self._view.instances(n.instance_id for n in nodes if n.instance_id),
            return_exceptions=True,
        )
        for failed in (found_subnets, found_groups):
            if isinstance(failed, LookupFailed):
                await self._fail(nodeeni, reason=failed.reason.value, message=str(failed))
                return LOOKUP_REQUEUE_SECONDS
        subnets, groups = _or_raise(found_subnets), _or_raise(found_groups)
        enis, instances = _or_raise(found_enis), _or_raise(found_instances)
        enis = [*enis, *await self._adoption.adopt(nodeeni, enis=enis, subnets=subnets)]
        max_enis = await self._view.limits.max_enis(i.instance_type for i in instances.values())
        data = PlanInput(
            nodeeni=nodeeni.name,
            spec=spec,
            subnets=subnets,
            security_group_ids=tuple(g.group_id for g in groups),
            nodes=nodes,
            instances=instances,
            max_enis=max_enis,
            enis=enis,
            previous=nodeeni.status.attachments,
            known_nodes=self._nodes_named(enis),
            security_groups=groups,
            subnet_allow_tag=self._config.subnet_allow_tag,
            security_group_allow_tag=self._config.security_group_allow_tag,
        )
        first = plan(data)
        if first.left_instances:
            # an ENI left an instance behind our back: its kept facts are out of
            # date (the index it held shows taken), and the plan may place an ENI there
            for instance_id in first.left_instances:
                self._view.changed(instance=instance_id)
            fresh = await self._view.instances(first.left_instances)
            data = dataclasses.replace(data, instances={**data.instances, **fresh})
            first = plan(data)
        self._settle_ownership(first)
        job = Job(
            nodeeni=nodeeni.name,
            uid=nodeeni.uid,
            spec=spec,
            security_group_ids=data.security_group_ids,
            instances=data.instances,
            emit=lambda type_, reason, message: self._kube.events.record_soon(
                nodeeni, type_=type_, reason=reason, message=message
            ),
            generation=nodeeni.generation,
            max_enis=max_enis,
        )
        results = await self._executor.run(job, first.actions)  # none: nothing to do
        final = first
        acted = [r for r in results if r.outcome in _CALLED_EC2]
        if acted:
            self._view.changed(uid=nodeeni.uid)
            for r in acted:
                if r.attached_at is not None:  # as sure as a describe showing it
                    self._view.took(r.action.slot.instance_id, index=r.attached_at)
                elif isinstance(r.action, CreateAndAttach | Attach):
                    # not known to have landed, nor known not to have
                    self._view.changed(instance=r.action.slot.instance_id)
            data = dataclasses.replace(data, enis=await self._view.enis(nodeeni.uid))
            final = plan(data)
            self._settle_ownership(final)
        outcomes = [p for r in results if (p := r.problem) is not None]
        given_up = {r.action for r in results if r.outcome is Outcome.GIVEN_UP}
        if outcomes:
            # an attribute change left alone is reported, and no longer pending
            final = dataclasses.replace(
                final,
                problems=tuple(dict.fromkeys([*final.problems, *outcomes])),
                actions=tuple(a for a in final.actions if a not in given_up),
            )
        for eni in final.stale:
            self._submit(eni, nodeeni.name)
        await self._status.write(
            nodeeni,
            plan_conditions(final, generation=nodeeni.generation),
            attachments=final.attachments,
            desired=final.desired,
        )
        settling = any(a.status is not AttachmentState.ATTACHED for a in final.attachments)
        self._unsettled(nodeeni.uid, final, nodes=nodes, settling=settling)
        # failed or held steps come back when their backoff runs out; done ones are
        # checked again soon, as are attachments still settling in EC2
        waits = [r.retry_in for r in results if r.retry_in is not None]
        unfinished = {r.action for r in results if r.outcome is not Outcome.DONE}
        if settling or any(a not in unfinished for a in final.actions):
            waits.append(PROGRESS_REQUEUE_SECONDS)
        return min(waits) if waits else None

    def _unsettled(
        self, uid: str, final: Plan, *, nodes: Sequence[NodeView], settling: bool
    ) -> None:
        """Mark changed what EC2 may move on without telling us (a detach finishing
        frees an index no event reports), so the next reconcile looks again."""
        troubled = {a.slot.node for a in final.actions} | {p.node for p in final.problems}
        if settling or troubled or final.stale:
            self._view.changed(uid=uid)
        for node in nodes:
            if node.name in troubled and node.instance_id:
                self._view.changed(instance=node.instance_id)
        for entry in final.attachments:
            if entry.status is not AttachmentState.ATTACHED and entry.instance_id:
                self._view.changed(instance=entry.instance_id)

    def _settle_ownership(self, planned: Plan) -> None:
        """An ENI gone from EC2 gives up its ClientToken and device index to its
        replacement; one the plan keeps or attaches again has its cleanup called off."""
        for entry in planned.vanished:
            self._executor.gone(entry.eni_id)
        wanted = [a.eni_id for a in planned.attachments]
        wanted += [a.eni_id for a in planned.actions if isinstance(a, Attach)]
        for eni_id in wanted:
            self._cleanup.cancel(eni_id)  # the pool logs it

    async def _delete(self, nodeeni: model.NodeENI) -> float | None:
        """Finalizer kept until every ENI of ours is gone, or MAX_CLEANUP_DURATION passed."""
        if not nodeeni.has_finalizer:
            return None
        started = nodeeni.annotations.get(model.CLEANUP_START_ANNOTATION)
        limit = self._config.max_cleanup_duration_seconds
        timed_out = started is not None and _age(started) > limit
        if started is not None and not timed_out and self._cleanup.pending_for(nodeeni.name):
            # the pool is still at it and knows which ENIs went: progress needs no
            # describe; the finalizer waits for a describe that finds none left
            await self._status.detaching(nodeeni, left=self._cleanup.pending)
            return CLEANUP_REQUEUE_SECONDS
        enis = await self._to_clean(nodeeni.uid)
        if not enis and started is None:
            # routing left the view's answer standing (a deletion changes nothing in
            # EC2); absence is concluded only from a describe made since the deletion
            self._view.changed(uid=nodeeni.uid)
            enis = await self._to_clean(nodeeni.uid)
        if enis and started is None:
            # the clock of MAX_CLEANUP_DURATION starts, then the cleanup in this same pass
            nodeeni = self._parse(
                await self._kube.writer.annotate(
                    nodeeni.name,
                    model.CLEANUP_START_ANNOTATION,
                    model.utc_now(),
                    resource_version=nodeeni.resource_version,
                )
            )
        if enis and not timed_out:
            for eni in enis:
                self._submit(eni, nodeeni.name)
            self._view.changed(uid=nodeeni.uid)  # the pool is at them
            await self._status.detaching(nodeeni, left={e.eni_id for e in enis}.__contains__)
            return CLEANUP_REQUEUE_SECONDS
        if enis:
            await self._kube.events.record(
                nodeeni,
                type_="Warning",
                reason="CleanupTimeout",
                message=(
                    f"{len(enis)} ENIs not deleted within MAX_CLEANUP_DURATION; they keep their "
                    "tags and the orphan sweep deletes them: " + ", ".join(e.eni_id for e in enis)
                ),
            )
        await self._kube.writer.set_finalizers(
            nodeeni.name,
            [f for f in nodeeni.finalizers if f != model.FINALIZER],
            resource_version=nodeeni.resource_version,
        )
        self._metrics.forget_nodeeni(nodeeni.name)
        self._executor.forget(nodeeni.uid)
        self._view.forget(uid=nodeeni.uid)
        return None

    async def _to_clean(self, uid: str) -> list[NetworkInterface]:
        return [e for e in await self._view.enis(uid) if not moved_by_someone_else(e)]

    def _parse(self, raw: dict[str, Any]) -> model.NodeENI:
        return model.NodeENI.from_dict(
            raw,
            default_device_index=self._config.default_device_index,
            default_delete_on_termination=self._config.default_delete_on_termination,
        )

    def _submit(self, eni: NetworkInterface, nodeeni: str) -> None:
        if self._cleanup.submit(eni, nodeeni=nodeeni):
            log.info("ENI handed to cleanup", **{"nodeeni": nodeeni, **tags.log_fields(eni)})

    def _node(self, name: str) -> NodeView | None:
        raw = self._kube.nodes.get(name) if name else None
        return NodeView.from_api(raw) if raw is not None else None

    def _nodes_named(self, enis: Sequence[NetworkInterface]) -> dict[str, NodeView]:
        names = {e.tags.get(tags.NODE_KEY, "") for e in enis}
        return {name: node for name in names if (node := self._node(name)) is not None}

    def _matching_nodes(self, spec: NodeENISpec) -> list[NodeView]:
        if spec.node_selector:
            key, value = next(iter(sorted(spec.node_selector.items())))
            candidates = self._kube.nodes.by_index(LABELS_INDEX, f"{key}={value}")
        else:
            candidates = self._kube.nodes.list()
        views = (NodeView.from_api(raw) for raw in candidates)
        return [n for n in views if n.on_ec2 and spec.matches(n.labels)]

    async def _invalid(self, nodeeni: model.NodeENI) -> float | None:
        message = "; ".join(nodeeni.problems)
        ready = nodeeni.status.condition(READY)
        if ready is None or ready.reason != Reason.INVALID_SPEC or ready.message != message:
            await self._kube.events.record(
                nodeeni, type_="Warning", reason=Reason.INVALID_SPEC, message=message
            )
        await self._fail(nodeeni, reason=Reason.INVALID_SPEC, message=message)
        return None

    async def _fail(self, nodeeni: model.NodeENI, *, reason: str, message: str) -> None:
        """Status says the NodeENI cannot be served at all, and why."""
        conditions = failure_conditions(
            reason=reason, message=message, generation=nodeeni.generation
        )
        await self._status.write(nodeeni, conditions)

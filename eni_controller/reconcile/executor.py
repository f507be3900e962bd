"""Carry out a plan's actions against EC2, one task per slot.

The planner decided what to do; this module makes the calls and returns each
slot's outcome for the reconciler. Invariants: a failed slot never stops the
others; each slot's task binds its own log context. A slot's step is never tried
before its backoff ran out, nor an attribute change that did not stick sent past
its bound (retries.py). A create never sends a ClientToken whose ENI is known gone
(tokens.py). Device indexes are chosen while the instance is held (indexes.py);
with none free below the type's limit the slot is blocked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum

import structlog

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.identity import ClusterIdentity
from eni_controller.aws.resources import Instance, NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.reconcile import indexes, retries, tags
from eni_controller.reconcile.planner import (
    Action,
    Attach,
    CreateAndAttach,
    NodeProblem,
    ProblemReason,
    SetDeleteOnTermination,
    SetSecurityGroups,
    Slot,
)
from eni_controller.reconcile.tokens import ClientTokens
from eni_controller.spec import NodeENISpec

log = structlog.get_logger(__name__)

MAX_TOKENS_PER_CREATE = 3  # ClientTokens one create may go through (replays, mismatches)


class Outcome(StrEnum):
    DONE = "done"
    RETRY = "retry"  # failed: tried again after the slot's backoff
    BLOCKED = "blocked"  # a limit or the AZ rule: tried again only after the backoff
    HELD = "held"  # not tried: the slot's backoff has not run out
    GIVEN_UP = "given-up"  # an attribute change that does not stick: left alone


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SlotResult:
    action: Action  # what was (or was not) done
    outcome: Outcome
    reason: str = ""  # a condition reason when not DONE
    message: str = ""
    retry_in: float | None = None  # seconds until the slot's step may be tried again
    attached_at: int | None = None  # DONE by an attach of ours: the device index it took

    @property
    def problem(self) -> NodeProblem | None:
        """What the NodeENI's conditions say about this slot (None: nothing)."""
        if self.outcome is Outcome.DONE:
            return None
        return NodeProblem(
            node=self.action.slot.node,
            reason=self.reason,
            message=self.message,
            blocks_ready=self.outcome is not Outcome.GIVEN_UP,
        )


# record an event (type, reason, message) about the Job's NodeENI; returns at once and
# never raises (EventRecorder.record_soon): a failed event never fails a slot
Emit = Callable[[str, str, str], None]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    """What every action of one reconcile shares."""

    nodeeni: str
    uid: str
    spec: NodeENISpec
    security_group_ids: Sequence[str]
    instances: Mapping[str, Instance]
    emit: Emit
    generation: int = 0  # the NodeENI's: a new one (spec edited) forgets the slots' backoff
    # instance type -> MaximumNetworkInterfaces, the bound of device indexes (if known)
    max_enis: Mapping[str, int] = dataclasses.field(default_factory=dict)


class Executor:
    def __init__(
        self,
        ec2: EC2Client,
        allocator: indexes.DeviceIndexAllocator,
        *,
        metrics: Metrics,
        cluster: ClusterIdentity | None = None,
        backoff: retries.SlotBackoff | None = None,
        tokens: ClientTokens | None = None,
        concurrency: int = 16,
        extra_tags: Mapping[str, str] | None = None,
    ) -> None:
        self._ec2 = ec2
        self._allocator = allocator
        self._metrics = metrics
        # its name tags every ENI made or adopted (CLUSTER_NAME, or discovered)
        self._cluster = cluster or ClusterIdentity(name=None, vpc_id=None)
        self._backoff = backoff or retries.SlotBackoff()
        self._tokens = tokens or ClientTokens()
        self._effects: dict[retries.EffectKey, int] = {}  # attribute changes sent, and how often
        self._concurrency = concurrency
        self._extra_tags = dict(extra_tags or {})  # EXTRA_ENI_TAGS, on every create

    def gone(self, eni_id: str) -> None:
        """`eni_id` no longer exists: its ClientToken is spent and its device index free."""
        self._tokens.gone(eni_id)
        self._allocator.forget(eni_id)

    async def adopt(
        self, eni: NetworkInterface, *, nodeeni: str, uid: str, node: str, instance_id: str
    ) -> NetworkInterface | None:
        """Add the tags an ENI made by the Go controller lacks, making it one of ours:
        the ENI as tagged now, or None if EC2 refused (the next reconcile tries again)."""
        wanted = tags.eni_tags(
            nodeeni=nodeeni,
            uid=uid,
            node=node,
            instance_id=instance_id,
            subnet_id=eni.subnet_id,
            cluster_name=self._cluster.name,
        )
        missing = {key: value for key, value in wanted.items() if key not in eni.tags}
        try:
            with self._metrics.eni_operation("adopt_go_controller_eni"):
                await self._ec2.tag_network_interface(eni_id=eni.eni_id, tags=missing)
        except errors.EC2Error as err:
            log.warning(
                "ENI of the Go controller not adopted yet",
                eni_id=eni.eni_id,
                code=err.code,
                error=type(err).__name__,
            )
            return None
        log.info("ENI of the Go controller adopted", added=sorted(missing), **tags.log_fields(eni))
        return dataclasses.replace(eni, tags={**eni.tags, **missing})

    def forget(self, uid: str) -> None:
        """The NodeENI `uid` is gone: its slots' backoff and attribute counts with it."""
        self._backoff.forget(uid)
        self._effects = {k: n for k, n in self._effects.items() if k.uid != uid}

    async def run(self, job: Job, actions: Sequence[Action]) -> list[SlotResult]:
        """Each action's result, in the `staggered` order the slots were started in.
        An unexpected error (a bug) cancels the other slots and is raised."""
        gate = asyncio.Semaphore(self._concurrency)
        try:
            async with asyncio.TaskGroup() as slots:
                tasks = [
                    slots.create_task(self._slot(job, action, gate))
                    for action in staggered(actions, job.nodeeni)
                ]
        except ExceptionGroup as group:
            if len(group.exceptions) == 1:  # raised as by a plain await
                raise group.exceptions[0] from None
            raise
        return [task.result() for task in tasks]

    async def _slot(self, job: Job, action: Action, gate: asyncio.Semaphore) -> SlotResult:
        async with gate:
            # the slot's task's own context: its log lines, and no one else's, carry these
            structlog.contextvars.bind_contextvars(
                nodeeni=job.nodeeni,
                node=action.slot.node,
                instance_id=action.slot.instance_id,
                **({} if isinstance(action, CreateAndAttach) else {"eni_id": action.eni_id}),
            )
            return await self._guarded(job, action)

    async def _guarded(self, job: Job, action: Action) -> SlotResult:
        slot, effect = action.slot, _effect_key(job.uid, action)
        key = retries.SlotKey(
            uid=job.uid,
            node=slot.node,
            instance_id=slot.instance_id,
            subnet_id=slot.subnet.subnet_id,
        )
        step = retries.StepKey(slot=key, kind=_OPERATIONS[type(action)], generation=job.generation)
        if effect is not None and self._effects.get(effect, 0) >= retries.MAX_EFFECT_ATTEMPTS:
            message = (
                f"node {slot.node}: {effect.target} {effect.attribute} is not {effect.wanted} "
                f"after {retries.MAX_EFFECT_ATTEMPTS} successful "
                "ModifyNetworkInterfaceAttribute calls; left alone until the attachment or the "
                "spec changes"
            )
            reason = ProblemReason.ATTRIBUTE_NOT_APPLIED
            return SlotResult(
                action=action, outcome=Outcome.GIVEN_UP, reason=reason, message=message
            )
        standing = self._backoff.standing(step)
        if standing is not None and self._backoff.remaining(standing) > 0:
            return self._backed_off(action, Outcome.HELD, standing)
        attached_at: int | None = None
        try:
            with self._metrics.eni_operation(_OPERATIONS[type(action)]):
                match action:
                    case CreateAndAttach():
                        attached_at = await self._create_and_attach(job, slot, key)
                    case Attach(eni_id=eni_id):
                        attached_at = await self._attach(job, slot, eni_id, adopted=True)
                    case SetDeleteOnTermination(eni_id=eni_id, attachment_id=attachment_id):
                        await self._ec2.set_delete_on_termination(
                            eni_id=eni_id,
                            attachment_id=attachment_id,
                            delete_on_termination=action.value,
                        )
                    case SetSecurityGroups(eni_id=eni_id, group_ids=group_ids):
                        await self._ec2.set_security_groups(
                            eni_id=eni_id, security_group_ids=group_ids
                        )
        except errors.EC2Error as err:
            blocked = isinstance(err, errors.LimitExceeded | errors.AZMismatch)
            if not blocked:
                log.info(
                    "slot not done yet", action=err.action, code=err.code, error=type(err).__name__
                )
            message = f"node {slot.node}, subnet {slot.subnet.subnet_id}: {errors.short_text(err)}"
            failure = self._backoff.failed(step, reason=errors.reason_for(err), message=message)
            return self._backed_off(action, Outcome.BLOCKED if blocked else Outcome.RETRY, failure)
        if effect is not None:
            self._sent(effect)
        self._backoff.succeeded(step)
        return SlotResult(action=action, outcome=Outcome.DONE, attached_at=attached_at)

    def _sent(self, effect: retries.EffectKey) -> None:
        """The change was sent and EC2 answered success."""
        retries.keep_newest(self._effects, effect, self._effects.get(effect, 0) + 1)

    def _backed_off(self, action: Action, outcome: Outcome, failure: retries.Failure) -> SlotResult:
        return SlotResult(
            action=action,
            outcome=outcome,
            reason=failure.reason,
            message=failure.message,
            retry_in=self._backoff.remaining(failure),
        )

    async def _create_and_attach(self, job: Job, slot: Slot, key: retries.SlotKey) -> int | None:
        """The device index the new ENI took (None: attached already by a crashed run)."""
        subnet_id = slot.subnet.subnet_id
        for _ in range(MAX_TOKENS_PER_CREATE):
            token = self._tokens.token(key)
            try:
                eni = await self._ec2.create_network_interface(
                    subnet_id=subnet_id,
                    security_group_ids=job.security_group_ids,
                    description=job.spec.eni_description(slot.node),
                    tags=tags.eni_tags(
                        nodeeni=job.nodeeni,
                        uid=job.uid,
                        node=slot.node,
                        instance_id=slot.instance_id,
                        subnet_id=subnet_id,
                        cluster_name=self._cluster.name,
                        extra=self._extra_tags,
                    ),
                    client_token=token,
                )
            except errors.IdempotencyMismatch:
                self._tokens.mismatched(key, token=token)  # spent: the next token at once
                continue
            except errors.EC2Error as err:
                if not isinstance(err, errors.Throttled | errors.CircuitOpen):
                    message = f"node {slot.node}: {errors.short_text(err)}"
                    job.emit("Warning", "ENICreationFailed", message)
                raise
            if not self._tokens.created(key, token=token, eni_id=eni.eni_id):
                log.info("ClientToken answered with a deleted ENI; next token", eni_id=eni.eni_id)
                continue
            structlog.contextvars.bind_contextvars(eni_id=eni.eni_id)
            if eni.attachment is not None and eni.attachment.instance_id == slot.instance_id:
                return None  # the ClientToken returned an ENI a crashed earlier run attached
            log.info("ENI created", subnet_id=subnet_id, **_fields(job, slot, eni.eni_id))
            job.emit("Normal", "ENICreated", f"created {eni.eni_id} for node {slot.node}")
            try:
                return await self._attach(job, slot, eni.eni_id, adopted=False)
            except errors.ENINotFound:
                # brand new (eventual consistency: the same token later), or deleted by
                # hand since: then the facts may still show it, and the next ENI reads anew
                if self._tokens.is_gone(eni.eni_id):
                    fresh = await self._ec2.describe_instances([slot.instance_id])
                    job = dataclasses.replace(job, instances={**job.instances, **fresh})
                    continue
                raise
        raise errors.EC2Error(
            action="CreateNetworkInterface",
            code="ClientTokenSpent",
            message=f"{MAX_TOKENS_PER_CREATE} ClientTokens in a row answered unusably",
        )

    async def _attach(self, job: Job, slot: Slot, eni_id: str, *, adopted: bool) -> int:
        instance = job.instances[slot.instance_id]
        try:
            attachment_id, index = await indexes.attach_at_free_index(
                self._ec2,
                self._allocator,
                eni_id=eni_id,
                instance=instance,
                wanted=slot.device_index,
                floor=job.spec.device_index,
                limit=job.max_enis.get(instance.instance_type),
            )
            self._tokens.found(eni_id)
            # logged before the attribute change below, which may fail on its own
            log.info(
                "ENI attached", device_index=index, adopted=adopted, **_fields(job, slot, eni_id)
            )
            if job.spec.delete_on_termination:  # attach's own default is False: no call then
                await self._ec2.set_delete_on_termination(
                    eni_id=eni_id, attachment_id=attachment_id, delete_on_termination=True
                )
                # the first of the bounded sends of this change
                self._sent(_delete_on_termination(job.uid, attachment_id, True))
        except errors.ENINotFound:
            if self._tokens.not_found(eni_id):  # known gone: it holds no device index either
                self._allocator.forget(eni_id)
            raise
        except (errors.LimitExceeded, errors.AZMismatch, errors.Permanent) as err:
            # refused for good by the attach itself (not by the describe after a conflict)
            if err.action == indexes.ATTACH_ACTION:
                message = f"{eni_id} on node {slot.node}: {errors.short_text(err)}"
                job.emit("Warning", "ENIAttachmentFailed", message)
            raise
        verb = "adopted and attached" if adopted else "attached"
        message = f"{verb} {eni_id} to node {slot.node} at device index {index}"
        job.emit("Normal", "ENIAdopted" if adopted else "ENIAttached", message)
        return index


def _fields(job: Job, slot: Slot, eni_id: str) -> dict[str, str]:
    """An ENI lifecycle line's fields: named whatever the log configuration binds."""
    return dict(nodeeni=job.nodeeni, node=slot.node, instance_id=slot.instance_id, eni_id=eni_id)


def _delete_on_termination(uid: str, attachment_id: str, value: bool) -> retries.EffectKey:
    return retries.EffectKey(
        uid=uid, target=attachment_id, attribute="DeleteOnTermination", wanted=value
    )


def _effect_key(uid: str, action: Action) -> retries.EffectKey | None:
    """The attribute change `action` makes, whose sends are counted (None: no such change)."""
    match action:
        case SetDeleteOnTermination(attachment_id=attachment_id, value=value):
            return _delete_on_termination(uid, attachment_id, value)
        case SetSecurityGroups(eni_id=eni_id, group_ids=group_ids):
            wanted = ",".join(sorted(group_ids))
            return retries.EffectKey(
                uid=uid, target=eni_id, attribute="SecurityGroups", wanted=wanted
            )
    return None


_OPERATIONS: dict[type[Action], str] = {
    CreateAndAttach: "create_and_attach",
    Attach: "adopt_and_attach",
    SetDeleteOnTermination: "set_delete_on_termination",
    SetSecurityGroups: "set_security_groups",
}


def staggered(actions: Sequence[Action], key: str) -> list[Action]:
    """`actions` rotated by a stable offset per `key` (the NodeENI): NodeENIs reconciled
    at once would otherwise all start on the same nodes and queue on their locks."""
    if len(actions) < 2:
        return list(actions)
    offset = zlib.crc32(key.encode()) % len(actions)
    return [*actions[offset:], *actions[:offset]]

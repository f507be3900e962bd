"""Carry out a plan's actions against EC2, slot by slot.

Thin on purpose: the planner decided what to do; this module makes the calls,
allocates device indexes under the per-instance lock, and reports what
happened. A failure in one slot never stops the others; it is returned as an
outcome the reconciler turns into a condition, an event or a requeue.

Invariants: a slot's step is never tried before its backoff ran out, and an
attribute change that did not stick is never sent past its bound
(retries.py), whoever asks and however often; a create never sends a
ClientToken whose ENI is known gone (tokens.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import zlib
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast

import structlog

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import Instance, NetworkInterface
from eni_controller.kube.writes import EVENT_MESSAGE_LIMIT
from eni_controller.metrics import Metrics
from eni_controller.model import Attachment, NodeENISpec
from eni_controller.reconcile import tags
from eni_controller.reconcile.indexes import DeviceIndexAllocator
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
from eni_controller.reconcile.retries import EffectAttempts, EffectKey, SlotBackoff, StepKey
from eni_controller.reconcile.tokens import ClientTokens, SlotKey

log = structlog.get_logger(__name__)

MAX_INDEX_CONFLICTS = 3
MAX_TOKENS_PER_CREATE = 3  # ClientTokens one create may go through (replays, mismatches)
EVENT_LINGER_SECONDS = 0.5  # events of a rollout gathered into one Event per reason
# Attach's own default for DeleteOnTermination; only a spec asking otherwise costs a call.
ATTACH_DEFAULT_DELETE_ON_TERMINATION = False


class Outcome(StrEnum):
    DONE = "done"
    RETRY = "retry"  # failed: tried again after the slot's backoff
    BLOCKED = "blocked"  # a limit or the AZ rule: tried again only after the backoff
    HELD = "held"  # not tried: the slot's backoff has not run out
    GIVEN_UP = "given-up"  # an attribute change that does not stick: left alone


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotResult:
    slot: Slot
    outcome: Outcome
    reason: str = ""  # a condition reason when not DONE
    message: str = ""
    retry_in: float | None = None  # seconds until the slot's step may be tried again
    action: Action | None = None  # what was (or was not) done

    @property
    def problem(self) -> NodeProblem | None:
        """What the NodeENI's conditions say about this slot (None: nothing)."""
        if self.outcome is Outcome.DONE:
            return None
        return NodeProblem(
            node=self.slot.node,
            reason=self.reason,
            message=self.message,
            blocks_ready=self.outcome is not Outcome.GIVEN_UP,
        )


class Emit(Protocol):
    """Record an event: `count` occurrences, their messages joined in `message`."""

    def __call__(
        self, type_: str, reason: str, message: str, count: int = 1, /
    ) -> Awaitable[None]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    """What every action of one reconcile shares."""

    nodeeni: str
    uid: str
    spec: NodeENISpec
    security_group_ids: Sequence[str]
    instances: Mapping[str, Instance]
    cluster_name: str | None
    emit: Emit
    generation: int = 0  # the NodeENI's: a new one (spec edited) forgets the slots' backoff
    # instance type -> MaximumNetworkInterfaces: device indexes stay below it
    # (a type not listed: no known limit, AWS still refuses a full instance)
    max_enis: Mapping[str, int] = dataclasses.field(default_factory=dict)


class Executor:
    def __init__(
        self,
        ec2: EC2Client,
        allocator: DeviceIndexAllocator,
        *,
        metrics: Metrics,
        backoff: SlotBackoff | None = None,
        tokens: ClientTokens | None = None,
        effects: EffectAttempts | None = None,
        concurrency: int = 16,
    ) -> None:
        self._ec2 = ec2
        self._allocator = allocator
        self._metrics = metrics
        self._backoff = backoff or SlotBackoff()
        self.tokens = tokens or ClientTokens()
        self._effects = effects or EffectAttempts()
        self._concurrency = concurrency

    def vanished(self, entry: Attachment) -> None:
        """A status entry's ENI is gone from EC2: its ClientToken is spent and its
        device index is free for the slot's next ENI."""
        self.tokens.gone(entry.eni_id)
        if entry.instance_id is not None and entry.device_index is not None:
            self._allocator.release(entry.instance_id, entry.device_index, eni_id=entry.eni_id)

    async def complete_tags(self, eni: NetworkInterface, missing: Mapping[str, str]) -> bool:
        """Add the tags an ENI made by the Go controller lacks, which makes it one of
        ours (planned, kept, cleaned up like any other); False if EC2 refused (logged:
        the next reconcile tries again)."""
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
            return False
        log.info("ENI of the Go controller adopted", added=sorted(missing), **tags.log_fields(eni))
        return True

    def forget(self, uid: str) -> None:
        """The NodeENI `uid` is gone: its slots' backoff and attribute counts with it."""
        self._backoff.forget(uid)
        self._effects.forget(uid)

    async def run(self, job: Job, actions: Sequence[Action]) -> list[SlotResult]:
        # Events are sent beside the slots, not between their EC2 calls: each is an
        # API server round trip that held up the next call of its slot. All of them
        # are sent before run() returns, as before.
        events = _EventsBeside(job.emit)
        beside = dataclasses.replace(job, emit=events.emit)
        ordered = staggered(actions, job.nodeeni)
        results: list[SlotResult | None] = [None] * len(ordered)
        pending = iter(enumerate(ordered))

        # `concurrency` workers taking the slots in order, not a task per slot behind
        # a semaphore: thousands of waiting tasks cost more CPU (and garbage
        # collection) than the slots' own work in bench/pipeline.py.
        async def worker() -> None:
            # the worker's own context: every slot it runs logs with the NodeENI
            structlog.contextvars.bind_contextvars(nodeeni=job.nodeeni)
            for i, action in pending:
                results[i] = await self._guarded(beside, action)

        try:
            await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(ordered)))))
        finally:
            await events.close()
        return cast(list[SlotResult], results)  # every slot has its result by now

    async def _guarded(self, job: Job, action: Action) -> SlotResult:
        slot = action.slot
        step = _step_key(job, action)
        effect = _effect_key(job, action)
        if effect is not None and self._effects.exhausted(effect):
            return SlotResult(
                slot=slot,
                outcome=Outcome.GIVEN_UP,
                action=action,
                reason=ProblemReason.ATTRIBUTE_NOT_APPLIED,
                message=(
                    f"node {slot.node}: {effect.target} {effect.attribute} is not "
                    f"{effect.wanted} after {self._effects.attempts(effect)} successful "
                    "ModifyNetworkInterfaceAttribute calls; left alone until the "
                    "attachment or the spec changes"
                ),
            )
        standing = self._backoff.standing(step, generation=job.generation)
        if standing is not None and not self._backoff.due(step, generation=job.generation):
            return SlotResult(
                slot=slot,
                outcome=Outcome.HELD,
                action=action,
                reason=standing.reason,
                message=standing.message,
                retry_in=self._backoff.remaining(standing),
            )
        # a worker runs one slot after another: these bindings are undone after the slot
        bound = _Bound(
            node=slot.node,
            instance_id=slot.instance_id,
            **({"eni_id": action.eni_id} if isinstance(action, _WITH_ENI) else {}),
        )
        try:
            with self._metrics.eni_operation(_OPERATIONS[type(action)]):
                match action:
                    case CreateAndAttach():
                        await self._create_and_attach(job, slot, bound)
                    case Attach(eni_id=eni_id):
                        try:
                            await self._attach(job, slot, eni_id, adopted=True)
                        except errors.ENINotFound:
                            self.tokens.not_found(eni_id)
                            raise
                    case SetDeleteOnTermination(
                        eni_id=eni_id, attachment_id=attachment_id, value=value
                    ):
                        await self._ec2.set_delete_on_termination(
                            eni_id=eni_id, attachment_id=attachment_id, delete_on_termination=value
                        )
                    case SetSecurityGroups(eni_id=eni_id, group_ids=group_ids):
                        await self._ec2.set_security_groups(
                            eni_id=eni_id, security_group_ids=group_ids
                        )
            if effect is not None:
                self._effects.sent(effect)
            self._backoff.succeeded(step)
            return SlotResult(slot=slot, outcome=Outcome.DONE, action=action)
        except errors.EC2Error as err:
            blocked = isinstance(err, errors.LimitExceeded | errors.AZMismatch)
            if not blocked:
                log.info(
                    "slot not done yet", action=err.action, code=err.code, error=type(err).__name__
                )
            failure = self._backoff.failed(
                step,
                generation=job.generation,
                reason=errors.reason_for(err),
                message=f"node {slot.node}, subnet {slot.subnet.subnet_id}: {err}",
            )
            return SlotResult(
                slot=slot,
                outcome=Outcome.BLOCKED if blocked else Outcome.RETRY,
                action=action,
                reason=failure.reason,
                message=failure.message,
                retry_in=self._backoff.remaining(failure),
            )
        finally:
            bound.reset()

    async def _create_and_attach(self, job: Job, slot: Slot, bound: _Bound) -> None:
        key = SlotKey(
            uid=job.uid,
            node=slot.node,
            instance_id=slot.instance_id,
            subnet_id=slot.subnet.subnet_id,
        )
        for _ in range(MAX_TOKENS_PER_CREATE):
            token = self.tokens.token(key)
            try:
                eni = await self._ec2.create_network_interface(
                    subnet_id=slot.subnet.subnet_id,
                    security_group_ids=job.security_group_ids,
                    description=job.spec.eni_description(slot.node),
                    tags=tags.eni_tags(
                        nodeeni=job.nodeeni,
                        uid=job.uid,
                        node=slot.node,
                        instance_id=slot.instance_id,
                        subnet_id=slot.subnet.subnet_id,
                        cluster_name=job.cluster_name,
                    ),
                    client_token=token,
                )
            except errors.IdempotencyMismatch:
                self.tokens.mismatched(key, token=token)  # spent: the next token at once
                continue
            except errors.EC2Error as err:
                if not isinstance(err, errors.Throttled | errors.CircuitOpen):
                    await job.emit("Warning", "ENICreationFailed", f"node {slot.node}: {err}")
                raise
            if self.tokens.created(key, token=token, eni_id=eni.eni_id):
                break
            log.info("ClientToken answered with a deleted ENI; next token", eni_id=eni.eni_id)
        else:
            raise errors.EC2Error(
                action="CreateNetworkInterface",
                code="ClientTokenSpent",
                message=f"{MAX_TOKENS_PER_CREATE} ClientTokens in a row answered unusably",
            )
        bound.bind(eni_id=eni.eni_id)
        if _already_attached(eni, slot.instance_id):
            return  # the ClientToken returned an ENI a crashed earlier run attached
        await job.emit("Normal", "ENICreated", f"created {eni.eni_id} for node {slot.node}")
        try:
            await self._attach(job, slot, eni.eni_id, adopted=False)
        except errors.ENINotFound:
            # brand new (eventual consistency), or a token's ENI deleted before a restart
            self.tokens.not_found(eni.eni_id)
            raise
        self.tokens.found(eni.eni_id)

    async def _attach(self, job: Job, slot: Slot, eni_id: str, *, adopted: bool) -> None:
        instance = job.instances[slot.instance_id]
        limit = job.max_enis.get(instance.instance_type)
        async with self._allocator.hold(
            slot.instance_id, occupied=instance.occupied_device_indexes
        ) as indexes:
            for _ in range(MAX_INDEX_CONFLICTS):
                index = indexes.pick(
                    slot.device_index, eni_id=eni_id, floor=job.spec.device_index, limit=limit
                )
                if index is None:  # only with a known limit: blocked, never below the floor
                    full = errors.LimitExceeded(
                        action="AttachNetworkInterface",
                        code="NoFreeDeviceIndex",
                        message=(
                            f"no free device index on {slot.instance_id} from the spec's "
                            f"deviceIndex {job.spec.device_index} up to {instance.instance_type}'s"
                            f" limit of {limit} network interfaces"
                        ),
                    )
                    await job.emit(
                        "Warning", "ENIAttachmentFailed", f"{eni_id} on node {slot.node}: {full}"
                    )
                    raise full
                try:
                    attachment_id = await self._ec2.attach_network_interface(
                        eni_id=eni_id, instance_id=slot.instance_id, device_index=index
                    )
                except errors.OutcomeUnknown:
                    indexes.take(index, eni_id=eni_id)  # it may be attached there
                    raise
                except errors.EC2Error as err:
                    if isinstance(err, errors.MaybeIndexConflict):
                        # a conflict only if the instance shows the index taken now
                        found = await self._ec2.describe_instances([slot.instance_id])
                        fresh = found.get(slot.instance_id)
                        if fresh is not None and index in fresh.occupied_device_indexes:
                            indexes.occupied.update(fresh.occupied_device_indexes)
                            continue  # held outside the controller: the next index up
                    if isinstance(err, errors.LimitExceeded | errors.AZMismatch | errors.Permanent):
                        await job.emit(
                            "Warning", "ENIAttachmentFailed", f"{eni_id} on node {slot.node}: {err}"
                        )
                    raise
                indexes.take(index, eni_id=eni_id)
                break
            else:
                raise errors.IndexConflict(
                    action="AttachNetworkInterface",
                    code="IndexConflict",
                    message=(
                        f"{MAX_INDEX_CONFLICTS} device indexes in a row from "
                        f"{slot.device_index} up were taken on {slot.instance_id}"
                    ),
                )
        if job.spec.delete_on_termination != ATTACH_DEFAULT_DELETE_ON_TERMINATION:
            await self._ec2.set_delete_on_termination(
                eni_id=eni_id,
                attachment_id=attachment_id,
                delete_on_termination=job.spec.delete_on_termination,
            )
            # the first of the bounded sends of this change (see retries.EffectAttempts)
            self._effects.sent(
                _delete_on_termination(job, attachment_id, job.spec.delete_on_termination)
            )
        reason, verb = (
            ("ENIAdopted", "adopted and attached") if adopted else ("ENIAttached", "attached")
        )
        await job.emit(
            "Normal", reason, f"{verb} {eni_id} to node {slot.node} at device index {index}"
        )


def _step_key(job: Job, action: Action) -> StepKey:
    return StepKey(
        uid=job.uid,
        node=action.slot.node,
        instance_id=action.slot.instance_id,
        subnet_id=action.slot.subnet.subnet_id,
        kind=_OPERATIONS[type(action)],
    )


def _delete_on_termination(job: Job, attachment_id: str, value: bool) -> EffectKey:
    return EffectKey(
        uid=job.uid, target=attachment_id, attribute="DeleteOnTermination", wanted=value
    )


def _effect_key(job: Job, action: Action) -> EffectKey | None:
    """The attribute change `action` makes, whose sends are counted (None: no such change)."""
    match action:
        case SetDeleteOnTermination(attachment_id=attachment_id, value=value):
            return _delete_on_termination(job, attachment_id, value)
        case SetSecurityGroups(eni_id=eni_id, group_ids=group_ids):
            return EffectKey(
                uid=job.uid,
                target=eni_id,
                attribute="SecurityGroups",
                wanted=",".join(sorted(group_ids)),
            )
    return None


_WITH_ENI = (Attach, SetDeleteOnTermination, SetSecurityGroups)
_OPERATIONS: dict[type[Action], str] = {
    CreateAndAttach: "create_and_attach",
    Attach: "adopt_and_attach",
    SetDeleteOnTermination: "set_delete_on_termination",
    SetSecurityGroups: "set_security_groups",
}


class _Bound:
    """structlog context variables bound for one slot, until `reset()` puts back
    what they were before (the slot's worker runs other slots after it)."""

    __slots__ = ("_tokens",)

    def __init__(self, **values: Any) -> None:
        self._tokens = dict(structlog.contextvars.bind_contextvars(**values))

    def bind(self, **values: Any) -> None:
        for key, token in structlog.contextvars.bind_contextvars(**values).items():
            self._tokens.setdefault(key, token)  # the first token restores the value before

    def reset(self) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)


class _EventsBeside:
    """One run()'s events, sent in order by one task of their own (not one task per
    event: in the in-process pipeline, a task per event cost ~60 µs per ENI). A
    failed event is logged, never raised: events are best effort.

    The first event goes out at once; the ones after it are gathered for
    EVENT_LINGER_SECONDS (or until run() ends) and go out together: those of one
    type and reason as one Event whose count is theirs and whose message joins
    theirs (up to EVENT_MESSAGE_LIMIT), in the order each reason first appeared,
    so an ENI's ENICreated still precedes its ENIAttached. At 1,000 ENIs one
    Event per ENI step was 2,000 API writes, ~15% of the rollout
    (bench.suite --scenarios large, with and without events).
    """

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._queue: deque[tuple[str, str, str]] = deque()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._sender: asyncio.Task[None] | None = None
        # run()'s context, not the first emitting slot's: the sender's log lines
        # must not carry that slot's node and eni_id
        self._context = contextvars.copy_context()

    async def emit(self, type_: str, reason: str, message: str, count: int = 1, /) -> None:
        self._queue.extend([(type_, reason, message)] * count)
        self._wake.set()
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(), context=self._context)

    async def close(self) -> None:
        """Return once every queued event is sent (cancelled with the caller)."""
        self._closing = True
        self._closed.set()
        self._wake.set()
        if self._sender is not None:
            await self._sender

    async def _send(self) -> None:
        while True:
            while self._queue:
                for (type_, reason), messages in self._drain().items():
                    for message, count in _joined(messages):
                        try:
                            await self._emit(type_, reason, message, count)
                        except Exception as err:
                            log.warning(
                                "event not recorded", reason=reason, error=type(err).__name__
                            )
                with contextlib.suppress(TimeoutError):  # gather the next ones a while
                    async with asyncio.timeout(EVENT_LINGER_SECONDS):
                        await self._closed.wait()
            if self._closing:
                return
            self._wake.clear()
            await self._wake.wait()

    def _drain(self) -> dict[tuple[str, str], list[str]]:
        grouped: dict[tuple[str, str], list[str]] = {}
        while self._queue:
            type_, reason, message = self._queue.popleft()
            grouped.setdefault((type_, reason), []).append(message)
        return grouped


def _joined(messages: Sequence[str]) -> list[tuple[str, int]]:
    """Messages joined into as few as fit the limit: (message, how many it holds)."""
    joined: list[tuple[str, int]] = []
    current: list[str] = []
    length = 0
    for message in messages:
        if current and length + 2 + len(message) > EVENT_MESSAGE_LIMIT:
            joined.append(("; ".join(current), len(current)))
            current, length = [], 0
        length += len(message) + (2 if current else 0)
        current.append(message)
    if current:
        joined.append(("; ".join(current), len(current)))
    return joined


def staggered(actions: Sequence[Action], key: str) -> list[Action]:
    """`actions` rotated by an offset derived from `key` (the NodeENI's name).

    The planner lists slots by node name, so NodeENIs reconciled at once would
    all start on the same first nodes and queue on their per-instance locks
    (one attach per instance at a time); starting each at its own offset
    spreads them over the instances. The order of independent slots is
    otherwise irrelevant, and the rotation is stable for a given NodeENI.
    """
    if len(actions) < 2:
        return list(actions)
    offset = zlib.crc32(key.encode()) % len(actions)
    return [*actions[offset:], *actions[:offset]]


def _already_attached(eni: NetworkInterface, instance_id: str) -> bool:
    return eni.attachment is not None and eni.attachment.instance_id == instance_id

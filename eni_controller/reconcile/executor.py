"""Carry out a plan's actions against EC2, slot by slot.

Thin on purpose: the planner decided what to do; this module makes the calls,
allocates device indexes under the per-instance lock, and reports what
happened. A failure in one slot never stops the others; it is returned as an
outcome the reconciler turns into a condition, an event or a requeue.
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
from eni_controller.model import NodeENISpec
from eni_controller.reconcile import tags
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.planner import (
    Action,
    Attach,
    CreateAndAttach,
    ProblemReason,
    SetDeleteOnTermination,
    SetSecurityGroups,
    Slot,
)

log = structlog.get_logger(__name__)

MAX_INDEX_CONFLICTS = 3
EVENT_LINGER_SECONDS = 0.5  # events of a rollout gathered into one Event per reason
# Attach's own default for DeleteOnTermination; only a spec asking otherwise costs a call.
ATTACH_DEFAULT_DELETE_ON_TERMINATION = False


class Outcome(StrEnum):
    DONE = "done"
    RETRY = "retry"  # transient: try again soon
    BLOCKED = "blocked"  # permanent for this node until something changes


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotResult:
    slot: Slot
    outcome: Outcome
    problem: ProblemReason | None = None
    message: str = ""


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


class Executor:
    def __init__(
        self,
        ec2: EC2Client,
        allocator: DeviceIndexAllocator,
        *,
        metrics: Metrics,
        concurrency: int = 16,
    ) -> None:
        self._ec2 = ec2
        self._allocator = allocator
        self._metrics = metrics
        self._concurrency = concurrency

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
        # a worker runs one slot after another: these bindings are undone after the slot
        bound = _Bound(
            node=slot.node,
            instance_id=slot.instance_id,
            **({"eni_id": action.eni_id} if isinstance(action, _WITH_ENI) else {}),
        )
        try:
            with self._metrics.eni_operation(_OPERATIONS[type(action)]):
                match action:
                    case CreateAndAttach(replaces=replaces):
                        await self._create_and_attach(job, slot, bound, replaces=replaces)
                    case Attach(eni_id=eni_id):
                        await self._attach(job, slot, eni_id, adopted=True)
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
            return SlotResult(slot=slot, outcome=Outcome.DONE)
        except (errors.LimitExceeded, errors.AZMismatch) as err:
            return SlotResult(
                slot=slot,
                outcome=Outcome.BLOCKED,
                problem=_BLOCKING[type(err)],
                message=f"node {slot.node}: {err.code}",
            )
        except errors.EC2Error as err:
            log.info(
                "slot not done yet", action=err.action, code=err.code, error=type(err).__name__
            )
            return SlotResult(slot=slot, outcome=Outcome.RETRY, message=str(err))
        finally:
            bound.reset()

    async def _create_and_attach(
        self, job: Job, slot: Slot, bound: _Bound, *, replaces: str | None
    ) -> None:
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
                client_token=tags.client_token(
                    uid=job.uid,
                    node=slot.node,
                    instance_id=slot.instance_id,
                    subnet_id=slot.subnet.subnet_id,
                    replaces=replaces,
                ),
            )
        except errors.EC2Error as err:
            if not isinstance(err, errors.Throttled | errors.CircuitOpen):
                await job.emit("Warning", "ENICreationFailed", f"node {slot.node}: {err}")
            raise
        bound.bind(eni_id=eni.eni_id)
        if _already_attached(eni, slot.instance_id):
            return  # the ClientToken returned an ENI a crashed earlier run attached
        await job.emit("Normal", "ENICreated", f"created {eni.eni_id} for node {slot.node}")
        await self._attach(job, slot, eni.eni_id, adopted=False)

    async def _attach(self, job: Job, slot: Slot, eni_id: str, *, adopted: bool) -> None:
        instance = job.instances[slot.instance_id]
        async with self._allocator.hold(
            slot.instance_id, occupied=instance.occupied_device_indexes
        ) as indexes:
            for _ in range(MAX_INDEX_CONFLICTS):
                index = indexes.pick(slot.device_index)
                try:
                    attachment_id = await self._ec2.attach_network_interface(
                        eni_id=eni_id, instance_id=slot.instance_id, device_index=index
                    )
                except errors.IndexConflict:
                    indexes.taken.add(index)  # someone outside the controller holds it
                    continue
                except errors.EC2Error as err:
                    if isinstance(err, errors.LimitExceeded | errors.AZMismatch | errors.Permanent):
                        await job.emit(
                            "Warning", "ENIAttachmentFailed", f"{eni_id} on node {slot.node}: {err}"
                        )
                    raise
                indexes.taken.add(index)
                break
            else:
                raise errors.IndexConflict(
                    action="AttachNetworkInterface",
                    code="IndexConflict",
                    message=f"{MAX_INDEX_CONFLICTS} indexes taken on {slot.instance_id}",
                )
        if job.spec.delete_on_termination != ATTACH_DEFAULT_DELETE_ON_TERMINATION:
            await self._ec2.set_delete_on_termination(
                eni_id=eni_id,
                attachment_id=attachment_id,
                delete_on_termination=job.spec.delete_on_termination,
            )
        reason, verb = (
            ("ENIAdopted", "adopted and attached") if adopted else ("ENIAttached", "attached")
        )
        await job.emit(
            "Normal", reason, f"{verb} {eni_id} to node {slot.node} at device index {index}"
        )


_BLOCKING: dict[type[errors.EC2Error], ProblemReason] = {
    errors.LimitExceeded: ProblemReason.ATTACHMENT_LIMIT_EXCEEDED,
    errors.AZMismatch: ProblemReason.AZ_MISMATCH,
}
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

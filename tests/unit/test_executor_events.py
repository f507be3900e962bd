"""Unit tests: the executor sends events beside its slots' EC2 calls, not between them.

Every event is sent before `Executor.run` returns, and a failed event (events
are best effort) never fails its slot. The slots run against the harness's
zero-latency in-memory EC2 through the real EC2 client.
"""

from __future__ import annotations

import asyncio

import structlog

from eni_controller.aws.ratelimit import BucketSpec
from eni_controller.aws.resources import Subnet
from eni_controller.kube.writes import EVENT_MESSAGE_LIMIT
from eni_controller.metrics import Metrics
from eni_controller.reconcile.executor import Emit, Executor, Outcome
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.planner import CreateAndAttach, Slot
from tests.harness.jobs import memory_job
from tests.harness.memory_ec2 import AZ, MemoryEC2, unpaced_client

WIDE = BucketSpec(capacity=1e9, refill_per_second=1e9)
SUBNET = Subnet(subnet_id="subnet-1", vpc_id="vpc-1", availability_zone=AZ, cidr="", name=None)
INSTANCES = [f"i-{n:017x}" for n in range(60)]


async def _run(emit: Emit, *, nodes: int = 5) -> list[Outcome]:
    metrics = Metrics()
    ec2 = unpaced_client(MemoryEC2(INSTANCES), metrics=metrics)
    job = memory_job(nodeeni="multus", instances=INSTANCES, emit=emit)
    actions = [
        CreateAndAttach(slot=Slot(node=f"n{n}", instance_id=i, subnet=SUBNET, device_index=1))
        for n, i in enumerate(INSTANCES[:nodes])
    ]
    results = await Executor(ec2, DeviceIndexAllocator(), metrics=metrics).run(job, actions)
    return [r.outcome for r in results]


async def test_every_event_is_sent_before_run_returns() -> None:
    sent: list[str] = []

    async def slow_emit(_type: str, reason: str, _message: str, count: int = 1, /) -> None:
        await asyncio.sleep(0.01)
        sent.extend([reason] * count)

    outcomes = await _run(slow_emit)
    assert outcomes == [Outcome.DONE] * 5
    assert sorted(sent) == ["ENIAttached"] * 5 + ["ENICreated"] * 5


async def test_a_failed_event_never_fails_its_slot() -> None:
    async def failing_emit(_type: str, reason: str, _message: str, _count: int = 1, /) -> None:
        if reason == "ENICreated":
            raise RuntimeError("API server unreachable")

    assert await _run(failing_emit) == [Outcome.DONE] * 5


async def test_the_sender_logs_in_the_runs_context_not_a_slots() -> None:
    seen: list[dict[str, object]] = []

    async def recording_emit(_type: str, _reason: str, _message: str, count: int = 1, /) -> None:
        seen.extend([structlog.contextvars.get_contextvars()] * count)

    with structlog.contextvars.bound_contextvars(nodeeni="multus"):
        await _run(recording_emit)
    assert len(seen) == 10
    # a slot binds node/instance_id/eni_id for its own lines; the sender shares none
    assert all(context == {"nodeeni": "multus"} for context in seen)


async def test_events_that_queue_up_go_out_together_in_order_and_within_the_limit() -> None:
    sent: list[tuple[str, str, int]] = []

    async def slow_emit(_type: str, reason: str, message: str, count: int = 1, /) -> None:
        sent.append((reason, message, count))
        await asyncio.sleep(0.01)  # an API round trip: the next events queue meanwhile

    assert await _run(slow_emit, nodes=60) == [Outcome.DONE] * 60
    created = [m for reason, text, _ in sent if reason == "ENICreated" for m in text.split("; ")]
    attached = [m for reason, text, _ in sent if reason == "ENIAttached" for m in text.split("; ")]
    assert sum(count for reason, _, count in sent if reason == "ENICreated") == len(created) == 60
    assert sum(count for reason, _, count in sent if reason == "ENIAttached") == len(attached) == 60
    assert len({m.split()[1] for m in created}) == 60  # every ENI named once
    assert len(sent) < 60  # not one Event per ENI step
    assert all(len(text) <= EVENT_MESSAGE_LIMIT for _, text, _ in sent)
    # an ENI's ENICreated is never sent after its ENIAttached
    position = {}
    for n, (reason, text, _) in enumerate(sent):
        for m in text.split("; "):
            position[(reason, m.split()[1])] = n
    assert all(
        position[("ENICreated", eni)] <= position[("ENIAttached", eni)]
        for (reason, eni) in position
        if reason == "ENIAttached"
    )

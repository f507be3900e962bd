"""Unit tests: the executor sends events beside its slots' EC2 calls, not between them.

Every event is sent before `Executor.run` returns, and a failed event (events
are best effort) never fails its slot. The slots run against bench.pipeline's
zero-latency in-memory EC2 through the real EC2 client.
"""

from __future__ import annotations

import asyncio
from types import MappingProxyType

import structlog

from bench.pipeline import AZ, INSTANCE_TYPE, MemoryEC2
from eni_controller.aws.breaker import CircuitBreaker
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.ratelimit import BucketSpec, RateLimiter, RateLimits
from eni_controller.aws.resources import Instance, Subnet
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import CircuitBreakerConfig
from eni_controller.metrics import Metrics
from eni_controller.model import NodeENISpec
from eni_controller.reconcile.executor import Emit, Executor, Job, Outcome
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.planner import CreateAndAttach, Slot

WIDE = BucketSpec(capacity=1e9, refill_per_second=1e9)
SUBNET = Subnet(subnet_id="subnet-1", vpc_id="vpc-1", availability_zone=AZ, cidr="", name=None)
INSTANCES = [f"i-{n:017x}" for n in range(5)]


async def _run(emit: Emit) -> list[Outcome]:
    metrics = Metrics()
    ec2 = EC2Client(
        MemoryEC2(INSTANCES),
        limiter=RateLimiter(RateLimits(describe=WIDE, mutating=WIDE)),
        breaker=CircuitBreaker(CircuitBreakerConfig()),
        retry=RetryPolicy(),
        metrics=metrics,
    )
    job = Job(
        nodeeni="multus",
        uid="uid-1",
        spec=NodeENISpec(node_selector=MappingProxyType({}), subnet_ids=("subnet-1",)),
        security_group_ids=("sg-1",),
        instances={
            i: Instance(
                instance_id=i,
                availability_zone=AZ,
                state="running",
                instance_type=INSTANCE_TYPE,
                vpc_id="vpc-1",
                occupied_device_indexes=frozenset({0}),
            )
            for i in INSTANCES
        },
        cluster_name=None,
        emit=emit,
    )
    actions = [
        CreateAndAttach(slot=Slot(node=f"n{n}", instance_id=i, subnet=SUBNET, device_index=1))
        for n, i in enumerate(INSTANCES)
    ]
    results = await Executor(ec2, DeviceIndexAllocator(), metrics=metrics).run(job, actions)
    return [r.outcome for r in results]


async def test_every_event_is_sent_before_run_returns() -> None:
    sent: list[str] = []

    async def slow_emit(_type: str, reason: str, _message: str) -> None:
        await asyncio.sleep(0.01)
        sent.append(reason)

    outcomes = await _run(slow_emit)
    assert outcomes == [Outcome.DONE] * 5
    assert sorted(sent) == ["ENIAttached"] * 5 + ["ENICreated"] * 5


async def test_a_failed_event_never_fails_its_slot() -> None:
    async def failing_emit(_type: str, reason: str, _message: str) -> None:
        if reason == "ENICreated":
            raise RuntimeError("API server unreachable")

    assert await _run(failing_emit) == [Outcome.DONE] * 5


async def test_the_sender_logs_in_the_runs_context_not_a_slots() -> None:
    seen: list[dict[str, object]] = []

    async def recording_emit(_type: str, _reason: str, _message: str) -> None:
        seen.append(structlog.contextvars.get_contextvars())

    with structlog.contextvars.bound_contextvars(nodeeni="multus"):
        await _run(recording_emit)
    assert len(seen) == 10
    # a slot binds node/instance_id/eni_id for its own lines; the sender shares none
    assert all(context == {"nodeeni": "multus"} for context in seen)

"""Unit tests: the executor starts the slots in order, at most `concurrency` at
once, each slot with its own log context (none of it seen by another slot, nor
left for the caller), results in the (staggered) order they were started in;
a slot's unexpected error is raised as it is.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from eni_controller.metrics import Metrics
from eni_controller.reconcile.executor import Executor, Outcome, SlotResult, staggered
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.planner import Action, Attach, CreateAndAttach, Slot
from tests.harness.jobs import JOB_SUBNET, instance_ids, memory_job
from tests.harness.memory_ec2 import MemoryEC2, unpaced_client

INSTANCES = instance_ids(7)
NODEENI = "multus"


class RecordingEC2(MemoryEC2):
    """MemoryEC2 that yields once per call and notes the log context and the
    number of calls in flight."""

    def __init__(self, instances: list[str]) -> None:
        super().__init__(instances)
        self.contexts: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def _note(self, action: str) -> None:
        self.contexts.append((action, structlog.contextvars.get_contextvars()))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1

    async def create_network_interface(self, **params: Any) -> dict[str, Any]:
        await self._note("create")
        return await super().create_network_interface(**params)

    async def attach_network_interface(self, **params: Any) -> dict[str, Any]:
        await self._note("attach")
        return await super().attach_network_interface(**params)  # KeyError if unknown


async def _run(raw: RecordingEC2, actions: list[Action], *, concurrency: int) -> list[SlotResult]:
    metrics = Metrics()
    ec2 = unpaced_client(raw, metrics=metrics)

    def emit(_type: str, _reason: str, _message: str, _count: int = 1, /) -> None:
        pass

    job = memory_job(nodeeni=NODEENI, instances=INSTANCES, emit=emit)
    executor = Executor(ec2, DeviceIndexAllocator(), metrics=metrics, concurrency=concurrency)
    return await executor.run(job, actions)


def _slot(n: int) -> Slot:
    return Slot(node=f"n{n}", instance_id=INSTANCES[n], subnet=JOB_SUBNET, device_index=1)


def _creates() -> list[Action]:
    return [CreateAndAttach(slot=_slot(n)) for n in range(len(INSTANCES))]


async def test_results_follow_the_actions_and_concurrency_is_capped() -> None:
    raw = RecordingEC2(INSTANCES)
    actions = _creates()
    results = await _run(raw, actions, concurrency=3)
    order = [a.slot for a in staggered(actions, NODEENI)]
    assert order != [a.slot for a in actions]
    assert [r.action.slot for r in results] == order
    assert [r.outcome for r in results] == [Outcome.DONE] * len(actions)
    assert raw.most_in_flight == 3
    created = [c["node"] for action, c in raw.contexts if action == "create"]
    assert created == [slot.node for slot in order]


async def test_each_slot_logs_with_its_own_context_only() -> None:
    raw = RecordingEC2(INSTANCES)
    actions: list[Action] = [*_creates()[1:3]]
    with structlog.contextvars.bound_contextvars(reconcile="r1"):
        await _run(raw, actions, concurrency=1)
        after = structlog.contextvars.get_contextvars()
    assert after == {"reconcile": "r1"}
    by_node: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for action, context in raw.contexts:
        by_node.setdefault(context["node"], []).append((action, context))
    for n in (1, 2):
        (create, c1), (attach, c2) = by_node[f"n{n}"]
        assert (create, attach) == ("create", "attach")
        # the first slot's eni_id (bound after its create) is not in the second's create
        assert c1 == {
            "reconcile": "r1",
            "nodeeni": NODEENI,
            "node": f"n{n}",
            "instance_id": INSTANCES[n],
        }
        assert c2 == {**c1, "eni_id": c2["eni_id"]}
    assert by_node["n1"][1][1]["eni_id"] != by_node["n2"][1][1]["eni_id"]


async def test_an_unexpected_error_in_a_slot_propagates() -> None:
    raw = RecordingEC2(INSTANCES)
    actions: list[Action] = [Attach(slot=_slot(0), eni_id="eni-missing")]  # KeyError in EC2
    with pytest.raises(KeyError, match="eni-missing"):
        await _run(raw, actions, concurrency=2)
    assert raw.contexts[0][1]["eni_id"] == "eni-missing"


async def test_an_unexpected_error_cancels_the_other_slots() -> None:
    raw = RecordingEC2(INSTANCES)
    actions: list[Action] = [Attach(slot=_slot(0), eni_id="eni-missing"), *_creates()[1:]]
    with pytest.raises(KeyError, match="eni-missing"):
        await _run(raw, actions, concurrency=2)
    calls = len(raw.contexts)
    assert len(raw.contexts) == calls  # no slot left running: no call after run() raised
    assert calls < 2 * len(actions)

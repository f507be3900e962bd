"""Unit tests: the executor's events, one per ENI step, each raised in its slot's
own log context.

Every event is handed to the recorder (which writes it: a slot never waits on
the API server) before `Executor.run` returns, and a failed event (events are
best effort) never fails its slot. Gathering events into fewer writes is the
recorder's (test_events.py). The slots run against the harness's
zero-latency in-memory EC2 through the real EC2 client.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog

from eni_controller.aws.errors import SHORT_TEXT_MAX_LENGTH
from eni_controller.kube.events import EventRecorder
from eni_controller.metrics import Metrics
from eni_controller.model import NodeENI
from eni_controller.reconcile.executor import Emit, Executor, Outcome
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.planner import CreateAndAttach, Slot
from tests.harness.ec2_errors import client_error
from tests.harness.jobs import JOB_SUBNET, instance_ids, memory_job
from tests.harness.memory_ec2 import ONE_ATTEMPT, MemoryEC2, unpaced_client

INSTANCES = instance_ids(60)


async def _run(emit: Emit, *, nodes: int = 5, concurrency: int = 16) -> list[Outcome]:
    metrics = Metrics()
    ec2 = unpaced_client(MemoryEC2(INSTANCES), metrics=metrics)
    job = memory_job(nodeeni="multus", instances=INSTANCES, emit=emit)
    actions = [
        CreateAndAttach(slot=Slot(node=f"n{n}", instance_id=i, subnet=JOB_SUBNET, device_index=1))
        for n, i in enumerate(INSTANCES[:nodes])
    ]
    executor = Executor(ec2, DeviceIndexAllocator(), metrics=metrics, concurrency=concurrency)
    results = await executor.run(job, actions)
    return [r.outcome for r in results]


async def test_every_event_is_handed_over_before_run_returns() -> None:
    sent: list[str] = []

    def slow_emit(_type: str, reason: str, _message: str, count: int = 1, /) -> None:
        sent.extend([reason] * count)

    outcomes = await _run(slow_emit)
    assert outcomes == [Outcome.DONE] * 5
    assert sorted(sent) == ["ENIAttached"] * 5 + ["ENICreated"] * 5


class _UnreachableEvents:
    """An Events API every write to which fails."""

    async def create_namespaced_event(self, *_: Any, **__: Any) -> Any:
        raise RuntimeError("API server unreachable")

    patch_namespaced_event = create_namespaced_event


async def test_a_failed_event_never_fails_its_slot() -> None:
    # the reconciler's emit: the recorder's record_soon, which never raises
    recorder = EventRecorder(_UnreachableEvents())
    nodeeni = NodeENI(name="multus", uid="uid-1", resource_version="1", spec=None)

    def emit(type_: str, reason: str, message: str) -> None:
        recorder.record_soon(nodeeni, type_=type_, reason=reason, message=message)

    assert await _run(emit) == [Outcome.DONE] * 5
    await recorder.flush()


async def test_each_event_is_raised_in_its_own_slots_context_only() -> None:
    seen: list[tuple[str, dict[str, object]]] = []

    def recording_emit(_type: str, _reason: str, message: str, count: int = 1, /) -> None:
        assert count == 1
        seen.append((message, structlog.contextvars.get_contextvars()))

    with structlog.contextvars.bound_contextvars(reconcile="r1"):
        assert await _run(recording_emit, nodes=20, concurrency=5) == [Outcome.DONE] * 20
        assert structlog.contextvars.get_contextvars() == {"reconcile": "r1"}
    assert len(seen) == 40
    for message, context in seen:
        # "created eni-… for node nN" / "attached eni-… to node nN at device index 1"
        words = message.split()
        eni_id, node = words[1], words[4]
        assert context == {
            "reconcile": "r1",
            "nodeeni": "multus",
            "node": node,
            "instance_id": INSTANCES[int(node[1:])],
            "eni_id": eni_id,
        }


async def test_one_info_line_per_eni_step_names_its_objects() -> None:
    def quiet_emit(_type: str, _reason: str, _message: str, count: int = 1, /) -> None:
        pass

    with structlog.testing.capture_logs() as logs:
        assert await _run(quiet_emit, nodes=3) == [Outcome.DONE] * 3
    steps = [line for line in logs if line["event"] in ("ENI created", "ENI attached")]
    assert len(steps) == 6
    for line in steps:
        node = str(line["node"])
        assert line["nodeeni"] == "multus"
        assert line["instance_id"] == INSTANCES[int(node[1:])]
        assert str(line["eni_id"]).startswith("eni-")
    created = {(line["node"], line["eni_id"]) for line in steps if line["event"] == "ENI created"}
    attached = {(line["node"], line["eni_id"]) for line in steps if line["event"] == "ENI attached"}
    assert created == attached
    assert len(created) == 3
    assert {line.get("device_index") for line in steps if line["event"] == "ENI attached"} == {1}


async def test_one_event_per_eni_step_created_before_attached() -> None:
    sent: list[tuple[str, str, int]] = []

    def slow_emit(_type: str, reason: str, message: str, count: int = 1, /) -> None:
        sent.append((reason, message, count))

    assert await _run(slow_emit, nodes=60) == [Outcome.DONE] * 60
    assert all(count == 1 for _, _, count in sent)
    created = [text.split()[1] for reason, text, _ in sent if reason == "ENICreated"]
    attached = [text.split()[1] for reason, text, _ in sent if reason == "ENIAttached"]
    assert len(set(created)) == len(created) == 60  # every ENI named once
    assert sorted(attached) == sorted(created)
    position = {(reason, text.split()[1]): n for n, (reason, text, _) in enumerate(sent)}
    assert all(position[("ENICreated", eni)] < position[("ENIAttached", eni)] for eni in created)


class DeniedEC2(MemoryEC2):
    """Answers CreateNetworkInterface as AWS does for a role without the permission:
    a readable sentence, then kilobytes of encoded authorization message."""

    SENTENCE = "You are not authorized to perform this operation."
    BLOB = "Encoded authorization failure message: " + "c2VjcmV0" * 500

    async def create_network_interface(self, **params: Any) -> dict[str, Any]:
        raise client_error(
            "UnauthorizedOperation",
            action="CreateNetworkInterface",
            status=HTTPStatus.FORBIDDEN,
            message=f"{self.SENTENCE} {self.BLOB}",
        )


async def test_a_failure_event_and_condition_carry_the_code_never_the_encoded_blob() -> None:
    sent: list[tuple[str, str]] = []

    def recording_emit(_type: str, reason: str, message: str, count: int = 1, /) -> None:
        sent.append((reason, message))

    metrics = Metrics()
    ec2 = unpaced_client(DeniedEC2(INSTANCES), metrics=metrics, retry=ONE_ATTEMPT)
    job = memory_job(nodeeni="multus", instances=INSTANCES, emit=recording_emit)
    slot = Slot(node="n0", instance_id=INSTANCES[0], subnet=JOB_SUBNET, device_index=1)
    executor = Executor(ec2, DeviceIndexAllocator(), metrics=metrics)
    (result,) = await executor.run(job, [CreateAndAttach(slot=slot)])
    assert result.outcome is Outcome.RETRY
    assert result.reason == "Unauthorized"
    expected = f"CreateNetworkInterface: UnauthorizedOperation: {DeniedEC2.SENTENCE}"
    assert sent == [("ENICreationFailed", f"node n0: {expected}")]
    assert result.message == f"node n0, subnet {JOB_SUBNET.subnet_id}: {expected}"
    for text in (sent[0][1], result.message):
        assert "c2VjcmV0" not in text
        assert len(text) < SHORT_TEXT_MAX_LENGTH + 100

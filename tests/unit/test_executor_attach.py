"""Unit tests: the executor's attach picks device indexes as the spec says.

Upward from the wanted index, never below it, below the instance type's
limit (nothing free there: the slot is blocked, and no attach is tried); an
InvalidParameterValue is an index conflict only when a describe shows the
index taken; a reservation keeps other ENIs off an index, never its own ENI.
The slots run through the real EC2 client over an in-memory EC2 that keeps
device indexes per instance and refuses a taken one as AWS does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from botocore.exceptions import ReadTimeoutError

from eni_controller.aws.resources import Instance
from eni_controller.metrics import Metrics
from eni_controller.reconcile.executor import Executor, Job, Outcome
from eni_controller.reconcile.indexes import MAX_INDEX_CONFLICTS, DeviceIndexAllocator
from eni_controller.reconcile.planner import Attach, Slot
from tests.harness.ec2_errors import ENDPOINT, client_error
from tests.harness.jobs import JOB_SUBNET, instance_ids, memory_job
from tests.harness.memory_ec2 import INSTANCE_TYPE, MemoryEC2, unpaced_client

INSTANCE = instance_ids(2)[1]


class IndexedEC2(MemoryEC2):
    """MemoryEC2 whose instances hold ENIs at device indexes: an attach at a taken
    index answers InvalidParameterValue (as AWS does), and DescribeInstances
    shows what is attached where."""

    def __init__(self) -> None:
        super().__init__([INSTANCE])
        self.held: dict[int, str] = {0: "eni-primary"}  # INSTANCE's: index -> ENI id
        self.bad_parameter = False  # refuse every attach with InvalidParameterValue
        self.time_out = False  # every attach is sent, then its answer lost
        # DescribeInstances lags: it shows no index above the last attach tried
        self.lagging = False
        self._last_tried = 0

    def detach(self, eni_id: str) -> None:
        """A detach made by hand, outside the controller."""
        (index,) = (i for i, held in self.held.items() if held == eni_id)
        del self.held[index]
        del self.enis[eni_id]["Attachment"]
        self.enis[eni_id]["Status"] = "available"

    def index_of(self, eni_id: str) -> int:
        return int(self.enis[eni_id]["Attachment"]["DeviceIndex"])

    async def attach_network_interface(self, **params: Any) -> dict[str, Any]:
        index = self._last_tried = params["DeviceIndex"]
        if self.time_out:
            self._count("AttachNetworkInterface")
            raise ReadTimeoutError(endpoint_url=ENDPOINT)
        if self.bad_parameter or index in self.held:
            self._count("AttachNetworkInterface")
            raise client_error(
                "InvalidParameterValue",
                action="AttachNetworkInterface",
                message=f"device index {index}",
            )
        self.held[index] = params["NetworkInterfaceId"]
        return await super().attach_network_interface(**params)

    async def describe_instances(self, **params: Any) -> dict[str, Any]:
        answer = await super().describe_instances(**params)
        (instance,) = answer["Reservations"][0]["Instances"]
        instance["NetworkInterfaces"] = [
            {"Attachment": {"DeviceIndex": i}}
            for i in sorted(self.held)
            if not self.lagging or i <= self._last_tried
        ]
        return answer


class Recorded:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def emit(self, _type: str, reason: str, message: str, count: int = 1, /) -> None:
        self.events.extend([(reason, message)] * count)


def _job(
    recorded: Recorded, *, occupied: frozenset[int] = frozenset({0}), limit: int | None = None
) -> Job:
    """A Job whose facts about INSTANCE (its describe, maybe stale) show `occupied`."""
    job = memory_job(nodeeni="multus", instances=[INSTANCE], emit=recorded.emit)
    facts = dataclasses.replace(job.instances[INSTANCE], occupied_device_indexes=occupied)
    instances: dict[str, Instance] = {INSTANCE: facts}
    max_enis = {} if limit is None else {INSTANCE_TYPE: limit}
    return dataclasses.replace(job, instances=instances, max_enis=max_enis)


def _attach(eni_id: str, *, wanted: int, subnet_id: str) -> Attach:
    subnet = dataclasses.replace(JOB_SUBNET, subnet_id=subnet_id)
    slot = Slot(node="n1", instance_id=INSTANCE, subnet=subnet, device_index=wanted)
    return Attach(slot=slot, eni_id=eni_id)


class World:
    def __init__(self) -> None:
        self.raw = IndexedEC2()
        self.allocator = DeviceIndexAllocator()
        metrics = Metrics()
        self.executor = Executor(
            unpaced_client(self.raw, metrics=metrics), self.allocator, metrics=metrics
        )
        self.recorded = Recorded()

    async def attach(
        self, eni_id: str, *, wanted: int = 1, subnet_id: str = JOB_SUBNET.subnet_id, **job: Any
    ) -> tuple[Outcome, str]:
        """Attach `eni_id` (added to EC2 first if new) in the slot of `subnet_id`
        (a failed slot is held by its backoff); the outcome and its reason."""
        if eni_id not in self.raw.enis:
            self.raw.put(eni_id, eni_tags={})
        action = _attach(eni_id, wanted=wanted, subnet_id=subnet_id)
        (result,) = await self.executor.run(_job(self.recorded, **job), [action])
        return result.outcome, result.reason

    def calls(self, action: str) -> int:
        return self.raw.calls.get(action, 0)


async def test_a_foreign_eni_at_the_wanted_index_moves_ours_to_the_next_one_up() -> None:
    world = World()
    world.raw.held[2] = "eni-foreign"  # not in the Job's (stale) facts: only AWS knows
    assert await world.attach("eni-x", wanted=2) == (Outcome.DONE, "")
    assert world.raw.index_of("eni-x") == 3  # 1 is free, but below the wanted index
    assert world.calls("AttachNetworkInterface") == 2
    assert world.calls("DescribeInstances") == 1  # the conflict confirmed before moving on


async def test_an_index_the_facts_show_taken_is_skipped_without_asking_aws() -> None:
    world = World()
    world.raw.held[1] = "eni-foreign"
    assert await world.attach("eni-x", occupied=frozenset({0, 1})) == (Outcome.DONE, "")
    assert world.raw.index_of("eni-x") == 2
    assert world.calls("AttachNetworkInterface") == 1


async def test_invalid_parameter_with_the_index_free_is_surfaced_not_tried_elsewhere() -> None:
    world = World()
    world.raw.bad_parameter = True
    outcome, reason = await world.attach("eni-x")
    assert (outcome, reason) == (Outcome.RETRY, "InvalidParameterValue")
    assert world.calls("AttachNetworkInterface") == 1
    assert world.calls("DescribeInstances") == 1
    assert world.allocator.reserved(INSTANCE) == {}
    assert [r for r, _ in world.recorded.events] == ["ENIAttachmentFailed"]


async def test_no_free_index_below_the_limit_blocks_the_slot_without_an_attach() -> None:
    world = World()
    world.raw.held.update({1: "eni-cni", 2: "eni-other"})
    outcome, reason = await world.attach("eni-x", occupied=frozenset({0, 1, 2}), limit=3)
    assert (outcome, reason) == (Outcome.BLOCKED, "AttachmentLimitExceeded")
    assert world.calls("AttachNetworkInterface") == 0
    assert world.calls("CreateNetworkInterface") == 0
    assert world.calls("DescribeInstances") == 1  # full on a fresh describe, not kept facts
    (event,) = world.recorded.events
    assert event[0] == "ENIAttachmentFailed"
    assert "NoFreeDeviceIndex" in event[1]
    assert f"on {INSTANCE} from the spec's deviceIndex 1 up to" in event[1]


async def test_an_instance_full_only_in_kept_facts_is_described_before_blocking() -> None:
    # the kept facts were read while an ENI (deleted by hand since) held index 1:
    # the instance is full only on paper, and a block would hold the slot for good
    world = World()
    world.raw.held[2] = "eni-other"
    for round_ in range(2):  # the round trip, and its repeat
        eni = f"eni-{round_}"
        outcome = await world.attach(eni, occupied=frozenset({0, 1, 2}), limit=3)
        assert outcome == (Outcome.DONE, "")
        assert world.raw.index_of(eni) == 1
        assert world.calls("DescribeInstances") == round_ + 1
        world.raw.detach(eni)  # by hand, then deleted: known gone
        world.executor.gone(eni)
    assert world.calls("AttachNetworkInterface") == 2


async def test_a_wanted_index_free_below_the_limit_is_used_up_to_it() -> None:
    world = World()
    world.raw.held[1] = "eni-cni"
    assert await world.attach("eni-x", occupied=frozenset({0, 1}), limit=3) == (Outcome.DONE, "")
    assert world.raw.index_of("eni-x") == 2


async def test_a_reservation_keeps_its_own_eni_in_place_and_another_eni_off_it() -> None:
    world = World()
    assert await world.attach("eni-x") == (Outcome.DONE, "")
    assert world.raw.index_of("eni-x") == 1
    world.raw.detach("eni-x")  # by hand; the describe shows 1 free at once
    # another ENI, within the reservation window: kept off X's index
    assert await world.attach("eni-y") == (Outcome.DONE, "")
    assert world.raw.index_of("eni-y") == 2
    world.raw.detach("eni-y")
    # X attached again: back at its own index, not pushed elsewhere
    assert await world.attach("eni-x") == (Outcome.DONE, "")
    assert world.raw.index_of("eni-x") == 1
    assert world.calls("AttachNetworkInterface") == 3  # no conflict along the way


async def test_release_lets_another_eni_take_the_index() -> None:
    world = World()
    assert await world.attach("eni-x") == (Outcome.DONE, "")
    world.raw.detach("eni-x")  # the cleanup pool's detach...
    world.allocator.release(INSTANCE, 1)  # ...seen done
    assert await world.attach("eni-y") == (Outcome.DONE, "")
    assert world.raw.index_of("eni-y") == 1


async def test_conflicts_in_a_row_are_bounded() -> None:
    world = World()
    # other software attaching as fast as we look: each index tried is taken
    world.raw.held.update({i: f"eni-foreign-{i}" for i in range(1, 10)})
    world.raw.lagging = True
    outcome, reason = await world.attach("eni-x")
    assert (outcome, reason) == (Outcome.RETRY, "IndexConflict")
    assert world.calls("AttachNetworkInterface") == MAX_INDEX_CONFLICTS
    assert world.calls("DescribeInstances") == MAX_INDEX_CONFLICTS
    assert world.allocator.reserved(INSTANCE) == {}


async def test_a_describe_showing_more_taken_indexes_skips_them_all() -> None:
    world = World()
    world.raw.held.update({1: "eni-foreign-1", 2: "eni-foreign-2"})
    assert await world.attach("eni-x") == (Outcome.DONE, "")
    assert world.raw.index_of("eni-x") == 3
    assert world.calls("AttachNetworkInterface") == 2
    assert world.calls("DescribeInstances") == 1


async def test_an_attach_whose_answer_was_lost_keeps_the_index_for_that_eni() -> None:
    world = World()
    world.raw.time_out = True
    outcome, reason = await world.attach("eni-x")
    assert (outcome, reason) == (Outcome.RETRY, "OutcomeUnknown")
    assert world.allocator.reserved(INSTANCE) == {1: "eni-x"}
    world.raw.time_out = False
    assert await world.attach("eni-y", subnet_id="subnet-2") == (Outcome.DONE, "")
    assert world.raw.index_of("eni-y") == 2

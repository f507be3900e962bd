"""Unit tests: ClientToken chains, per-slot backoff and bounded attribute changes,
alone and through the executor over an in-memory EC2 that keeps ClientTokens
as EC2 does (a token answers with its first ENI even after that ENI is deleted)."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from eni_controller.reconcile.executor import Executor, Job, Outcome, SlotResult
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.planner import (
    Action,
    Attach,
    CreateAndAttach,
    ProblemReason,
    SetDeleteOnTermination,
    Slot,
)
from eni_controller.reconcile.retries import (
    MAX_EFFECT_ATTEMPTS,
    SlotBackoff,
    SlotKey,
    StepKey,
)
from eni_controller.reconcile.tokens import (
    MISMATCH,
    NOT_FOUND_GRACE_SECONDS,
    ClientTokens,
    next_token,
)
from eni_controller.spec import NodeENISpec
from tests.harness.clock import ManualClock
from tests.harness.jobs import JOB_SUBNET, instance_ids, memory_job
from tests.harness.memory_ec2 import RulesMemoryEC2, unpaced_client

KEY = SlotKey(uid="uid-1", node="n1", instance_id="i-1", subnet_id="subnet-1")
FIRST = tags.client_token(uid="uid-1", node="n1", instance_id="i-1", subnet_id="subnet-1")
STEP = StepKey(slot=KEY, kind="create", generation=1)
INSTANCES = instance_ids(4)


# --- ClientTokens ----------------------------------------------------------------------


def test_the_first_token_is_the_slots_and_a_chain_is_the_same_in_every_process() -> None:
    assert ClientTokens().token(KEY) == FIRST
    # a restarted controller walks the same tokens: a lost response returns its ENI
    one, other = ClientTokens(), ClientTokens()
    for tokens in (one, other):
        tokens.created(KEY, token=tokens.token(KEY), eni_id="eni-a")
        tokens.gone("eni-a")
    assert one.token(KEY) == other.token(KEY) == next_token(FIRST, left_because="eni-a")
    assert len(one.token(KEY)) == 64


def test_a_token_whose_eni_is_gone_is_never_sent_again() -> None:
    tokens = ClientTokens()
    first = tokens.token(KEY)
    assert tokens.created(KEY, token=first, eni_id="eni-a") is True
    assert tokens.token(KEY) == first  # its ENI is alive: the same token (idempotent)
    tokens.gone("eni-a")  # the cleanup pool deleted it
    second = tokens.token(KEY)
    assert second != first
    assert tokens.created(KEY, token=second, eni_id="eni-b") is True
    tokens.gone("eni-b")
    assert tokens.token(KEY) not in (first, second)


def test_a_replayed_token_answering_a_gone_eni_is_refused() -> None:
    tokens = ClientTokens()  # a fresh process: the chain is not known, the tombstone is
    tokens.gone("eni-a")
    first = tokens.token(KEY)
    assert tokens.created(KEY, token=first, eni_id="eni-a") is False
    assert tokens.token(KEY) == next_token(first, left_because="eni-a")


def test_not_found_means_gone_only_after_the_grace(clock: ManualClock) -> None:
    tokens = ClientTokens(clock=clock)
    first = tokens.token(KEY)
    tokens.created(KEY, token=first, eni_id="eni-a")
    tokens.not_found("eni-a")  # brand new: EC2 is eventually consistent
    clock.advance(NOT_FOUND_GRACE_SECONDS - 1)
    tokens.not_found("eni-a")  # a later NotFound does not restart the grace
    assert tokens.token(KEY) == first
    clock.advance(1)
    assert tokens.is_gone("eni-a")
    assert tokens.token(KEY) != first


def test_an_eni_found_after_a_not_found_is_not_gone(clock: ManualClock) -> None:
    tokens = ClientTokens(clock=clock)
    tokens.not_found("eni-a")
    tokens.found("eni-a")
    clock.advance(NOT_FOUND_GRACE_SECONDS * 2)
    assert not tokens.is_gone("eni-a")


def test_an_eni_found_then_not_found_is_gone_at_once(clock: ManualClock) -> None:
    # an attach of it succeeded, so eventual consistency no longer hides it: deleted
    tokens = ClientTokens(clock=clock)
    first = tokens.token(KEY)
    tokens.created(KEY, token=first, eni_id="eni-a")
    tokens.found("eni-a")
    assert tokens.not_found("eni-a") is True
    assert tokens.token(KEY) == next_token(first, left_because="eni-a")
    # and again with the next ENI of the chain: each one found, then deleted
    second = tokens.token(KEY)
    tokens.created(KEY, token=second, eni_id="eni-b")
    assert tokens.not_found("eni-b") is False  # never found: inside the grace
    tokens.found("eni-b")
    assert tokens.not_found("eni-b") is True
    assert tokens.token(KEY) not in (first, second)


def test_a_mismatched_token_is_spent() -> None:
    tokens = ClientTokens()
    first = tokens.token(KEY)
    tokens.mismatched(KEY, token=first)
    assert tokens.token(KEY) == next_token(first, left_because=MISMATCH)


# --- SlotBackoff --------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_success_forgets(clock: ManualClock) -> None:
    backoff = SlotBackoff(base=2.0, cap=10.0, clock=clock)
    delays = []
    for _ in range(5):
        failure = backoff.failed(STEP, reason="Unauthorized", message="m")
        delays.append(backoff.remaining(failure))
    assert delays == [2.0, 4.0, 8.0, 10.0, 10.0]
    clock.advance(9.0)
    assert backoff.remaining(failure) == 1.0
    clock.advance(1.0)
    assert backoff.remaining(failure) == 0.0
    assert backoff.standing(STEP) is not None  # still reported
    backoff.succeeded(STEP)
    assert backoff.standing(STEP) is None


def test_an_edited_spec_starts_the_backoff_afresh() -> None:
    backoff = SlotBackoff(base=2.0, cap=300.0, clock=ManualClock())
    for _ in range(4):
        failure = backoff.failed(STEP, reason="Unauthorized", message="m")
    assert backoff.standing(STEP) == failure
    assert backoff.remaining(failure) > 0
    edited = dataclasses.replace(STEP, generation=2)
    assert backoff.standing(edited) is None
    assert backoff.failed(edited, reason="Unauthorized", message="m").attempts == 1


def test_a_forgotten_nodeeni_leaves_no_failures() -> None:
    backoff = SlotBackoff(clock=ManualClock())
    backoff.failed(STEP, reason="r", message="m")
    backoff.forget("uid-1")
    assert backoff.standing(STEP) is None


# --- through the executor ---------------------------------------------------------------


class Rig:
    """One executor over an in-memory EC2, with a hand-driven clock."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.raw = RulesMemoryEC2(INSTANCES)
        self.metrics = Metrics()
        self.tokens = ClientTokens(clock=self.clock)
        self.executor = self.new_executor(self.tokens)

    def new_executor(self, tokens: ClientTokens) -> Executor:
        """An executor as a restarted controller has it, over the same EC2."""
        self.allocator = DeviceIndexAllocator(clock=self.clock)
        return Executor(
            unpaced_client(self.raw, metrics=self.metrics),
            self.allocator,
            metrics=self.metrics,
            backoff=SlotBackoff(base=2.0, cap=300.0, clock=self.clock),
            tokens=tokens,
        )

    def job(self, *, generation: int = 1) -> Job:
        def emit(_type: str, _reason: str, _message: str, _count: int = 1, /) -> None:
            return None

        job = memory_job(nodeeni="multus", instances=INSTANCES, emit=emit)
        return Job(
            nodeeni=job.nodeeni,
            uid=job.uid,
            spec=NodeENISpec(
                node_selector=MappingProxyType({}),
                subnet_ids=("subnet-1",),
                delete_on_termination=True,
            ),
            security_group_ids=job.security_group_ids,
            instances=job.instances,
            emit=emit,
            generation=generation,
        )

    async def run(self, action: Action, *, generation: int = 1) -> SlotResult:
        (result,) = await self.executor.run(self.job(generation=generation), [action])
        return result

    def calls(self, action: str) -> int:
        return self.raw.calls.get(action, 0)


def _create(instance: str = INSTANCES[0]) -> CreateAndAttach:
    return CreateAndAttach(
        slot=Slot(node="n1", instance_id=instance, subnet=JOB_SUBNET, device_index=1)
    )


async def _delete(rig: Rig, eni_id: str) -> None:
    await rig.raw.delete_network_interface(NetworkInterfaceId=eni_id)


async def test_a_slot_created_again_after_its_eni_was_deleted_gets_a_new_eni_in_one_create() -> (
    None
):
    rig = Rig()
    assert (await rig.run(_create())).outcome is Outcome.DONE
    (first,) = rig.raw.enis
    await _delete(rig, first)
    rig.tokens.gone(first)  # as the cleanup pool tells it
    assert (await rig.run(_create())).outcome is Outcome.DONE
    assert rig.calls("CreateNetworkInterface") == 2  # one per slot made, no replay
    (second,) = rig.raw.enis
    assert second != first


async def test_a_restarted_controller_replays_once_then_moves_on() -> None:
    rig = Rig()
    await rig.run(_create())
    (first,) = rig.raw.enis
    await _delete(rig, first)
    # a new process: no chain kept; the ENI answers NotFound, which lasts
    rig.executor = rig.new_executor(ClientTokens(clock=rig.clock))
    replay = await rig.run(_create())
    assert replay.outcome is Outcome.RETRY
    assert replay.reason == "InvalidNetworkInterfaceIDNotFound"
    assert rig.raw.enis == {}
    rig.clock.advance(NOT_FOUND_GRACE_SECONDS)
    assert (await rig.run(_create())).outcome is Outcome.DONE
    assert len(rig.raw.enis) == 1
    # the first create, the replay, and one with the next token (the chain moved on
    # before the call: the replayed ENI had answered NotFound past the grace)
    assert rig.calls("CreateNetworkInterface") == 3


async def test_an_idempotency_mismatch_moves_the_slot_to_a_new_token_at_once() -> None:
    rig = Rig()
    first = rig.tokens.token(
        SlotKey(uid="uid-1", node="n1", instance_id=INSTANCES[0], subnet_id="subnet-1")
    )
    rig.raw.tokens[first] = ("other parameters", {})
    assert (await rig.run(_create())).outcome is Outcome.DONE
    assert rig.calls("CreateNetworkInterface") == 2
    assert len(rig.raw.enis) == 1


async def test_a_denied_create_backs_off_per_slot_and_is_reported_by_its_code() -> None:
    rig = Rig()
    rig.raw.refuse["CreateNetworkInterface"] = "UnauthorizedOperation"
    failed = await rig.run(_create())
    assert failed.outcome is Outcome.RETRY
    assert failed.reason == "Unauthorized"
    assert failed.retry_in == 2.0
    assert failed.problem is not None
    assert failed.problem.blocks_ready
    assert "UnauthorizedOperation" in failed.message
    # a resync, an event: no call until the slot's time has come
    held = await rig.run(_create())
    assert (held.outcome, held.reason, held.message) == (
        Outcome.HELD,
        "Unauthorized",
        failed.message,
    )
    assert rig.calls("CreateNetworkInterface") == 1
    waits = []
    for _ in range(10):
        rig.clock.advance(held.retry_in or 0.0)
        result = await rig.run(_create())
        waits.append(result.retry_in)
        held = result
    assert waits == [4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0, 300.0]
    assert rig.calls("CreateNetworkInterface") == 11
    # the spec is edited (a new generation): tried at once
    del rig.raw.refuse["CreateNetworkInterface"]
    assert (await rig.run(_create(), generation=2)).outcome is Outcome.DONE


async def test_other_slots_are_not_held_by_one_slots_backoff() -> None:
    rig = Rig()
    rig.raw.refuse["CreateNetworkInterface"] = "UnauthorizedOperation"
    await rig.run(_create(INSTANCES[0]))
    del rig.raw.refuse["CreateNetworkInterface"]
    assert (await rig.run(_create(INSTANCES[1]))).outcome is Outcome.DONE
    assert (await rig.run(_create(INSTANCES[0]))).outcome is Outcome.HELD


@pytest.mark.parametrize("sticks", [True, False])
async def test_an_attribute_change_that_does_not_stick_is_sent_a_bounded_number_of_times(
    sticks: bool,
) -> None:
    rig = Rig()
    rig.raw.sticky_delete_on_termination = sticks
    await rig.run(_create())  # attaches, then sets DeleteOnTermination: counted once
    ((eni_id, eni),) = rig.raw.enis.items()
    change = SetDeleteOnTermination(
        slot=_create().slot,
        eni_id=eni_id,
        attachment_id=eni["Attachment"]["AttachmentId"],
        value=True,
    )
    outcomes = [(await rig.run(change)).outcome for _ in range(MAX_EFFECT_ATTEMPTS + 2)]
    # the planner asks again only while the effect does not show; asked anyway, the
    # sends stop at the bound
    assert outcomes[: MAX_EFFECT_ATTEMPTS - 1] == [Outcome.DONE] * (MAX_EFFECT_ATTEMPTS - 1)
    assert outcomes[MAX_EFFECT_ATTEMPTS - 1 :] == [Outcome.GIVEN_UP] * 3
    assert rig.calls("ModifyNetworkInterfaceAttribute") == MAX_EFFECT_ATTEMPTS
    given_up = await rig.run(change)
    assert given_up.reason == ProblemReason.ATTRIBUTE_NOT_APPLIED
    assert given_up.problem is not None
    assert not given_up.problem.blocks_ready
    # a new attachment is a new change: sent again
    fresh = SetDeleteOnTermination(
        slot=change.slot, eni_id=eni_id, attachment_id="eni-attach-other", value=True
    )
    assert (await rig.run(fresh)).outcome is Outcome.DONE
    # a forgotten NodeENI leaves no counts: the change is sent again
    rig.executor.forget(rig.job().uid)
    assert (await rig.run(change)).outcome is Outcome.DONE


async def test_an_eni_gone_from_status_gives_up_its_token_and_its_index() -> None:
    rig = Rig()
    await rig.run(_create())
    ((eni_id, eni),) = rig.raw.enis.items()
    instance = eni["Attachment"]["InstanceId"]
    allocator = rig.allocator
    assert allocator.reserved(instance) == {1: eni_id}
    await _delete(rig, eni_id)  # by hand: nobody told the controller
    rig.executor.gone(eni_id)  # as a status entry's ENI a describe no longer shows
    assert rig.tokens.is_gone(eni_id)
    assert allocator.reserved(instance) == {}
    # the replacement: one create, and the same index
    assert (await rig.run(_create())).outcome is Outcome.DONE
    assert rig.calls("CreateNetworkInterface") == 2
    ((_, replacement),) = rig.raw.enis.items()
    assert replacement["Attachment"]["DeviceIndex"] == 1


async def test_an_eni_deleted_before_any_status_listed_it_is_replaced_in_one_pass() -> None:
    # deleted by hand right after its attach: no status entry ever listed it, so
    # nothing says it vanished; the slot's token answers with the deleted ENI
    rig = Rig()
    for _ in range(2):  # the round trip, and its repeat
        before = rig.calls("CreateNetworkInterface")
        assert (await rig.run(_create())).outcome is Outcome.DONE
        ((victim, eni),) = rig.raw.enis.items()
        instance = eni["Attachment"]["InstanceId"]
        await _delete(rig, victim)
        result = await rig.run(_create())
        assert result.outcome is Outcome.DONE, result
        ((replacement, attached),) = rig.raw.enis.items()
        assert replacement != victim
        assert attached["Attachment"]["DeviceIndex"] == 1  # the index the victim left
        assert rig.allocator.reserved(instance) == {1: replacement}
        assert rig.tokens.is_gone(victim)
        # the victim's create, its replay (answering the deleted victim), the replacement
        assert rig.calls("CreateNetworkInterface") - before == 3
        await _delete(rig, replacement)
        rig.executor.gone(replacement)  # the next round starts from an empty slot


async def test_a_replacement_takes_the_deleted_enis_index_though_the_facts_still_show_it() -> None:
    # the reconcile described the instance while the victim was attached there; the
    # victim is deleted by hand before any status listed it: the replacement reads
    # the instance anew instead of going one index up
    rig = Rig()
    for _ in range(2):  # the round trip, and its repeat
        assert (await rig.run(_create())).outcome is Outcome.DONE
        ((victim, eni),) = rig.raw.enis.items()
        instance = eni["Attachment"]["InstanceId"]
        assert eni["Attachment"]["DeviceIndex"] == 1
        await _delete(rig, victim)
        job = rig.job()
        kept = dataclasses.replace(
            job.instances[instance], occupied_device_indexes=frozenset({0, 1})
        )
        job = dataclasses.replace(job, instances={**job.instances, instance: kept})
        describes = rig.calls("DescribeInstances")
        (result,) = await rig.executor.run(job, [_create(instance)])
        assert result.outcome is Outcome.DONE, result
        ((replacement, attached),) = rig.raw.enis.items()
        assert replacement != victim
        assert attached["Attachment"]["DeviceIndex"] == 1
        assert rig.calls("DescribeInstances") - describes == 1
        await _delete(rig, replacement)
        rig.executor.gone(replacement)


async def test_an_eni_deleted_between_its_attach_and_its_modify_frees_its_index_at_once() -> None:
    rig = Rig()
    await rig.run(_create())
    ((victim, eni),) = rig.raw.enis.items()
    instance = eni["Attachment"]["InstanceId"]
    # detached by hand: the controller attaches it again at its own index, and it is
    # deleted by hand before the DeleteOnTermination change (no status entry ever
    # lists this attachment to say it vanished)
    await rig.raw.detach_network_interface(AttachmentId=eni["Attachment"]["AttachmentId"])
    rig.raw.refuse["ModifyNetworkInterfaceAttribute"] = "InvalidNetworkInterfaceID.NotFound"
    slot = Slot(node="n1", instance_id=instance, subnet=JOB_SUBNET, device_index=1)
    assert (await rig.run(Attach(slot=slot, eni_id=victim))).outcome is Outcome.RETRY
    del rig.raw.refuse["ModifyNetworkInterfaceAttribute"]
    await _delete(rig, victim)

    assert rig.allocator.reserved(instance) == {}
    assert rig.tokens.is_gone(victim)
    # the replacement: one create, at the index the deleted ENI had
    assert (await rig.run(_create())).outcome is Outcome.DONE
    assert rig.calls("CreateNetworkInterface") == 2
    ((_, replacement),) = rig.raw.enis.items()
    assert replacement["Attachment"]["DeviceIndex"] == 1

"""The pure parts the kill and failover chaos cases judge by: the realism layer's
call journal (who called, about which ENI), the counts drawn from it, and the
report's sections for those cases. A wrong count here would let a duplicate or
a double detach pass unseen, so each is pinned on a small hand-made journal."""

from __future__ import annotations

from typing import Any

from bench.chaos_report import case_section
from eni_controller.reconcile import tags
from tests.harness.invariants import (
    acted_twice,
    create_replays,
    created_by_slot,
    lives,
    overlapping,
)
from tests.harness.kills import access_key, half_way, own_calls, splits, unanswered
from tests.harness.realism import journal as journal_module
from tests.harness.realism.journal import CallJournal, caller_of

AUTH = "AWS4-HMAC-SHA256 Credential={key}/20250101/us-east-1/ec2/aws4_request, SignedHeaders=x"


def _record(
    journal: CallJournal,
    action: str,
    key: str,
    *,
    params: dict[str, list[str]] | None = None,
    payload: bytes = b"",
    error: str | None = None,
) -> None:
    journal.record(
        at=journal.arrived(),
        action=action,
        authorization=AUTH.format(key=key),
        params=params or {},
        payload=payload,
        error=error,
    )


def test_caller_is_the_access_key_of_the_signature() -> None:
    assert caller_of(AUTH.format(key="AKIACHAOSA0001")) == "AKIACHAOSA0001"
    assert caller_of("") == ""


def test_journal_keeps_mutating_calls_and_resolves_a_detach_to_its_eni() -> None:
    clock = iter(float(n) for n in range(100))
    journal = CallJournal(clock=lambda: next(clock))
    create_params = {
        "SubnetId": ["subnet-1"],
        "ClientToken": ["tok"],
        "TagSpecification.1.ResourceType": ["network-interface"],
        "TagSpecification.1.Tag.1.Key": ["NodeENI"],
        "TagSpecification.1.Tag.1.Value": ["n"],
        "TagSpecification.1.Tag.2.Key": ["Node"],
        "TagSpecification.1.Tag.2.Value": ["node-1"],
        "TagSpecification.1.Tag.3.Key": ["NodeENIUID"],
        "TagSpecification.1.Tag.3.Value": ["uid-1"],
        "TagSpecification.1.Tag.4.Key": ["InstanceID"],
        "TagSpecification.1.Tag.4.Value": ["i-1"],
    }
    _record(
        journal,
        "CreateNetworkInterface",
        "A",
        params=create_params,
        payload=b"<networkInterface><networkInterfaceId>eni-1</networkInterfaceId>",
    )
    _record(journal, "DescribeNetworkInterfaces", "A")
    _record(
        journal,
        "AttachNetworkInterface",
        "A",
        params={"NetworkInterfaceId": ["eni-1"], "InstanceId": ["i-1"], "DeviceIndex": ["2"]},
        payload=b"<attachmentId>eni-attach-1</attachmentId>",
    )
    _record(journal, "DetachNetworkInterface", "B", params={"AttachmentId": ["eni-attach-1"]})
    _record(journal, "DetachNetworkInterface", "B", params={"AttachmentId": ["eni-attach-9"]})
    _record(
        journal,
        "DeleteNetworkInterface",
        "B",
        params={"NetworkInterfaceId": ["eni-1"]},
        error="InvalidNetworkInterface.InUse",
    )
    entries = journal.entries()
    assert [(e["action"], e["caller"], e["eni_id"], e["error"]) for e in entries] == [
        ("CreateNetworkInterface", "A", "eni-1", None),
        ("AttachNetworkInterface", "A", "eni-1", None),
        ("DetachNetworkInterface", "B", "eni-1", None),
        ("DetachNetworkInterface", "B", None, None),  # an attachment it never handed out
        ("DeleteNetworkInterface", "B", "eni-1", "InvalidNetworkInterface.InUse"),
    ]
    create, attach = entries[0], entries[1]
    assert (create["node"], create["subnet_id"], create["client_token"]) == (
        "node-1",
        "subnet-1",
        "tok",
    )
    assert (create["nodeeni_uid"], create["instance_tag"]) == ("uid-1", "i-1")
    assert attach["nodeeni_uid"] is attach["instance_tag"] is None  # a create's only
    assert (attach["attachment_id"], attach["instance_id"], attach["device_index"]) == (
        "eni-attach-1",
        "i-1",
        2,
    )
    # arrival, then the answer once EC2 acted (a describe is not journaled)
    assert [(e["at"], e["answered"]) for e in entries] == [
        (0.0, 1.0),
        (3.0, 4.0),
        (5.0, 6.0),
        (7.0, 8.0),
        (9.0, 10.0),
    ]
    journal.clear()
    assert journal.entries() == []


def _call(action: str, caller: str, eni: str, at: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {"action": action, "caller": caller, "eni_id": eni, "at": at, "error": None, **extra}


def _create(caller: str, eni: str, node: str, at: float = 0.0) -> dict[str, Any]:
    return _call("CreateNetworkInterface", caller, eni, at, node=node, subnet_id="subnet-1")


def test_a_replay_is_not_a_duplicate_but_a_second_eni_in_a_slot_is() -> None:
    journal = [
        _create("A", "eni-1", "n1"),
        _create("B", "eni-1", "n1"),  # the ClientToken's replay
        _create("B", "eni-2", "n2"),
        _create("B", "eni-3", "n2"),  # a second ENI for (n2, subnet-1)
        {**_create("B", "", "n3"), "error": "UnauthorizedOperation"},
    ]
    assert created_by_slot(journal) == {
        ("n1", "subnet-1"): ["eni-1"],
        ("n2", "subnet-1"): ["eni-2", "eni-3"],
    }
    assert create_replays(journal) == 1


def test_the_journal_reads_the_slot_tags_the_controller_writes() -> None:
    assert journal_module.NODE_TAG == tags.NODE_KEY
    assert journal_module.UID_TAG == tags.NODEENI_UID_KEY
    assert journal_module.INSTANCE_TAG == tags.INSTANCE_KEY


_seq = iter(range(10**6))


def _made(
    eni: str,
    at: float,
    *,
    uid: str = "u1",
    instance: str = "i-1",
    error: str | None = None,
) -> dict[str, Any]:
    """A journal entry of a create for (uid, n1, subnet-1, instance) arriving `at`."""
    return {
        "seq": next(_seq),
        "at": at,
        "answered": at + 0.1,
        "action": "CreateNetworkInterface",
        "caller": "A",
        "eni_id": None if error else eni,
        "node": "n1",
        "subnet_id": "subnet-1",
        "nodeeni_uid": uid,
        "instance_tag": instance,
        "error": error,
    }


def _deleted(eni: str, answered: float, error: str | None = None) -> dict[str, Any]:
    return {
        "seq": next(_seq),
        "at": answered - 0.1,
        "answered": answered,
        "action": "DeleteNetworkInterface",
        "caller": "A",
        "eni_id": eni,
        "error": error,
    }


def _acted(action: str, eni: str, at: float) -> dict[str, Any]:
    return {**_deleted(eni, at + 0.1), "action": action}


def test_one_slot_lived_in_turn_holds_no_duplicate() -> None:
    journal = [
        _made("eni-1", 1.0),
        _acted("AttachNetworkInterface", "eni-1", 1.5),
        _deleted("eni-1", 3.0),
        _made("eni-2", 3.2),  # after the delete was answered
        _deleted("eni-2", 4.0),
        _made("eni-3", 4.5),  # alive at the end
    ]
    assert overlapping(journal, uids={"u1"}) == set()
    found = lives(journal, uids={"u1"})
    assert [(e, life.born, life.died) for e, life in found.items()] == [
        ("eni-1", 1.0, 3.0),
        ("eni-2", 3.2, 4.0),
        ("eni-3", 4.5, None),
    ]


def test_a_create_while_the_slot_s_eni_lives_is_a_duplicate() -> None:
    journal = [
        _made("eni-1", 1.0),
        _made("eni-2", 2.0),  # eni-1 is still there: a duplicate, however short-lived
        _deleted("eni-2", 2.2),
        _made("eni-3", 2.95),  # arrived before eni-1's delete was answered
        _deleted("eni-1", 3.0),
        _deleted("eni-3", 4.0),
    ]
    assert overlapping(journal, uids={"u1"}) == {"eni-2", "eni-3"}
    # only ENIs first created from a journal position on
    assert overlapping(journal, uids={"u1"}, since=journal[3]["seq"]) == {"eni-3"}


def test_a_client_token_replay_is_the_same_eni() -> None:
    journal = [
        _made("eni-1", 1.0),
        _made("eni-1", 2.0),  # re-sent after a lost answer: EC2 hands it back
        _deleted("eni-1", 3.0),
        _made("", 3.5, error="RequestLimitExceeded"),  # refused: made nothing
    ]
    assert overlapping(journal, uids={"u1"}) == set()
    assert list(lives(journal, uids={"u1"})) == ["eni-1"]


def test_another_instance_or_another_nodeeni_is_another_slot() -> None:
    journal = [
        _made("eni-1", 1.0, instance="i-old"),
        _made("eni-2", 2.0, instance="i-new"),  # the node re-created on a new instance
        _made("eni-3", 2.5, uid="u2"),
        _made("eni-4", 2.6, uid="u2"),  # u2's duplicate
        _deleted("eni-1", 3.0),
    ]
    assert overlapping(journal, uids={"u1"}) == set()
    assert overlapping(journal, uids={"u1", "u2"}) == {"eni-4"}
    assert set(lives(journal, uids={"u1"})) == {"eni-1", "eni-2"}


def test_a_delete_that_failed_does_not_end_the_life() -> None:
    gone = "InvalidNetworkInterfaceID.NotFound"
    journal = [
        _made("eni-1", 1.0),
        _deleted("eni-1", 2.0, error="InvalidNetworkInterface.InUse"),  # still attached
        _made("eni-2", 2.5),
        _made("eni-3", 3.0),
        _deleted("eni-3", 3.5, error=gone),  # new: hidden by EC2's consistency window
        _acted("AttachNetworkInterface", "eni-3", 4.0),  # and there after all
        _made("eni-4", 5.0),
        _deleted("eni-4", 6.0),  # answered lost ...
        _deleted("eni-4", 6.5, error=gone),  # ... and sent again: gone
    ]
    found = lives(journal, uids={"u1"})
    assert (found["eni-1"].died, found["eni-3"].died, found["eni-4"].died) == (None, None, 6.0)
    assert overlapping(journal, uids={"u1"}) == {"eni-2", "eni-3", "eni-4"}
    # a delete answered NotFound with nothing after it: the ENI is gone
    alone = [_made("eni-5", 1.0), _deleted("eni-5", 2.0, error=gone), _made("eni-6", 2.5)]
    assert lives(alone, uids={"u1"})["eni-5"].died == 2.0
    assert overlapping(alone, uids={"u1"}) == set()


def test_acted_twice_names_enis_two_processes_touched_with_one_action() -> None:
    who = {"KA": "a1", "KB": "b1"}
    journal = [
        _call("DetachNetworkInterface", "KA", "eni-1"),
        _call("DeleteNetworkInterface", "KB", "eni-1"),  # a hand-over: fine
        _call("DetachNetworkInterface", "KA", "eni-2"),
        _call("DetachNetworkInterface", "KB", "eni-2"),  # both detached it
        _call("DeleteNetworkInterface", "KA", "eni-3"),
        _call("DeleteNetworkInterface", "test", "eni-3"),  # not a controller
    ]
    actions = {"DetachNetworkInterface", "DeleteNetworkInterface"}
    assert acted_twice(journal, actions=actions, who=who) == {
        "eni-2": {"DetachNetworkInterface": ["a1", "b1"]}
    }


def test_splits_unanswered_and_half_way() -> None:
    who = {"KA": "a1", "KB": "b1"}
    journal = [
        _call("CreateNetworkInterface", "KA", "eni-1", 1.0),
        _call("AttachNetworkInterface", "KB", "eni-1", 5.0),  # created, killed, attached
        _call("CreateNetworkInterface", "KA", "eni-2", 1.9),  # answer held at the kill
        _call("ModifyNetworkInterfaceAttribute", "KB", "eni-2", 6.0),
        _call("DetachNetworkInterface", "KB", "eni-2", 7.0),
    ]
    found = splits(journal, who)
    assert found == {"a1": {"Create|Attach": 1, "Create|Modify": 1}}
    assert half_way({"Create|Attach": 2, "Modify|Detach": 5, "Detach|Delete": 1}) == 3
    assert unanswered(journal, caller="KA", killed_at=2.0, answer_latency=0.15) == 1
    assert unanswered(journal, caller="KA", killed_at=1.5, answer_latency=0.15) == 1  # after
    assert access_key("a", 12) == "AKIACHAOSA0012"


def test_own_calls_leave_out_what_is_done_to_other_tests_enis() -> None:
    journal = [
        _create("A", "eni-1", "mine-1"),
        _call("AttachNetworkInterface", "A", "eni-1"),
        _call("DetachNetworkInterface", "A", "eni-old"),  # a leftover's cleanup
        _call("DeleteNetworkInterface", "A", "eni-old"),
        {**_create("A", "", "mine-2"), "error": "InsufficientFreeAddressesInSubnet"},
        _create("A", "eni-9", "someone-else"),
        _call("DeleteNetworkInterface", "test", "eni-1"),  # not a controller process
    ]
    kept = own_calls(journal, callers={"A"}, nodes={"mine-1", "mine-2"})
    assert [(e["action"], e["eni_id"]) for e in kept] == [
        ("CreateNetworkInterface", "eni-1"),
        ("AttachNetworkInterface", "eni-1"),
        ("CreateNetworkInterface", ""),
    ]


def _row(case: str, **details: Any) -> dict[str, Any]:
    return {
        "case": case,
        "seed": 1,
        "passed": True,
        "leaks": 0,
        "duplicates": 0,
        "converge_seconds": 2.5,
        "extra_mutating_calls": 0,
        "seconds": 80.0,
        "details": details,
    }


def test_report_sections_of_the_kill_and_failover_cases() -> None:
    kill = case_section(
        "kill",
        [
            _row(
                "kill",
                rollout_kills=20,
                teardown_kills=20,
                kills_mid_call=37,
                unanswered_at_kills=41,
                enis_half_way=300,
                create_replays=0,
                rollout_converge_seconds=51.2,
                first_call_after_spawn_p50=1.0,
            )
        ],
    )
    assert "| seed | passed | leaks | duplicates | converge (s) | extra mutating | kills |" in kill
    assert "| 1 | yes | 0 | 0 | 2.50 | 0 | 20 + 20 | 37 | 41 | 300 | 0 | 51.20 | 1.00 | 80.0 |" in (
        kill
    )
    failover = case_section(
        "failover",
        [
            _row(
                "failover",
                rollout_kills=3,
                teardown_kills=2,
                takeovers=[{"holder_change": 3.4, "first_call": 3.6}] * 2,
                takeovers_within_lease_plus_retry=2,
                unanswered_at_kills=3,
                enis_half_way=20,
                acted_twice={},
                rollout_converge_seconds=27.5,
            )
        ],
    )
    assert "| 3 + 2 | 3.40, 3.40 | 3.60, 3.60 | 2 / 2 | 3 | 20 | 0 | 27.50 | 80.0 |" in failover

"""The pure parts the kill and failover chaos cases judge by: the realism layer's
call journal (who called, about which ENI), the counts drawn from it, and the
report's sections for those cases. A wrong count here would let a duplicate or
a double detach pass unseen, so each is pinned on a small hand-made journal."""

from __future__ import annotations

from typing import Any

from bench.chaos_report import case_section
from tests.harness.invariants import acted_twice, create_replays, created_by_slot
from tests.harness.kills import access_key, half_way, own_calls, splits, unanswered
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
    assert (attach["attachment_id"], attach["instance_id"], attach["device_index"]) == (
        "eni-attach-1",
        "i-1",
        2,
    )
    assert [e["at"] for e in entries] == [0.0, 2.0, 3.0, 4.0, 5.0]
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

"""Unit tests for eni_controller.reconcile.status: conditions and the status merge patch."""

from __future__ import annotations

from typing import Any

import pytest

from eni_controller.aws.resources import ENIAttachment, Instance, NetworkInterface, Subnet
from eni_controller.model import (
    Attachment,
    AttachmentState,
    Condition,
    ConditionStatus,
    NodeENIStatus,
)
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.planner import (
    CreateAndAttach,
    NodeProblem,
    Plan,
    PlanInput,
    ProblemReason,
    SetDeleteOnTermination,
    Slot,
    plan,
)
from eni_controller.reconcile.status import (
    DEGRADED,
    READY,
    failure_conditions,
    plan_conditions,
    status_patch,
)
from eni_controller.reconcile.tags import eni_tags
from eni_controller.spec import NodeENISpec
from tests.harness.ec2world import AZ_A

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"
T2 = "2024-05-01T10:10:00Z"
SUBNET = "subnet-0aaaaaaaaaaaaaaa1"


def entry(n: int, status: AttachmentState = AttachmentState.ATTACHED, **changes: Any) -> Attachment:
    fields: dict[str, Any] = {
        "node_id": f"n{n}",
        "instance_id": f"i-0{n}",
        "eni_id": f"eni-000{n}",
        "attachment_id": f"eni-attach-000{n}",
        "subnet_id": SUBNET,
        "subnet_cidr": "10.0.1.0/24",
        "mac_address": f"0a:00:00:00:00:0{n}",
        "private_ip_address": f"10.0.1.{n}",
        "device_index": 1,
        "status": status,
    }
    fields.update(changes)
    return Attachment(**fields)


def problem(n: int, reason: ProblemReason = ProblemReason.AZ_MISMATCH) -> NodeProblem:
    return NodeProblem(node=f"n{n}", reason=reason, message=f"problem of n{n}")


def a_plan(
    *,
    attachments: tuple[Attachment, ...] = (),
    problems: tuple[NodeProblem, ...] = (),
    desired: int = 0,
    actions: int = 0,
) -> Plan:
    sub = Subnet(subnet_id=SUBNET, vpc_id="vpc-01", availability_zone=AZ_A, cidr="", name=None)
    return Plan(
        actions=tuple(
            CreateAndAttach(slot=Slot(node=f"x{i}", instance_id="i-09", subnet=sub, device_index=1))
            for i in range(actions)
        ),
        attachments=attachments,
        problems=problems,
        desired=desired,
    )


def applied(previous: NodeENIStatus, patch: dict[str, Any] | None) -> NodeENIStatus:
    """The status after the API server applied the merge patch (lists replace whole)."""
    if patch is None:
        return previous
    merged = {**previous.to_dict(), **patch["status"]}
    return NodeENIStatus.from_dict(merged)


# --- plan_conditions ------------------------------------------------------------------


def test_converged_plan_is_ready() -> None:
    conditions = plan_conditions(a_plan(attachments=(entry(1), entry(2)), desired=2), generation=3)
    assert conditions == [
        Condition(
            type=READY,
            status=ConditionStatus.TRUE,
            reason="Attached",
            message="2 of 2 ENIs attached",
            observed_generation=3,
        ),
        Condition(
            type=DEGRADED, status=ConditionStatus.FALSE, reason="AsExpected", observed_generation=3
        ),
    ]


def test_nothing_desired_and_nothing_to_do_is_ready() -> None:
    conditions = plan_conditions(a_plan(), generation=1)
    assert [(c.type, c.status, c.reason, c.message) for c in conditions] == [
        (READY, ConditionStatus.TRUE, "Attached", "0 of 0 ENIs attached"),
        (DEGRADED, ConditionStatus.FALSE, "AsExpected", None),
    ]


@pytest.mark.parametrize(
    ("the_plan", "message"),
    [
        pytest.param(a_plan(desired=2, actions=2), "0 of 2 ENIs attached", id="creating"),
        pytest.param(
            a_plan(attachments=(entry(1), entry(2, AttachmentState.ATTACHING)), desired=2),
            "1 of 2 ENIs attached",
            id="attaching",
        ),
        pytest.param(
            a_plan(attachments=(entry(1),), desired=1, actions=1),
            "1 of 1 ENIs attached",
            id="attached-with-pending-action",
        ),
    ],
)
def test_unconverged_plan_is_progressing(the_plan: Plan, message: str) -> None:
    assert plan_conditions(the_plan, generation=7) == [
        Condition(
            type=READY,
            status=ConditionStatus.FALSE,
            reason="Progressing",
            message=message,
            observed_generation=7,
        ),
        Condition(
            type=DEGRADED, status=ConditionStatus.FALSE, reason="AsExpected", observed_generation=7
        ),
    ]


def test_problems_make_ready_false_and_degraded_true_with_first_reason() -> None:
    problems = (
        problem(1, ProblemReason.ATTACHMENT_LIMIT_EXCEEDED),
        problem(2, ProblemReason.AZ_MISMATCH),
    )
    # converged for the nodes that can be served, but problems win
    conditions = plan_conditions(
        a_plan(attachments=(entry(3),), problems=problems, desired=1), generation=4
    )
    message = "1 of 1 ENIs attached; problem of n1; problem of n2"
    assert conditions == [
        Condition(
            type=READY,
            status=ConditionStatus.FALSE,
            reason="AttachmentLimitExceeded",
            message=message,
            observed_generation=4,
        ),
        Condition(
            type=DEGRADED,
            status=ConditionStatus.TRUE,
            reason="AttachmentLimitExceeded",
            message=message,
            observed_generation=4,
        ),
    ]


@pytest.mark.parametrize(
    ("count", "suffix"),
    [(1, ""), (5, ""), (6, " (+1 more)"), (9, " (+4 more)")],
)
def test_problem_list_is_capped(count: int, suffix: str) -> None:
    problems = tuple(problem(n) for n in range(1, count + 1))
    conditions = plan_conditions(a_plan(problems=problems), generation=1)
    listed = "; ".join(f"problem of n{n}" for n in range(1, min(count, 5) + 1))
    expected = f"0 of 0 ENIs attached; {listed}{suffix}"
    assert [c.message for c in conditions] == [expected, expected]
    assert [c.reason for c in conditions] == ["AZMismatch", "AZMismatch"]


def test_failure_conditions() -> None:
    assert failure_conditions(reason="InvalidSpec", message="spec.mtu: bad", generation=2) == [
        Condition(
            type=READY,
            status=ConditionStatus.FALSE,
            reason="InvalidSpec",
            message="spec.mtu: bad",
            observed_generation=2,
        ),
        Condition(
            type=DEGRADED,
            status=ConditionStatus.TRUE,
            reason="InvalidSpec",
            message="spec.mtu: bad",
            observed_generation=2,
        ),
    ]


# --- status_patch ---------------------------------------------------------------------


def ready(generation: int = 1, *, desired: int = 1) -> list[Condition]:
    return plan_conditions(
        a_plan(attachments=tuple(entry(n) for n in range(1, desired + 1)), desired=desired),
        generation=generation,
    )


def test_first_patch_from_empty_status() -> None:
    patch = status_patch(
        NodeENIStatus(),
        conditions=ready(3, desired=2),
        generation=3,
        now=T0,
        attachments=[entry(2), entry(1, AttachmentState.ATTACHING)],
        desired=2,
    )
    assert patch == {
        "status": {
            "attachments": [
                {
                    "nodeID": "n1",
                    "instanceID": "i-01",
                    "eniID": "eni-0001",
                    "attachmentID": "eni-attach-0001",
                    "subnetID": SUBNET,
                    "subnetCIDR": "10.0.1.0/24",
                    "macAddress": "0a:00:00:00:00:01",
                    "privateIPAddress": "10.0.1.1",
                    "deviceIndex": 1,
                    "status": "attaching",
                    "lastUpdated": T0,
                },
                {
                    "nodeID": "n2",
                    "instanceID": "i-02",
                    "eniID": "eni-0002",
                    "attachmentID": "eni-attach-0002",
                    "subnetID": SUBNET,
                    "subnetCIDR": "10.0.1.0/24",
                    "macAddress": "0a:00:00:00:00:02",
                    "privateIPAddress": "10.0.1.2",
                    "deviceIndex": 1,
                    "status": "attached",
                    "lastUpdated": T0,
                },
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Attached",
                    "message": "2 of 2 ENIs attached",
                    "lastTransitionTime": T0,
                    "observedGeneration": 3,
                },
                {
                    "type": "Degraded",
                    "status": "False",
                    "reason": "AsExpected",
                    "lastTransitionTime": T0,
                    "observedGeneration": 3,
                },
            ],
            "observedGeneration": 3,
            "attachedCount": 1,
            "desiredCount": 2,
        }
    }


def test_nothing_changed_writes_nothing() -> None:
    attachments = [entry(1), entry(2)]
    first = status_patch(
        NodeENIStatus(),
        conditions=ready(desired=2),
        generation=1,
        now=T0,
        attachments=attachments,
        desired=2,
    )
    assert first is not None
    previous = applied(NodeENIStatus(), first)
    again = status_patch(
        previous,
        conditions=ready(desired=2),
        generation=1,
        now=T1,
        attachments=attachments,
        desired=2,
    )
    assert again is None


def test_attachments_are_sorted_so_order_alone_is_no_change() -> None:
    previous = applied(
        NodeENIStatus(),
        status_patch(
            NodeENIStatus(),
            conditions=ready(desired=2),
            generation=1,
            now=T0,
            attachments=[entry(1), entry(2)],
            desired=2,
        ),
    )
    again = status_patch(
        previous,
        conditions=ready(desired=2),
        generation=1,
        now=T1,
        attachments=[entry(2), entry(1)],
        desired=2,
    )
    assert again is None


def test_last_updated_moves_only_for_the_changed_attachment() -> None:
    previous = applied(
        NodeENIStatus(),
        status_patch(
            NodeENIStatus(),
            conditions=ready(desired=2),
            generation=1,
            now=T0,
            attachments=[entry(1, AttachmentState.ATTACHING), entry(2)],
            desired=2,
        ),
    )
    patch = status_patch(
        previous,
        conditions=ready(desired=2),
        generation=1,
        now=T1,
        attachments=[entry(1), entry(2), entry(3)],
        desired=3,
    )
    assert patch is not None
    stamps = {a["eniID"]: a["lastUpdated"] for a in patch["status"]["attachments"]}
    assert stamps == {"eni-0001": T1, "eni-0002": T0, "eni-0003": T1}
    assert patch["status"]["attachedCount"] == 3
    assert patch["status"]["desiredCount"] == 3


def test_incoming_last_updated_does_not_count_as_a_change() -> None:
    previous = NodeENIStatus(
        attachments=(entry(1, last_updated=T0),),
        conditions=tuple(
            Condition(
                type=c.type,
                status=c.status,
                reason=c.reason,
                message=c.message,
                last_transition_time=T0,
                observed_generation=c.observed_generation,
            )
            for c in ready()
        ),
        observed_generation=1,
        attached_count=1,
        desired_count=1,
    )
    # the caller passes an entry without (or with a stale) lastUpdated: kept as T0
    for incoming in (entry(1), entry(1, last_updated="1999-01-01T00:00:00Z")):
        assert (
            status_patch(
                previous,
                conditions=ready(),
                generation=1,
                now=T2,
                attachments=[incoming],
                desired=1,
            )
            is None
        )


def test_condition_transition_time_kept_while_status_holds_and_set_when_it_flips() -> None:
    progressing = plan_conditions(a_plan(desired=1, actions=1), generation=1)
    previous = applied(
        NodeENIStatus(),
        status_patch(
            NodeENIStatus(), conditions=progressing, generation=1, now=T0, attachments=[], desired=1
        ),
    )
    # same statuses, new message: patch written, transition times kept
    halfway = plan_conditions(
        a_plan(attachments=(entry(1, AttachmentState.ATTACHING),), desired=1), generation=1
    )
    patch = status_patch(
        previous,
        conditions=halfway,
        generation=1,
        now=T1,
        attachments=[entry(1, AttachmentState.ATTACHING)],
        desired=1,
    )
    assert patch is not None
    assert [
        (c["type"], c["status"], c["lastTransitionTime"]) for c in patch["status"]["conditions"]
    ] == [("Ready", "False", T0), ("Degraded", "False", T0)]
    previous = applied(previous, patch)
    # Ready flips to True: its time moves, Degraded's does not
    patch = status_patch(
        previous, conditions=ready(), generation=1, now=T2, attachments=[entry(1)], desired=1
    )
    assert patch is not None
    assert [
        (c["type"], c["status"], c["lastTransitionTime"]) for c in patch["status"]["conditions"]
    ] == [("Ready", "True", T2), ("Degraded", "False", T0)]


def test_degraded_flip_moves_its_transition_time() -> None:
    previous = applied(
        NodeENIStatus(),
        status_patch(
            NodeENIStatus(), conditions=ready(), generation=1, now=T0, attachments=[entry(1)]
        ),
    )
    degraded = plan_conditions(
        a_plan(attachments=(entry(1),), problems=(problem(2),), desired=1), generation=1
    )
    patch = status_patch(
        previous, conditions=degraded, generation=1, now=T1, attachments=[entry(1)]
    )
    assert patch is not None
    assert [
        (c["type"], c["status"], c["reason"], c["lastTransitionTime"])
        for c in patch["status"]["conditions"]
    ] == [("Ready", "False", "AZMismatch", T1), ("Degraded", "True", "AZMismatch", T1)]
    assert patch["status"]["attachments"][0]["lastUpdated"] == T0


def test_previous_condition_without_transition_time_gets_now() -> None:
    previous = NodeENIStatus(
        conditions=(Condition(type=READY, status=ConditionStatus.TRUE, reason="Attached"),)
    )
    patch = status_patch(previous, conditions=ready(), generation=1, now=T1, attachments=[])
    assert patch is not None
    assert [c["lastTransitionTime"] for c in patch["status"]["conditions"]] == [T1, T1]


def test_the_previous_list_given_again_is_kept_as_it_is() -> None:
    # an invalid spec: EC2 not asked, the list (with the node agent's fields) stays as it is
    kept = (
        entry(1, last_updated=T0, dpdk_bound=True, dpdk_pci_address="0000:00:06.0"),
        entry(2, AttachmentState.ATTACHING, last_updated=T0),
    )
    previous = NodeENIStatus(
        attachments=kept, observed_generation=1, attached_count=1, desired_count=2
    )
    conditions = failure_conditions(reason="InvalidSpec", message="bad", generation=2)
    patch = status_patch(previous, conditions=conditions, generation=2, now=T1, attachments=kept)
    assert patch is not None
    status = patch["status"]
    assert status["attachments"] == [a.to_dict() for a in kept]
    assert status["attachedCount"] == 1
    assert status["desiredCount"] == 2  # desired=None keeps the previous count
    assert status["observedGeneration"] == 2
    assert [(c["reason"], c["lastTransitionTime"]) for c in status["conditions"]] == [
        ("InvalidSpec", T1),
        ("InvalidSpec", T1),
    ]
    # the same invalid spec reconciled again: nothing to write
    again = applied(previous, patch)
    assert (
        status_patch(
            again, conditions=conditions, generation=2, now=T2, attachments=again.attachments
        )
        is None
    )


def test_generation_change_alone_is_written() -> None:
    previous = applied(
        NodeENIStatus(),
        status_patch(
            NodeENIStatus(),
            conditions=ready(1),
            generation=1,
            now=T0,
            attachments=[entry(1)],
            desired=1,
        ),
    )
    patch = status_patch(
        previous, conditions=ready(2), generation=2, now=T1, attachments=[entry(1)], desired=1
    )
    assert patch is not None
    assert patch["status"]["observedGeneration"] == 2
    assert [c["observedGeneration"] for c in patch["status"]["conditions"]] == [2, 2]
    assert [c["lastTransitionTime"] for c in patch["status"]["conditions"]] == [T0, T0]
    assert patch["status"]["attachments"][0]["lastUpdated"] == T0


def test_desired_count_absent_when_never_known() -> None:
    patch = status_patch(NodeENIStatus(), conditions=ready(), generation=1, now=T0, attachments=[])
    assert patch is not None
    assert "desiredCount" not in patch["status"]
    assert patch["status"]["attachments"] == []
    assert patch["status"]["attachedCount"] == 0


def test_desired_zero_is_written() -> None:
    previous = NodeENIStatus(desired_count=3)
    patch = status_patch(
        previous, conditions=ready(), generation=1, now=T0, attachments=[], desired=0
    )
    assert patch is not None
    assert patch["status"]["desiredCount"] == 0


def test_attached_count_counts_only_attached() -> None:
    patch = status_patch(
        NodeENIStatus(),
        conditions=ready(),
        generation=1,
        now=T0,
        attachments=[
            entry(1),
            entry(2, AttachmentState.ATTACHING),
            entry(3, AttachmentState.DETACHING),
            entry(4, AttachmentState.FAILED),
            entry(5),
        ],
        desired=5,
    )
    assert patch is not None
    assert patch["status"]["attachedCount"] == 2


def test_dropped_attachment_is_removed_from_the_list() -> None:
    previous = applied(
        NodeENIStatus(),
        status_patch(
            NodeENIStatus(),
            conditions=ready(),
            generation=1,
            now=T0,
            attachments=[entry(1), entry(2)],
            desired=2,
        ),
    )
    patch = status_patch(
        previous, conditions=ready(), generation=1, now=T1, attachments=[entry(2)], desired=2
    )
    assert patch is not None
    assert [a["eniID"] for a in patch["status"]["attachments"]] == ["eni-0002"]
    assert patch["status"]["attachments"][0]["lastUpdated"] == T0


# --- planner and status together: the steady state ------------------------------------


def test_steady_state_reconcile_writes_nothing_and_keeps_node_agent_fields() -> None:
    # hard case 16 + "no status write on a reconcile where nothing changed"
    sub = Subnet(
        subnet_id=SUBNET,
        vpc_id="vpc-01",
        availability_zone=AZ_A,
        cidr="10.0.1.0/24",
        name=None,
    )
    eni = NetworkInterface(
        eni_id="eni-0001",
        subnet_id=SUBNET,
        vpc_id="vpc-01",
        availability_zone=AZ_A,
        status="in-use",
        mac_address="0a:00:00:00:00:01",
        private_ip_address="10.0.1.1",
        description="",
        security_group_ids=("sg-0123456789abcdef0",),
        tags=eni_tags(
            nodeeni="multus",
            uid="uid-1",
            node="n1",
            instance_id="i-01",
            subnet_id=SUBNET,
            cluster_name=None,
        ),
        attachment=ENIAttachment(
            attachment_id="eni-attach-0001",
            instance_id="i-01",
            device_index=1,
            status="attached",
            delete_on_termination=True,
        ),
    )
    instance = Instance(
        instance_id="i-01",
        availability_zone=AZ_A,
        state="running",
        instance_type="m5.large",
        vpc_id="vpc-01",
        occupied_device_indexes=frozenset({0, 1}),
    )
    node = NodeView(name="n1", labels={"ng": "multus"}, instance_id="i-01", availability_zone=AZ_A)
    spec = NodeENISpec(
        node_selector={"ng": "multus"},
        subnet_ids=(SUBNET,),
        security_group_ids=("sg-0123456789abcdef0",),
        mtu=9001,
    )

    def reconcile(previous: NodeENIStatus, now: str) -> dict[str, Any] | None:
        result = plan(
            PlanInput(
                nodeeni="multus",
                spec=spec,
                subnets=(sub,),
                security_group_ids=spec.security_group_ids,
                nodes=(node,),
                instances={"i-01": instance},
                max_enis={"m5.large": 3},
                enis=(eni,),
                previous=previous.attachments,
            )
        )
        return status_patch(
            previous,
            conditions=plan_conditions(result, generation=1),
            generation=1,
            now=now,
            attachments=result.attachments,
            desired=result.desired,
        )

    first = reconcile(NodeENIStatus(), T0)
    assert first is not None
    written = first["status"]
    # the node agent then writes its fields into the attachment
    agent_item = {
        **written["attachments"][0],
        "dpdkBound": True,
        "dpdkDriver": "vfio-pci",
        "dpdkResourceName": "intel.com/sriov_dpdk",
        "dpdkPCIAddress": "0000:00:06.0",
    }
    previous = NodeENIStatus.from_dict({**written, "attachments": [agent_item]})
    assert reconcile(previous, T1) is None
    assert reconcile(previous, T2) is None

    # an MTU edit changes the entry: written, agent fields intact, lastUpdated moves
    spec = NodeENISpec(
        node_selector={"ng": "multus"},
        subnet_ids=(SUBNET,),
        security_group_ids=("sg-0123456789abcdef0",),
        mtu=1500,
    )
    patch = reconcile(previous, T2)
    assert patch is not None
    assert patch["status"]["attachments"] == [{**agent_item, "mtu": 1500, "lastUpdated": T2}]


def test_a_pending_attribute_change_leaves_the_enis_ready() -> None:
    attached = entry(1)
    change = SetDeleteOnTermination(
        slot=Slot(
            node="n1",
            instance_id="i-09",
            subnet=Subnet(
                subnet_id=SUBNET,
                vpc_id="vpc-01",
                availability_zone=AZ_A,
                cidr="",
                name=None,
            ),
            device_index=1,
        ),
        eni_id=attached.eni_id,
        attachment_id="eni-attach-1",
        value=True,
    )
    the_plan = Plan(actions=(change,), attachments=(attached,), problems=(), desired=1)
    assert the_plan.actions  # the change is still to be made: checked again soon
    (ready, _) = plan_conditions(the_plan, generation=1)
    assert (ready.status, ready.reason) == (ConditionStatus.TRUE, "Attached")

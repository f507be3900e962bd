"""Unit tests for eni_controller.reconcile.planner: tables of inputs and expected plans.

The planner is a pure function, so every case builds typed inputs (subnets,
instances, ENIs, nodes, a spec) and compares the whole plan it returns.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from eni_controller.aws.resources import (
    ENIAttachment,
    Instance,
    NetworkInterface,
    SecurityGroup,
    Subnet,
)
from eni_controller.model import Attachment, AttachmentState
from eni_controller.reconcile import planner
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.planner import (
    Attach,
    CreateAndAttach,
    NodeProblem,
    Plan,
    PlanInput,
    ProblemReason,
    SetDeleteOnTermination,
    Slot,
    plan,
)
from eni_controller.reconcile.tags import eni_tags
from eni_controller.spec import NodeENISpec
from tests.harness.ec2world import AZ_A, AZ_B
from tests.samples import NODEENI_UID as UID

NODEENI = "multus"
AZ_C = "us-east-1c"
TYPE = "m5.large"
SELECTOR = {"ng": "multus"}

SUBNET_A1 = "subnet-0aaaaaaaaaaaaaaa1"
SUBNET_A2 = "subnet-0aaaaaaaaaaaaaaa2"
SUBNET_B1 = "subnet-0bbbbbbbbbbbbbbb1"
SUBNET_B2 = "subnet-0bbbbbbbbbbbbbbb2"


# --- constructors ---------------------------------------------------------------------


def _converged(result: Plan) -> bool:
    """Every wanted ENI attached and nothing left to do."""
    return result.ready and not result.actions


def subnet(subnet_id: str, az: str, cidr: str) -> Subnet:
    return Subnet(subnet_id=subnet_id, vpc_id="vpc-01", availability_zone=az, cidr=cidr, name=None)


SA1 = subnet(SUBNET_A1, AZ_A, "10.0.1.0/24")
SA2 = subnet(SUBNET_A2, AZ_A, "10.0.2.0/24")
SB1 = subnet(SUBNET_B1, AZ_B, "10.0.11.0/24")
SB2 = subnet(SUBNET_B2, AZ_B, "10.0.12.0/24")


def instance(
    instance_id: str,
    az: str = AZ_A,
    *,
    state: str = "running",
    instance_type: str = TYPE,
    occupied: Sequence[int] = (0,),
) -> Instance:
    return Instance(
        instance_id=instance_id,
        availability_zone=az,
        state=state,
        instance_type=instance_type,
        vpc_id="vpc-01",
        occupied_device_indexes=frozenset(occupied),
    )


def node(
    name: str, instance_id: str, az: str = AZ_A, labels: Mapping[str, str] | None = None
) -> NodeView:
    return NodeView(
        name=name,
        labels=dict(SELECTOR) if labels is None else labels,
        instance_id=instance_id,
        availability_zone=az,
    )


def api_node(name: str, provider_id: str | None, labels: Mapping[str, str]) -> NodeView:
    raw: dict[str, Any] = {"metadata": {"name": name, "labels": dict(labels)}, "spec": {}}
    if provider_id is not None:
        raw["spec"]["providerID"] = provider_id
    return NodeView.from_api(raw)


def spec(**changes: Any) -> NodeENISpec:
    fields: dict[str, Any] = {
        "node_selector": SELECTOR,
        "subnet_ids": (SUBNET_A1,),
        "security_group_ids": ("sg-0123456789abcdef0",),
    }
    fields.update(changes)
    return NodeENISpec(**fields)


def eni(
    eni_id: str,
    *,
    node_name: str,
    instance_id: str,
    sub: Subnet,
    attached_to: str | None = None,
    device_index: int = 1,
    attach_status: str = "attached",
    delete_on_termination: bool = True,
    uid: str = UID,
) -> NetworkInterface:
    """An ENI tagged as the controller tags it; attached to `attached_to` if given."""
    attachment = (
        None
        if attached_to is None
        else ENIAttachment(
            attachment_id=f"eni-attach-{eni_id.removeprefix('eni-')}",
            instance_id=attached_to,
            device_index=device_index,
            status=attach_status,
            delete_on_termination=delete_on_termination,
        )
    )
    return NetworkInterface(
        eni_id=eni_id,
        subnet_id=sub.subnet_id,
        vpc_id="vpc-01",
        availability_zone=sub.availability_zone,
        status="available" if attachment is None else "in-use",
        mac_address=f"0a:00:00:00:00:{eni_id[-2:]}",
        private_ip_address=f"10.0.0.{int(eni_id[-2:], 16)}",
        description="",
        security_group_ids=("sg-0123456789abcdef0",),
        tags=eni_tags(
            nodeeni=NODEENI,
            uid=uid,
            node=node_name,
            instance_id=instance_id,
            subnet_id=sub.subnet_id,
            cluster_name=None,
        ),
        attachment=attachment,
    )


def plan_input(
    *,
    nodes: Sequence[NodeView],
    instances: Sequence[Instance],
    subnets: Sequence[Subnet] = (SA1,),
    nodeeni_spec: NodeENISpec | None = None,
    max_enis: Mapping[str, int] | None = None,
    enis: Sequence[NetworkInterface] = (),
    previous: Sequence[Attachment] = (),
) -> PlanInput:
    the_spec = (
        spec(subnet_ids=tuple(s.subnet_id for s in subnets))
        if nodeeni_spec is None
        else nodeeni_spec
    )
    return PlanInput(
        nodeeni=NODEENI,
        spec=the_spec,
        security_group_ids=the_spec.security_group_ids,
        subnets=tuple(subnets),
        nodes=tuple(nodes),
        instances={i.instance_id: i for i in instances},
        max_enis={} if max_enis is None else max_enis,
        enis=tuple(enis),
        previous=tuple(previous),
    )


def slot(node_name: str, instance_id: str, sub: Subnet, device_index: int) -> Slot:
    return Slot(node=node_name, instance_id=instance_id, subnet=sub, device_index=device_index)


def create(node_name: str, instance_id: str, sub: Subnet, device_index: int) -> CreateAndAttach:
    return CreateAndAttach(slot=slot(node_name, instance_id, sub, device_index))


def status_of(
    e: NetworkInterface,
    node_name: str,
    sub: Subnet,
    state: AttachmentState = AttachmentState.ATTACHED,
    *,
    mtu: int | None = None,
) -> Attachment:
    """The status entry the planner should write for an attached ENI (nothing carried)."""
    assert e.attachment is not None
    return Attachment(
        node_id=node_name,
        instance_id=e.attachment.instance_id,
        eni_id=e.eni_id,
        attachment_id=e.attachment.attachment_id,
        subnet_id=sub.subnet_id,
        subnet_cidr=sub.cidr,
        mac_address=e.mac_address,
        private_ip_address=e.private_ip_address,
        device_index=e.attachment.device_index,
        mtu=mtu,
        status=state,
    )


# --- fan-out over nodes and subnets ---------------------------------------------------


@pytest.mark.parametrize(("device_index", "wanted"), [(1, (1, 2)), (2, (2, 3)), (5, (5, 6))])
def test_three_nodes_two_subnets_nothing_exists(device_index: int, wanted: tuple[int, int]) -> None:
    nodes = [node("n3", "i-03"), node("n1", "i-01"), node("n2", "i-02")]  # unsorted on purpose
    result = plan(
        plan_input(
            nodes=nodes,
            instances=[instance("i-01"), instance("i-02"), instance("i-03")],
            subnets=[SA1, SA2],
            nodeeni_spec=spec(subnet_ids=(SUBNET_A1, SUBNET_A2), device_index=device_index),
            max_enis={TYPE: 3},
        )
    )
    first, second = wanted
    assert result == Plan(
        actions=(
            create("n1", "i-01", SA1, first),
            create("n1", "i-01", SA2, second),
            create("n2", "i-02", SA1, first),
            create("n2", "i-02", SA2, second),
            create("n3", "i-03", SA1, first),
            create("n3", "i-03", SA2, second),
        ),
        attachments=(),
        problems=(),
        desired=6,
    )
    assert _converged(result) is False


def test_each_node_gets_only_its_az_subnets_and_keeps_list_position() -> None:
    # list: [a1 (1a), b1 (1b), a2 (1a)]: b1 is the only 1b subnet but sits at position 1
    result = plan(
        plan_input(
            nodes=[node("na", "i-0a", AZ_A), node("nb", "i-0b", AZ_B)],
            instances=[instance("i-0a", AZ_A), instance("i-0b", AZ_B)],
            subnets=[SA1, SB1, SA2],
        )
    )
    assert result.actions == (
        create("na", "i-0a", SA1, 1),
        create("na", "i-0a", SA2, 3),
        create("nb", "i-0b", SB1, 2),
    )
    assert result.problems == ()
    assert result.desired == 3


def test_subnet_only_at_second_position_gets_base_plus_one() -> None:
    result = plan(
        plan_input(
            nodes=[node("nb", "i-0b", AZ_B)],
            instances=[instance("i-0b", AZ_B)],
            subnets=[SA1, SB1],
            nodeeni_spec=spec(subnet_ids=(SUBNET_A1, SUBNET_B1), device_index=2),
        )
    )
    assert result.actions == (create("nb", "i-0b", SB1, 3),)
    assert result.desired == 1


def test_no_subnet_in_node_az_is_az_mismatch_without_action() -> None:
    result = plan(
        plan_input(
            nodes=[node("na", "i-0a", AZ_A), node("nc", "i-0c", AZ_C)],
            instances=[instance("i-0a", AZ_A), instance("i-0c", AZ_C)],
            subnets=[SA1, SB1],
        )
    )
    assert result == Plan(
        actions=(create("na", "i-0a", SA1, 1),),
        attachments=(),
        problems=(
            NodeProblem(
                node="nc",
                reason=ProblemReason.AZ_MISMATCH,
                message=(
                    f"node nc is in {AZ_C}; no listed subnet is: "
                    f"{SUBNET_A1} ({AZ_A}), {SUBNET_B1} ({AZ_B})"
                ),
            ),
        ),
        desired=1,
    )


def test_az_mismatch_with_an_old_eni_of_ours_creates_nothing() -> None:
    # hard case 8: a wrong-AZ subnet never leads to create/attach churn
    old = eni("eni-000b", node_name="nc", instance_id="i-0c", sub=SB1)
    result = plan(
        plan_input(
            nodes=[node("nc", "i-0c", AZ_C)],
            instances=[instance("i-0c", AZ_C)],
            subnets=[SB1],
            enis=[old],
        )
    )
    assert result.actions == ()
    assert result.attachments == ()
    assert [p.reason for p in result.problems] == [ProblemReason.AZ_MISMATCH]
    assert result.desired == 0


# --- which nodes count ----------------------------------------------------------------


def test_nodes_not_matching_selector_or_not_on_ec2_are_ignored() -> None:
    nodes = [
        api_node("match", "aws:///us-east-1a/i-01", {"ng": "multus", "extra": "x"}),
        api_node("other-value", "aws:///us-east-1a/i-02", {"ng": "other"}),
        api_node("no-label", "aws:///us-east-1a/i-03", {}),
        api_node("empty-provider", "", {"ng": "multus"}),
        api_node("kind", "kind://docker/kind/kind-worker", {"ng": "multus"}),
        api_node("no-provider", None, {"ng": "multus"}),
    ]
    result = plan(
        plan_input(
            nodes=nodes,
            instances=[instance("i-01"), instance("i-02"), instance("i-03")],
        )
    )
    assert result == Plan(
        actions=(create("match", "i-01", SA1, 1),), attachments=(), problems=(), desired=1
    )


def test_empty_selector_matches_every_ec2_node_and_skips_the_rest() -> None:
    # hard case 18: non-AWS nodes in the cluster are neither served nor reported
    nodes = [
        api_node("a", "aws:///us-east-1a/i-01", {}),
        api_node("b", "aws:///us-east-1a/i-02", {"ng": "other"}),
        api_node("c", "", {}),
        api_node("d", "kind://docker/kind/kind-worker", {}),
        api_node("e", None, {"role": "x"}),
    ]
    result = plan(
        plan_input(
            nodes=nodes,
            instances=[instance("i-01"), instance("i-02")],
            nodeeni_spec=spec(node_selector={}),
        )
    )
    assert result == Plan(
        actions=(create("a", "i-01", SA1, 1), create("b", "i-02", SA1, 1)),
        attachments=(),
        problems=(),
        desired=2,
    )


def test_missing_instance_is_instance_not_found() -> None:
    result = plan(
        plan_input(nodes=[node("n1", "i-01"), node("n2", "i-02")], instances=[instance("i-02")])
    )
    assert result == Plan(
        actions=(create("n2", "i-02", SA1, 1),),
        attachments=(),
        problems=(
            NodeProblem(
                node="n1",
                reason=ProblemReason.INSTANCE_NOT_FOUND,
                message="instance i-01 of node n1 not found in EC2",
            ),
        ),
        desired=1,
    )


@pytest.mark.parametrize("state", ["terminated", "shutting-down"])
def test_gone_instance_creates_nothing_and_its_enis_go_to_cleanup(state: str) -> None:
    # hard case 12: nothing is created for a terminating instance; its ENIs are cleaned up
    attached = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", state=state)],
            enis=[attached],
        )
    )
    assert result == Plan(actions=(), attachments=(), problems=(), desired=0, stale=(attached,))


@pytest.mark.parametrize("state", ["pending", "running", "stopping", "stopped"])
def test_instance_not_gone_is_served(state: str) -> None:
    result = plan(plan_input(nodes=[node("n1", "i-01")], instances=[instance("i-01", state=state)]))
    assert result.actions == (create("n1", "i-01", SA1, 1),)
    assert result.desired == 1


# --- ENIs that already exist ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ec2_status", "expected"),
    [
        ("attached", AttachmentState.ATTACHED),
        ("attaching", AttachmentState.ATTACHING),
        ("detaching", AttachmentState.DETACHING),
    ],
)
def test_attached_eni_of_ours_needs_no_action(ec2_status: str, expected: AttachmentState) -> None:
    # hard case 2: attached before the crash, status never written -> adopted as is
    attached = eni(
        "eni-0001",
        node_name="n1",
        instance_id="i-01",
        sub=SA1,
        attached_to="i-01",
        attach_status=ec2_status,
    )
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            nodeeni_spec=spec(subnet_ids=(SUBNET_A1,), mtu=9001),
            max_enis={TYPE: 2},  # at the limit, but the slot is already filled
            enis=[attached],
        )
    )
    assert result == Plan(
        actions=(),
        attachments=(
            Attachment(
                node_id="n1",
                instance_id="i-01",
                eni_id="eni-0001",
                attachment_id="eni-attach-0001",
                subnet_id=SUBNET_A1,
                subnet_cidr="10.0.1.0/24",
                mac_address="0a:00:00:00:00:01",
                private_ip_address="10.0.0.1",
                device_index=1,
                mtu=9001,
                status=expected,
            ),
        ),
        problems=(),
        desired=1,
    )
    assert _converged(result) is (expected is AttachmentState.ATTACHED)


def test_attached_at_another_index_is_reported_as_really_used() -> None:
    # hard case 7: the allocator put it on 3 because 1 was taken by other software
    attached = eni(
        "eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01", device_index=3
    )
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1, 3))],
            enis=[attached],
        )
    )
    assert result.actions == ()
    assert result.attachments == (status_of(attached, "n1", SA1),)
    assert result.attachments[0].device_index == 3
    assert _converged(result) is True


@pytest.mark.parametrize(("on_attachment", "in_spec"), [(True, False), (False, True)])
def test_delete_on_termination_differing_from_spec_is_set(
    on_attachment: bool, in_spec: bool
) -> None:
    attached = eni(
        "eni-0001",
        node_name="n1",
        instance_id="i-01",
        sub=SA1,
        attached_to="i-01",
        delete_on_termination=on_attachment,
    )
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            nodeeni_spec=spec(delete_on_termination=in_spec),
            enis=[attached],
        )
    )
    assert result.actions == (
        SetDeleteOnTermination(
            slot=slot("n1", "i-01", SA1, 1),
            eni_id="eni-0001",
            attachment_id="eni-attach-0001",
            value=in_spec,
        ),
    )
    assert result.attachments == (status_of(attached, "n1", SA1),)
    assert _converged(result) is False


@pytest.mark.parametrize("value", [True, False])
def test_delete_on_termination_matching_spec_needs_nothing(value: bool) -> None:
    attached = eni(
        "eni-0001",
        node_name="n1",
        instance_id="i-01",
        sub=SA1,
        attached_to="i-01",
        delete_on_termination=value,
    )
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            nodeeni_spec=spec(delete_on_termination=value),
            enis=[attached],
        )
    )
    assert result.actions == ()
    assert _converged(result) is True


def test_available_eni_of_ours_is_adopted_not_duplicated() -> None:
    # hard case 1: created, crashed before attach -> attach that ENI, create nothing
    available = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1)
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01")],
            subnets=[SA1, SA2],
            enis=[available],
        )
    )
    assert result == Plan(
        actions=(
            Attach(slot=slot("n1", "i-01", SA1, 1), eni_id="eni-0001"),
            create("n1", "i-01", SA2, 2),
        ),
        attachments=(),
        problems=(),
        desired=2,
    )


def test_attached_eni_wins_over_a_spare_available_one_for_the_same_slot() -> None:
    attached = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    spare = eni("eni-0002", node_name="n1", instance_id="i-01", sub=SA1)
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            enis=[spare, attached],
        )
    )
    assert result.actions == ()
    assert result.attachments == (status_of(attached, "n1", SA1),)


def test_two_available_enis_for_one_slot_attach_only_one() -> None:
    first = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1)
    second = eni("eni-0002", node_name="n1", instance_id="i-01", sub=SA1)
    result = plan(
        plan_input(nodes=[node("n1", "i-01")], instances=[instance("i-01")], enis=[first, second])
    )
    assert result.actions == (Attach(slot=slot("n1", "i-01", SA1, 1), eni_id="eni-0001"),)


@pytest.mark.parametrize("old_attached_to", [None, "i-0old"])
def test_node_name_reused_by_new_instance_gets_a_new_eni(old_attached_to: str | None) -> None:
    # hard case 13: the old instance's ENI (tagged for the same node name) is stale
    stale = eni(
        "eni-0001", node_name="n1", instance_id="i-0old", sub=SA1, attached_to=old_attached_to
    )
    result = plan(
        plan_input(nodes=[node("n1", "i-0new")], instances=[instance("i-0new")], enis=[stale])
    )
    assert result == Plan(
        actions=(create("n1", "i-0new", SA1, 1),),
        attachments=(),
        problems=(),
        desired=1,
        stale=(stale,),
    )


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"node_name": "n2", "instance_id": "i-01", "sub": SA1}, id="other-node"),
        pytest.param({"node_name": "n1", "instance_id": "i-01", "sub": SA2}, id="other-subnet"),
    ],
)
def test_eni_for_another_slot_does_not_fill_this_one(other: dict[str, Any]) -> None:
    foreign = eni("eni-0001", **other)
    result = plan(
        plan_input(nodes=[node("n1", "i-01")], instances=[instance("i-01")], enis=[foreign])
    )
    assert result.actions == (create("n1", "i-01", SA1, 1),)
    assert result.attachments == ()


def _stale_ids(**overrides: Any) -> list[str]:
    data = plan_input(nodes=[node("n1", "i-01")], instances=[instance("i-01")])
    return [e.eni_id for e in plan(dataclasses.replace(data, **overrides)).stale]


def test_stale_enis_need_evidence() -> None:
    keep = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    removed_subnet = eni("eni-0002", node_name="n1", instance_id="i-01", sub=SA2)
    duplicate = eni("eni-0003", node_name="n1", instance_id="i-01", sub=SA1)
    deleted_node = eni("eni-0004", node_name="n9", instance_id="i-09", sub=SA1)
    moved = eni("eni-0005", node_name="n9", instance_id="i-09", sub=SA1, attached_to="i-77")
    # kept: the attached one; moved (attached elsewhere by someone else): never touched
    assert _stale_ids(enis=(keep, removed_subnet, duplicate, deleted_node, moved)) == [
        "eni-0002",  # subnet no longer in the spec
        "eni-0003",  # a second ENI for a filled slot
        "eni-0004",  # its node was deleted
    ]


def test_unknown_instance_and_non_ec2_node_are_no_evidence() -> None:
    mine = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1)
    assert _stale_ids(enis=(mine,), instances={}) == []
    kind_node = NodeView.from_api({"metadata": {"name": "n1"}, "spec": {"providerID": ""}})
    assert _stale_ids(enis=(mine,), nodes=(kind_node,)) == []


def test_unlabelled_node_enis_are_stale() -> None:
    mine = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    unlabelled = NodeView.from_api(
        {"metadata": {"name": "n1", "labels": {}}, "spec": {"providerID": "aws:///us-east-1a/i-01"}}
    )
    assert _stale_ids(enis=(mine,), nodes=(), known_nodes={"n1": unlabelled}) == ["eni-0001"]


# --- instance ENI limits --------------------------------------------------------------


def test_instance_at_limit_is_attachment_limit_exceeded_without_action() -> None:
    # hard case 9: report, keep the ENI count stable
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1, 2))],
            subnets=[SA1, SA2],
            max_enis={TYPE: 3},
        )
    )
    assert result == Plan(
        actions=(),
        attachments=(),
        problems=(
            NodeProblem(
                node="n1",
                reason=ProblemReason.ATTACHMENT_LIMIT_EXCEEDED,
                message=f"node n1 ({TYPE}) holds 3 ENIs, its limit is 3",
            ),
        ),
        desired=2,
    )
    assert _converged(result) is False


def test_one_free_slot_two_wanted_gives_one_action_and_one_problem() -> None:
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            subnets=[SA1, SA2],
            max_enis={TYPE: 3},
        )
    )
    assert result == Plan(
        actions=(create("n1", "i-01", SA1, 1),),
        attachments=(),
        problems=(
            NodeProblem(
                node="n1",
                reason=ProblemReason.ATTACHMENT_LIMIT_EXCEEDED,
                message=f"node n1 ({TYPE}) holds 2 ENIs, its limit is 3",
            ),
        ),
        desired=2,
    )


def test_available_eni_of_ours_is_not_attached_over_the_limit() -> None:
    available = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1)
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            max_enis={TYPE: 2},
            enis=[available],
        )
    )
    assert result.actions == ()
    assert [p.reason for p in result.problems] == [ProblemReason.ATTACHMENT_LIMIT_EXCEEDED]


def test_limit_counts_per_instance_type() -> None:
    result = plan(
        plan_input(
            nodes=[node("big", "i-01"), node("small", "i-02")],
            instances=[
                instance("i-01", instance_type="m5.4xlarge", occupied=(0, 1)),
                instance("i-02", instance_type="t3.nano", occupied=(0, 1)),
            ],
            max_enis={"m5.4xlarge": 8, "t3.nano": 2},
        )
    )
    assert result.actions == (create("big", "i-01", SA1, 1),)
    assert result.problems == (
        NodeProblem(
            node="small",
            reason=ProblemReason.ATTACHMENT_LIMIT_EXCEEDED,
            message="node small (t3.nano) holds 2 ENIs, its limit is 2",
        ),
    )


def test_unknown_instance_type_limit_never_blocks() -> None:
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", instance_type="x9.mystery", occupied=range(15))],
            subnets=[SA1, SA2],
            max_enis={TYPE: 3},
        )
    )
    assert result.actions == (create("n1", "i-01", SA1, 1), create("n1", "i-01", SA2, 2))
    assert result.problems == ()


# --- status entries and convergence ---------------------------------------------------


def test_previous_agent_fields_and_last_updated_are_carried() -> None:
    # hard case 16: the node agent's fields survive the controller's writes
    first = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    second = eni(
        "eni-0002", node_name="n1", instance_id="i-01", sub=SA2, attached_to="i-01", device_index=2
    )
    previous = Attachment(
        node_id="n1",
        eni_id="eni-0001",
        status=AttachmentState.ATTACHING,  # stale, EC2's facts win
        last_updated="2024-05-01T10:00:00Z",
        dpdk_bound=True,
        dpdk_driver="vfio-pci",
        dpdk_resource_name="intel.com/sriov_dpdk",
        dpdk_pci_address="0000:00:06.0",
        interface_name="ens6",
    )
    unrelated = Attachment(
        node_id="n9",
        eni_id="eni-0999",
        last_updated="2024-01-01T00:00:00Z",
        dpdk_bound=False,
        dpdk_driver="igb_uio",
    )
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1, 2))],
            subnets=[SA1, SA2],
            enis=[first, second],
            previous=[previous, unrelated],
        )
    )
    assert result.attachments == (
        Attachment(
            node_id="n1",
            instance_id="i-01",
            eni_id="eni-0001",
            attachment_id="eni-attach-0001",
            subnet_id=SUBNET_A1,
            subnet_cidr="10.0.1.0/24",
            mac_address="0a:00:00:00:00:01",
            private_ip_address="10.0.0.1",
            device_index=1,
            status=AttachmentState.ATTACHED,
            last_updated="2024-05-01T10:00:00Z",
            dpdk_bound=True,
            dpdk_driver="vfio-pci",
            dpdk_resource_name="intel.com/sriov_dpdk",
            dpdk_pci_address="0000:00:06.0",
            interface_name="ens6",
        ),
        status_of(second, "n1", SA2),  # no previous entry: nothing carried
    )


def test_status_lists_only_slots_of_nodes_still_served() -> None:
    # an ENI of ours on a node that no longer matches is not a status entry of the plan
    kept = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    leaving = eni("eni-0002", node_name="n2", instance_id="i-02", sub=SA1, attached_to="i-02")
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01"), node("n2", "i-02", labels={"ng": "other"})],
            instances=[instance("i-01", occupied=(0, 1)), instance("i-02", occupied=(0, 1))],
            enis=[kept, leaving],
        )
    )
    assert result.attachments == (status_of(kept, "n1", SA1),)
    assert result.actions == ()
    assert result.desired == 1


def _attached(n: int, *, attach_status: str = "attached") -> NetworkInterface:
    return eni(
        f"eni-000{n}",
        node_name=f"n{n}",
        instance_id=f"i-0{n}",
        sub=SA1,
        attached_to=f"i-0{n}",
        attach_status=attach_status,
    )


@pytest.mark.parametrize(
    ("enis", "converged"),
    [
        pytest.param([_attached(1), _attached(2)], True, id="all-attached"),
        pytest.param([_attached(1)], False, id="one-missing"),
        pytest.param(
            [_attached(1), _attached(2, attach_status="attaching")], False, id="one-attaching"
        ),
        pytest.param(
            [_attached(1), eni("eni-0002", node_name="n2", instance_id="i-02", sub=SA1)],
            False,
            id="one-available",
        ),
    ],
)
def test_converged_only_when_every_desired_slot_is_attached(
    enis: list[NetworkInterface], converged: bool
) -> None:
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01"), node("n2", "i-02")],
            instances=[instance("i-01", occupied=(0, 1)), instance("i-02", occupied=(0, 1))],
            enis=enis,
        )
    )
    assert result.desired == 2
    assert _converged(result) is converged


def test_converged_on_hand_built_plans() -> None:
    entry = Attachment(node_id="n1", eni_id="eni-0001", status=AttachmentState.ATTACHED)
    attaching = Attachment(node_id="n2", eni_id="eni-0002", status=AttachmentState.ATTACHING)
    action = create("n1", "i-01", SA1, 1)
    assert _converged(Plan(actions=(), attachments=(), problems=(), desired=0)) is True
    assert _converged(Plan(actions=(), attachments=(entry,), problems=(), desired=1)) is True
    assert (
        _converged(Plan(actions=(action,), attachments=(entry,), problems=(), desired=1)) is False
    )
    assert (
        _converged(Plan(actions=(), attachments=(entry, attaching), problems=(), desired=2))
        is False
    )
    assert _converged(Plan(actions=(), attachments=(), problems=(), desired=1)) is False


@pytest.mark.parametrize("ec2_status", ["", "unknown-new-state"])
def test_unknown_ec2_attachment_state_is_never_reported_attached(ec2_status: str) -> None:
    odd = eni(
        "eni-0001",
        node_name="n1",
        instance_id="i-01",
        sub=SA1,
        attached_to="i-01",
        attach_status=ec2_status,
    )
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")], instances=[instance("i-01", occupied=(0, 1))], enis=[odd]
        )
    )
    assert result.actions == ()
    assert result.attachments == (status_of(odd, "n1", SA1, AttachmentState.ATTACHING),)
    assert _converged(result) is False


def test_security_group_drift_on_an_attached_eni_is_acted_on() -> None:
    attached = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    assert attached.security_group_ids == ("sg-0123456789abcdef0",)
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            nodeeni_spec=spec(security_group_ids=("sg-0fedcba9876543210",)),
            enis=[attached],
        )
    )
    assert _converged(result) is False
    assert [getattr(a, "eni_id", None) for a in result.actions] == ["eni-0001"]


def test_a_slot_whose_eni_vanished_is_created_again_and_the_eni_named_vanished() -> None:
    # deleted by hand: the reconciler tells the ClientToken chain it is gone
    gone = eni("eni-0009", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01")],
            previous=[status_of(gone, "n1", SA1)],
        )
    )
    assert result.actions == (CreateAndAttach(slot=slot("n1", "i-01", SA1, 1)),)
    assert result.attachments == ()
    assert [a.eni_id for a in result.vanished] == ["eni-0009"]


def test_an_eni_gone_from_its_instance_names_the_instance_even_from_a_compact_entry() -> None:
    # kept instance facts still count the index it held: the reconciler describes
    # the instance again before placing the replacement
    gone = eni("eni-0009", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    full = status_of(gone, "n1", SA1)
    compact = dataclasses.replace(full, instance_id=None)  # as a compact status lists it
    for entry in (full, compact):
        result = plan(
            plan_input(
                nodes=[node("n1", "i-01")],
                instances=[instance("i-01", occupied=(0, 1))],
                previous=[entry],
            )
        )
        assert result.left_instances == ("i-01",)
    kept = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01", occupied=(0, 1))],
            enis=[gone],
            previous=[compact],
        )
    )
    assert kept.left_instances == ()


def test_a_plan_is_linear_in_slots_and_enis(monkeypatch: pytest.MonkeyPatch) -> None:
    # 4,000 attached slots: matching ENIs to slots by a scan per slot (16M tag
    # comparisons) took seconds; by one index, each ENI is keyed and looked at a
    # bounded number of times. Counted, not timed: the figure lives in make bench.
    count = 4000
    ids = [f"{n:04x}" for n in range(count)]
    enis = [
        eni(f"eni-{i}", node_name=f"n{i}", instance_id=f"i-{i}", sub=SA1, attached_to=f"i-{i}")
        for i in ids
    ]
    data = plan_input(
        nodes=[node(f"n{i}", f"i-{i}") for i in ids],
        instances=[instance(f"i-{i}", occupied=(0, 1)) for i in ids],
        enis=enis,
        previous=[status_of(e, f"n{i}", SA1) for e, i in zip(enis, ids, strict=True)],
    )
    looks: Counter[str] = Counter()
    for helper in ("_eni_key", "_attached_to", "_slot_key"):
        original = getattr(planner, helper)

        def counted(*args: Any, _name: str = helper, _original: Any = original) -> Any:
            looks[_name] += 1
            return _original(*args)

        monkeypatch.setattr(planner, helper, counted)
    result = plan(data)
    assert _converged(result)
    assert len(result.attachments) == count
    assert result.stale == ()
    assert sum(looks.values()) <= 6 * count, looks  # a scan per slot would be count**2


# --- guardrails: VPC of subnets and groups, allow-lists by tag --------------------------

VPC = "vpc-01"  # the VPC of every constructed instance, subnet and ENI
OTHER_VPC = "vpc-02"
GROUP_ID = "sg-0123456789abcdef0"  # the spec's group
ALLOW = ("multus", "true")


def group(vpc_id: str = VPC, tags: Mapping[str, str] | None = None) -> SecurityGroup:
    return SecurityGroup(
        group_id=GROUP_ID, group_name="multus", vpc_id=vpc_id, name_tag=None, tags=tags or {}
    )


def test_subnet_in_another_vpc_is_vpc_mismatch_for_that_node_and_no_action() -> None:
    foreign = dataclasses.replace(SA1, vpc_id=OTHER_VPC)
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01")],
            instances=[instance("i-01")],
            subnets=[foreign, SA2],
        )
    )
    # the subnet of the right VPC keeps its list position (index 1 + 1)
    assert result.actions == (create("n1", "i-01", SA2, 2),)
    assert result.problems == (
        NodeProblem(
            node="n1",
            reason=ProblemReason.VPC_MISMATCH,
            message=(
                f"subnet {SUBNET_A1} is in {OTHER_VPC}, but node n1's instance i-01 is in {VPC}"
            ),
        ),
    )
    assert result.desired == 1


def test_subnet_vpc_is_compared_with_each_node_instance_vpc() -> None:
    elsewhere = dataclasses.replace(instance("i-02"), vpc_id=OTHER_VPC)
    result = plan(
        plan_input(
            nodes=[node("n1", "i-01"), node("n2", "i-02")],
            instances=[instance("i-01"), elsewhere],
        )
    )
    assert result.actions == (create("n1", "i-01", SA1, 1),)
    assert [(p.node, p.reason) for p in result.problems] == [("n2", ProblemReason.VPC_MISMATCH)]
    assert result.desired == 1


def test_group_in_another_vpc_is_vpc_mismatch_and_nothing_is_made_or_changed() -> None:
    # one slot to fill, one attached ENI whose DeleteOnTermination differs: both
    # would be EC2 mutations carrying (or on an ENI with) the foreign group
    attached = eni(
        "eni-0001",
        node_name="n1",
        instance_id="i-01",
        sub=SA1,
        attached_to="i-01",
        delete_on_termination=False,
    )
    data = plan_input(
        nodes=[node("n1", "i-01")],
        instances=[instance("i-01", occupied=(0, 1))],
        subnets=[SA1, SA2],
        enis=[attached],
    )
    before = plan(data)
    assert len(before.actions) == 2  # the same input with no guardrail acts twice
    result = plan(dataclasses.replace(data, security_groups=(group(OTHER_VPC),)))
    assert result.actions == ()  # every action is an EC2 call that mutates
    assert result.problems == (
        NodeProblem(
            node="n1",
            reason=ProblemReason.VPC_MISMATCH,
            message=(
                f"security group {GROUP_ID} is in {OTHER_VPC}, "
                f"but node n1's instance i-01 is in {VPC}"
            ),
        ),
    )
    assert result.stale == ()  # the ENI made before is held, not cleaned up
    assert result.desired == 0


def test_same_vpc_and_tags_present_leave_the_plan_unchanged() -> None:
    tagged = {"multus": "true", "Name": "x"}
    subnets = [dataclasses.replace(SA1, tags=tagged), dataclasses.replace(SB1, tags=tagged)]
    attached = eni("eni-0001", node_name="na", instance_id="i-0a", sub=SA1, attached_to="i-0a")
    data = plan_input(
        nodes=[node("na", "i-0a", AZ_A), node("nb", "i-0b", AZ_B)],
        instances=[instance("i-0a", AZ_A, occupied=(0, 1)), instance("i-0b", AZ_B)],
        subnets=subnets,
        enis=[attached],
    )
    guarded = dataclasses.replace(
        data,
        security_groups=(group(VPC, tags={"multus": "true"}),),
        subnet_allow_tag=ALLOW,
        security_group_allow_tag=ALLOW,
    )
    expected = plan(data)
    assert expected.actions  # something to compare
    assert expected.attachments
    assert plan(guarded) == expected


def test_subnet_without_the_allow_tag_is_not_allowed_anywhere() -> None:
    tagged = dataclasses.replace(SA2, tags={"multus": "true"})
    wrong_value = dataclasses.replace(SA1, tags={"multus": "false"})
    result = plan(
        dataclasses.replace(
            plan_input(
                nodes=[node("n1", "i-01"), node("n2", "i-02")],
                instances=[instance("i-01"), instance("i-02")],
                subnets=[wrong_value, tagged],
            ),
            subnet_allow_tag=ALLOW,
        )
    )
    assert result.actions == (create("n1", "i-01", tagged, 2), create("n2", "i-02", tagged, 2))
    assert result.problems == (
        NodeProblem(
            node="",
            reason=ProblemReason.NOT_ALLOWED,
            message=f"subnet {SUBNET_A1} lacks the tag multus=true that SUBNET_ALLOW_TAG requires",
        ),
    )
    assert result.desired == 2


def test_group_without_the_allow_tag_is_not_allowed_and_nothing_is_made() -> None:
    result = plan(
        dataclasses.replace(
            plan_input(nodes=[node("n1", "i-01")], instances=[instance("i-01")]),
            security_groups=(group(VPC, tags={"Name": "multus"}),),
            security_group_allow_tag=ALLOW,
        )
    )
    assert result.actions == ()  # every action is an EC2 call that mutates
    assert result.problems == (
        NodeProblem(
            node="",
            reason=ProblemReason.NOT_ALLOWED,
            message=(
                f"security group {GROUP_ID} lacks the tag multus=true"
                " that SECURITY_GROUP_ALLOW_TAG requires"
            ),
        ),
    )
    assert result.desired == 0


def test_enis_in_a_refused_slot_are_held_not_cleaned_up() -> None:
    # an allow-list turned on after ENIs were made in an untagged subnet
    attached = eni("eni-0001", node_name="n1", instance_id="i-01", sub=SA1, attached_to="i-01")
    spare = eni("eni-0002", node_name="n1", instance_id="i-01", sub=SA1)
    data = plan_input(
        nodes=[node("n1", "i-01")], instances=[instance("i-01")], enis=[attached, spare]
    )
    assert [e.eni_id for e in plan(data).stale] == ["eni-0002"]  # unguarded: a duplicate
    result = plan(dataclasses.replace(data, subnet_allow_tag=ALLOW))
    assert result.actions == ()
    assert result.stale == ()
    assert [p.reason for p in result.problems] == [ProblemReason.NOT_ALLOWED]


def test_an_unknown_vpc_is_never_a_mismatch() -> None:
    unknown = dataclasses.replace(instance("i-01"), vpc_id="")
    result = plan(
        dataclasses.replace(
            plan_input(nodes=[node("n1", "i-01")], instances=[unknown]),
            security_groups=(group(OTHER_VPC),),
        )
    )
    assert result.actions == (create("n1", "i-01", SA1, 1),)
    assert result.problems == ()

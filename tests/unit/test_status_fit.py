"""A NodeENI status that fits (reconcile/status_fit.py through status.status_patch):
its size at 1,000, 3,000 and 5,000 attachments with EKS-like values, the format
switch and its round trip, no write churn in either form, and the truncation
that keeps a write under its byte budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eni_controller.model import (
    COMPACT_ATTACHMENT_FIELDS,
    Attachment,
    AttachmentState,
    Condition,
    ConditionStatus,
    NodeENIStatus,
)
from eni_controller.reconcile import tags
from eni_controller.reconcile.planner import NodeProblem, Plan, ProblemReason
from eni_controller.reconcile.status import DEGRADED, READY, plan_conditions, status_patch
from eni_controller.reconcile.status_fit import (
    COMPACT_ABOVE,
    COMPACT_STATUS,
    DEFAULT_LIMITS,
    STATUS_BUDGET_BYTES,
    FitReason,
    StatusLimits,
    fitting_prefix,
    is_compact,
    is_truncated,
    json_size,
)
from eni_controller.reconcile.sweep import claimed_eni_ids
from eni_controller.statusview import describe
from tests.harness.invariants import state_violations

T0 = "2026-11-01T08:00:00Z"
T1 = "2026-11-01T08:05:00Z"
T2 = "2026-11-01T08:10:00Z"
MIB = 1024 * 1024
CRD = (
    Path(__file__).parents[2]
    / "helm/aws-multi-eni-controller/crds/networking.k8s.aws_nodeenis.yaml"
)


def eks_entry(n: int, **changes: Any) -> Attachment:
    """Attachment n as an EKS cluster in us-west-2 would have it (17-digit ids,
    the longest default node names)."""
    ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    fields: dict[str, Any] = {
        "node_id": f"ip-{ip.replace('.', '-')}.us-west-2.compute.internal",
        "instance_id": f"i-{n:017x}",
        "eni_id": f"eni-{n:017x}",
        "attachment_id": f"eni-attach-{n:017x}",
        "subnet_id": "subnet-0123456789abcdef0",
        "subnet_cidr": "10.128.0.0/16",
        "mac_address": f"0a:{n >> 24 & 255:02x}:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:"
        f"{n & 255:02x}:5f",
        "private_ip_address": f"10.128.{n >> 8 & 255}.{n & 255}",
        "device_index": 1,
        "mtu": 9001,
        "status": AttachmentState.ATTACHED,
        "interface_name": "ens6",
    }
    fields.update(changes)
    return Attachment(**fields)


def conditions(*, problems: tuple[NodeProblem, ...] = (), count: int = 0) -> list[Condition]:
    attached = tuple(eks_entry(n) for n in range(count))
    return plan_conditions(
        Plan(actions=(), attachments=attached, problems=problems, desired=count), generation=1
    )


def written(
    previous: NodeENIStatus,
    entries: list[Attachment],
    *,
    now: str = T0,
    limits: StatusLimits = DEFAULT_LIMITS,
    problems: tuple[NodeProblem, ...] = (),
) -> tuple[NodeENIStatus, dict[str, Any] | None]:
    """The status after the reconciler's write of `entries` (as the server keeps it)."""
    patch = status_patch(
        previous,
        conditions=conditions(problems=problems, count=len(entries)),
        generation=1,
        now=now,
        attachments=entries,
        desired=len(entries),
        limits=limits,
    )
    if patch is None:
        return previous, None
    return NodeENIStatus.from_dict(patch["status"]), patch


def by_type(status: NodeENIStatus) -> dict[str, Condition]:
    return {c.type: c for c in status.conditions}


# --- size -----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1000, 3000, 5000])
def test_status_size_with_eks_like_values(count: int) -> None:
    entries = [eks_entry(n) for n in range(count)]
    status, patch = written(NodeENIStatus(), entries)
    assert patch is not None
    size = json_size(patch["status"])
    full = json_size(
        {**patch["status"], "attachments": [e.to_dict(last_updated=T0) for e in entries]}
    )
    print(f"FIGURE status_size: {count} attachments: {size} bytes compact, {full} in full")
    assert is_compact(count)
    assert size <= 0.76 * MIB  # ≥ 24 % under 1 MiB at 5,000; half etcd's 1.5 MiB
    assert size < full / 2.5
    assert len(status.attachments) == count  # nothing cut
    assert status.attached_count == count


def test_a_full_status_at_the_threshold_stays_well_under_512_kib_even_with_dpdk() -> None:
    dpdk = {
        "dpdk_bound": True,
        "dpdk_driver": "vfio-pci",
        "dpdk_resource_name": "intel.com/intel_sriov_netdevice",
        "dpdk_pci_address": "0000:00:06.0",
    }
    entries = [eks_entry(n, **dpdk) for n in range(COMPACT_ABOVE)]
    _, patch = written(NodeENIStatus(), entries)
    assert patch is not None
    assert "instanceID" in patch["status"]["attachments"][0]  # still in full
    assert json_size(patch["status"]) < 0.85 * 512 * 1024


def test_compact_keeps_a_subnet_out_because_5000_would_leave_under_25_percent() -> None:
    with_subnet = json_size(
        {**eks_entry(1).to_compact_dict(), "subnetID": "subnet-0123456789abcdef0"}
    )
    assert 5000 * (with_subnet + 1) > 0.75 * MIB
    assert 5000 * (json_size(eks_entry(1).to_compact_dict()) + 1) <= 0.75 * MIB


# --- the switch ---------------------------------------------------------------------------


def test_the_format_is_decided_by_the_count_alone() -> None:
    assert not is_compact(0)
    assert not is_compact(COMPACT_ABOVE)
    assert is_compact(COMPACT_ABOVE + 1)
    assert is_compact(3, compact_above=2)


def test_a_compact_entry_has_exactly_the_compact_fields_and_reads_back() -> None:
    entry = eks_entry(7, dpdk_bound=True, last_updated=T0)
    compact = entry.to_compact_dict()
    assert tuple(compact) == COMPACT_ATTACHMENT_FIELDS
    again = Attachment.from_dict(compact)
    assert again is not None
    assert again.to_compact_dict() == compact
    assert (again.instance_id, again.mtu, again.last_updated) == (None, None, None)


def test_the_crd_accepts_a_compact_entry() -> None:
    docs = yaml.safe_load(CRD.read_text())
    schema = docs["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    item = schema["properties"]["status"]["properties"]["attachments"]["items"]
    assert set(item["required"]) <= set(COMPACT_ATTACHMENT_FIELDS)
    assert set(COMPACT_ATTACHMENT_FIELDS) <= set(item["properties"])


def test_grow_past_the_threshold_shrink_back_and_grow_again() -> None:
    limits = StatusLimits(compact_above=3)
    status, _ = written(NodeENIStatus(), [eks_entry(n) for n in range(3)], limits=limits)
    assert COMPACT_STATUS not in by_type(status)
    assert status.attachments[0].instance_id is not None

    status, _ = written(status, [eks_entry(n) for n in range(4)], now=T1, limits=limits)
    compact = by_type(status)[COMPACT_STATUS]
    assert (compact.status, compact.reason) == (ConditionStatus.TRUE, FitReason.MANY_ATTACHMENTS)
    assert compact.last_transition_time == T1
    assert "kubectl get eninodes" in (compact.message or "")
    assert all(a.instance_id is None and a.mac_address for a in status.attachments)
    assert by_type(status)[READY].status is ConditionStatus.TRUE  # compact is not a problem
    assert by_type(status)[DEGRADED].status is ConditionStatus.FALSE

    status, _ = written(status, [eks_entry(n) for n in range(2)], now=T2, limits=limits)
    assert COMPACT_STATUS not in by_type(status)
    assert [a.instance_id for a in status.attachments] == [eks_entry(n).instance_id for n in (0, 1)]
    assert {a.last_updated for a in status.attachments} == {T2}  # their full form is new

    status, _ = written(status, [eks_entry(n) for n in range(5)], now=T2, limits=limits)
    assert by_type(status)[COMPACT_STATUS].last_transition_time == T2
    assert len(status.attachments) == 5


def test_an_idle_compact_status_writes_nothing() -> None:
    limits = StatusLimits(compact_above=3)
    entries = [eks_entry(n) for n in range(6)]
    status, patch = written(NodeENIStatus(), entries, limits=limits)
    assert patch is not None
    # the planner's entries are in full again, lastUpdated and all: still no change
    again, patch = written(
        status, [eks_entry(n, last_updated=T0) for n in range(6)], now=T1, limits=limits
    )
    assert patch is None
    assert again is status
    # one entry really changed: written
    changed = [*entries[:5], eks_entry(5, status=AttachmentState.DETACHING)]
    _, patch = written(status, changed, now=T2, limits=limits)
    assert patch is not None


def test_the_sweep_claims_the_enis_of_compact_entries() -> None:
    _, patch = written(
        NodeENIStatus(), [eks_entry(n) for n in range(4)], limits=StatusLimits(compact_above=3)
    )
    assert patch is not None
    claimed = claimed_eni_ids([{"metadata": {"name": "wide"}, "status": patch["status"]}])
    assert claimed == {eks_entry(n).eni_id for n in range(4)}


# --- the byte budget --------------------------------------------------------------------


def test_past_the_budget_the_list_is_cut_to_fit_and_degraded_says_so() -> None:
    entries = [eks_entry(n) for n in range(40)]
    budget = 4000
    limits = StatusLimits(compact_above=3, budget_bytes=budget)
    status, patch = written(NodeENIStatus(), entries, limits=limits)
    assert patch is not None
    assert json_size(patch["status"]) <= budget
    listed = len(status.attachments)
    assert 0 < listed < 40
    ordered = sorted(entries, key=lambda a: a.node_id)  # status order
    # the longest prefix: one more entry would not have fit
    assert json_size(patch["status"]) + json_size(ordered[listed].to_compact_dict()) + 1 > budget
    assert [a.eni_id for a in status.attachments] == [e.eni_id for e in ordered[:listed]]
    assert status.attached_count == 40  # every entry counted
    degraded = by_type(status)[DEGRADED]
    assert (degraded.status, degraded.reason) == (ConditionStatus.TRUE, FitReason.STATUS_TRUNCATED)
    assert f"{listed} of 40 attachments" in (degraded.message or "")
    assert by_type(status)[READY].status is ConditionStatus.TRUE
    assert is_truncated(status.conditions)

    # the same again: nothing written (no churn while truncated)
    _, patch = written(status, entries, now=T1, limits=limits)
    assert patch is None

    # room again (the budget back): the whole list, Degraded clears, truncated again when small
    roomy, _ = written(status, entries, now=T1, limits=StatusLimits(compact_above=3))
    assert len(roomy.attachments) == 40
    assert by_type(roomy)[DEGRADED].status is ConditionStatus.FALSE
    assert not is_truncated(roomy.conditions)
    cut, _ = written(roomy, entries, now=T2, limits=limits)
    assert len(cut.attachments) == listed
    assert by_type(cut)[DEGRADED].last_transition_time == T2


def test_a_problem_already_degraded_stays_in_the_truncated_message() -> None:
    problem = NodeProblem(
        node="n9", reason=ProblemReason.AZ_MISMATCH, message="node n9 is in another AZ"
    )
    limits = StatusLimits(compact_above=3, budget_bytes=4000)
    status, _ = written(
        NodeENIStatus(), [eks_entry(n) for n in range(40)], limits=limits, problems=(problem,)
    )
    degraded = by_type(status)[DEGRADED]
    assert degraded.reason == FitReason.STATUS_TRUNCATED
    assert "AZMismatch: " in (degraded.message or "")
    assert "node n9 is in another AZ" in (degraded.message or "")


def test_a_carried_over_truncation_clears_once_the_list_fits() -> None:
    """The detaching writes pass the previous conditions on."""
    limits = StatusLimits(compact_above=3, budget_bytes=4000)
    status, _ = written(NodeENIStatus(), [eks_entry(n) for n in range(40)], limits=limits)
    patch = status_patch(
        status,
        conditions=status.conditions,
        generation=1,
        now=T1,
        attachments=[eks_entry(n, status=AttachmentState.DETACHING) for n in range(2)],
        limits=limits,
    )
    assert patch is not None
    after = NodeENIStatus.from_dict(patch["status"])
    assert not is_truncated(after.conditions)
    assert by_type(after)[DEGRADED].status is ConditionStatus.FALSE
    assert COMPACT_STATUS not in by_type(after)


def test_the_default_budget_holds_far_more_than_5000_compact_entries() -> None:
    per_entry = json_size(eks_entry(1).to_compact_dict()) + 1
    assert STATUS_BUDGET_BYTES // per_entry > 6000
    assert STATUS_BUDGET_BYTES < 1.5 * MIB * 0.7  # etcd's request limit, with room for the rest


@pytest.mark.parametrize(
    ("sizes", "room", "fit"),
    [
        ([], 2, 0),
        ([10], 11, 0),
        ([10], 12, 1),
        ([10, 10], 22, 1),
        ([10, 10], 23, 2),
        ([10, 10, 10], 1000, 3),
    ],
)
def test_fitting_prefix_counts_brackets_and_commas(sizes: list[int], room: int, fit: int) -> None:
    assert fitting_prefix(sizes, room=room) == fit
    assert json_size([{"x": "y" * (s - 8)} for s in sizes][:fit]) <= room


def test_eni_controller_status_reads_a_compact_status() -> None:
    limits = StatusLimits(compact_above=3)
    _, patch = written(NodeENIStatus(), [eks_entry(n) for n in range(4)], limits=limits)
    assert patch is not None
    text = describe({"metadata": {"name": "wide"}, "status": patch["status"]})
    lines = [line.split() for line in text.splitlines()]
    first = eks_entry(0)
    row = [first.node_id, first.eni_id, "1", first.mac_address, "-", "attached"]
    assert row in lines  # no instance, subnet or IP: the interface is not reported
    assert any(line[:3] == [COMPACT_STATUS, "True", "ManyAttachments"] for line in lines)
    assert ["wide", "True", "4", "4"] in lines


def test_the_chaos_invariants_read_a_compact_status() -> None:
    limits = StatusLimits(compact_above=1)
    entries = [eks_entry(n) for n in range(2)]
    _, patch = written(NodeENIStatus(), entries, limits=limits)
    assert patch is not None
    obj = {"metadata": {"name": "wide"}, "status": patch["status"]}

    def in_ec2(index: int) -> dict[str, Any]:
        return {
            "NetworkInterfaceId": entries[index].eni_id,
            "SubnetId": entries[index].subnet_id,
            "TagSet": [{"Key": tags.NODE_KEY, "Value": entries[index].node_id}],
            "Attachment": {"InstanceId": entries[index].instance_id, "DeviceIndex": 1},
        }

    assert state_violations(obj, [in_ec2(0), in_ec2(1)]) == []
    moved = in_ec2(1)
    moved["Attachment"]["DeviceIndex"] = 2
    (problem,) = state_violations(obj, [in_ec2(0), moved])
    assert "device index 2" in problem

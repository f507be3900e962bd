"""The preflight's pure parts: what each EC2 answer means, the region rule, the
RBAC list, the table and the exit code."""

from __future__ import annotations

import pytest

from eni_controller.aws import errors
from eni_controller.aws.errors import classify_client_error
from eni_controller.config import Config
from eni_controller.preflight.ec2 import ProbeTargets, probe_finding, probes, region_finding
from eni_controller.preflight.kube import required_permissions
from eni_controller.preflight.report import (
    Outcome,
    exit_code,
    failed,
    passed,
    render_table,
    warned,
)
from tests.unit.test_aws_errors import client_error

ATTACH = next(p for p in probes(ProbeTargets()) if p.action == "AttachNetworkInterface")


def _error(code: str, status: int = 400) -> errors.EC2Error:
    return classify_client_error(client_error(code, status=status), action=ATTACH.action)


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [
        ("DryRunOperation", 412, Outcome.PASS),
        ("UnauthorizedOperation", 403, Outcome.FAIL),
        ("AccessDenied", 403, Outcome.FAIL),
        ("AuthFailure", 401, Outcome.FAIL),
        ("InvalidNetworkInterfaceID.NotFound", 400, Outcome.WARN),
        ("RequestLimitExceeded", 503, Outcome.FAIL),
        ("InternalError", 500, Outcome.FAIL),
        ("InvalidParameterCombination", 400, Outcome.WARN),
    ],
)
def test_each_dry_run_answer_has_one_meaning(code: str, status: int, outcome: Outcome) -> None:
    finding = probe_finding(ATTACH, _error(code, status))
    assert finding.outcome is outcome
    assert finding.check == "ec2:AttachNetworkInterface"
    if outcome is not Outcome.PASS:
        assert code in finding.detail


def test_a_denied_action_says_what_to_allow() -> None:
    finding = probe_finding(ATTACH, _error("UnauthorizedOperation", 403))
    assert "allow ec2:AttachNetworkInterface" in finding.detail


def test_an_answered_call_passes() -> None:
    assert probe_finding(ATTACH, None).outcome is Outcome.PASS


def test_probes_cover_every_action_the_controller_calls() -> None:
    targets = ProbeTargets(
        subnet_id="subnet-0123456789abcdef0",
        instance_id="i-0123456789abcdef0",
        eni_id="eni-0123456789abcdef0",
        attachment_id="eni-attach-0123456789abcdef0",
    )
    actions = {p.action for p in probes(targets)}
    assert actions == {
        "DescribeNetworkInterfaces",
        "DescribeInstances",
        "DescribeInstanceTypes",
        "DescribeSubnets",
        "DescribeSecurityGroups",
        "CreateNetworkInterface",
        "AttachNetworkInterface",
        "ModifyNetworkInterfaceAttribute",
        "DetachNetworkInterface",
        "DeleteNetworkInterface",
    }
    by_action = {p.action: p.params for p in probes(targets)}
    create = by_action["CreateNetworkInterface"]
    assert create["SubnetId"] == "subnet-0123456789abcdef0"
    assert create["TagSpecifications"]  # tag-on-create needs ec2:CreateTags
    assert by_action["AttachNetworkInterface"]["InstanceId"] == "i-0123456789abcdef0"
    assert by_action["DetachNetworkInterface"]["AttachmentId"] == "eni-attach-0123456789abcdef0"
    assert by_action["DeleteNetworkInterface"]["NetworkInterfaceId"] == "eni-0123456789abcdef0"


@pytest.mark.parametrize(
    ("zones", "outcome"),
    [
        ({"a": "us-east-1a", "b": "us-east-1f"}, Outcome.PASS),
        ({"a": "us-east-1-bos-1a"}, Outcome.PASS),  # a Local Zone
        ({"a": "us-east-1a", "b": "eu-west-1b"}, Outcome.FAIL),
        ({"a": "us-east-10a"}, Outcome.FAIL),  # another region sharing the prefix
        ({}, Outcome.WARN),
    ],
)
def test_region_agrees_with_the_nodes_zones(zones: dict[str, str], outcome: Outcome) -> None:
    finding = region_finding(region="us-east-1", node_zones=zones)
    assert finding.outcome is outcome
    if outcome is Outcome.FAIL:
        assert "awsRegion" in finding.detail


def test_rbac_list_follows_leader_election() -> None:
    electing = required_permissions(Config(pod_namespace="kube-system"))
    alone = required_permissions(Config(enable_leader_election=False))
    leases = [p for p in electing if p.resource == "leases"]
    assert [(p.namespace, p.verbs) for p in leases] == [
        ("kube-system", ("get", "create", "update"))
    ]
    assert not [p for p in alone if p.resource == "leases"]
    assert {p.label for p in alone} == {
        "rbac:nodes",
        "rbac:nodeenis.networking.k8s.aws",
        "rbac:nodeenis/status.networking.k8s.aws",
        "rbac:default/events",
    }


def test_table_and_exit_code() -> None:
    findings = [
        passed("crd", "served"),
        warned("ec2:DeleteNetworkInterface", "not proven"),
        failed("ec2:AttachNetworkInterface", "denied (UnauthorizedOperation)"),
    ]
    table = render_table(findings)
    lines = table.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL"]
    assert lines[3].split()[:2] == ["ec2:AttachNetworkInterface", "FAIL"]
    assert lines[-1] == "1 passed, 1 warnings, 1 failed"
    assert exit_code(findings) == 1
    assert exit_code(findings[:2]) == 0  # a warning alone does not fail

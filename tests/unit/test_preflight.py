"""The preflight's pure parts: what each EC2 answer means, the region rule, the
RBAC list, the table and the exit code; and that the create probe is tagged
exactly like a real create."""

from __future__ import annotations

from typing import Any

import pytest

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2_ACTIONS
from eni_controller.aws.errors import classify_client_error
from eni_controller.aws.resources import Subnet
from eni_controller.config import Config
from eni_controller.kube.leader import DEFAULT_LEASE_NAME
from eni_controller.metrics import Metrics
from eni_controller.preflight.ec2 import (
    ProbeTargets,
    cluster_identity_finding,
    probe_finding,
    probes,
    region_finding,
    run_probes,
)
from eni_controller.preflight.kube import required_permissions
from eni_controller.preflight.report import (
    Finding,
    Outcome,
    exit_code,
    failed,
    passed,
    render_table,
    warned,
)
from eni_controller.reconcile import tags
from eni_controller.reconcile.executor import Executor
from eni_controller.reconcile.executor import Outcome as SlotOutcome
from eni_controller.reconcile.indexes import DeviceIndexAllocator
from eni_controller.reconcile.planner import CreateAndAttach, Slot
from tests.harness.ec2_errors import client_error
from tests.harness.identity import known_identity
from tests.harness.jobs import memory_job
from tests.harness.memory_ec2 import AZ, MemoryEC2, unpaced_client
from tests.harness.recording_ec2 import RecordingRaw

ATTACH = next(
    p for p in probes(ProbeTargets(), cluster_name=None) if p.action == "AttachNetworkInterface"
)


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
    actions = [p.action for p in probes(targets, cluster_name="prod")]
    assert sorted(actions) == sorted(EC2_ACTIONS)
    by_action = {p.action: p.params for p in probes(targets, cluster_name="prod")}
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
    assert [(p.namespace, p.verbs, p.names) for p in leases] == [
        ("kube-system", ("create",), ()),
        ("kube-system", ("get", "update"), (DEFAULT_LEASE_NAME,)),
    ]
    assert not [p for p in alone if p.resource == "leases"]
    assert {p.label for p in alone} == {
        "rbac:nodes",
        "rbac:nodeenis.networking.k8s.aws",
        "rbac:nodeenis/status.networking.k8s.aws",
        "rbac:eninodes.networking.k8s.aws",
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


def _tag_list(params: dict[str, Any]) -> list[dict[str, str]]:
    (spec,) = params["TagSpecifications"]
    assert spec["ResourceType"] == "network-interface"
    tag_list: list[dict[str, str]] = spec["Tags"]
    return tag_list


# The tags that name the slot (the probe's slot is a placeholder); every other
# tag (cluster, managed-by, no_manage) is the same for every ENI of a cluster.
SLOT_TAG_KEYS = {"Name", tags.NODEENI_KEY, tags.NODEENI_UID_KEY, tags.NODE_KEY}


@pytest.mark.parametrize("cluster_name", ["prod-east", None])
async def test_the_create_probe_sends_the_tags_a_real_create_sends(
    cluster_name: str | None,
) -> None:
    config = Config(cluster_name=cluster_name)
    instance_id = "i-00000000000000001"
    subnet = Subnet(subnet_id="subnet-1", vpc_id="vpc-1", availability_zone=AZ, cidr="", name=None)

    real = RecordingRaw(MemoryEC2([instance_id]))
    metrics = Metrics()

    def emit(_type: str, _reason: str, _message: str, _count: int = 1, /) -> None:
        pass

    job = memory_job(nodeeni="multus", instances=[instance_id], emit=emit)
    slot = Slot(node="node-a", instance_id=instance_id, subnet=subnet, device_index=1)
    # the controller's executor tags with the identity made from config.cluster_name
    executor = Executor(
        unpaced_client(real, metrics=metrics),
        DeviceIndexAllocator(),
        metrics=metrics,
        cluster=known_identity(name=config.cluster_name, vpc_id="vpc-1"),
    )
    (result,) = await executor.run(job, [CreateAndAttach(slot=slot)])
    assert result.outcome is SlotOutcome.DONE
    (created,) = real.params_of("create_network_interface")

    dry = RecordingRaw()
    targets = ProbeTargets(subnet_id=subnet.subnet_id, instance_id=instance_id)
    findings = await run_probes(
        unpaced_client(dry, metrics=Metrics()), targets, cluster_name=config.cluster_name
    )
    assert {f.outcome for f in findings} == {Outcome.PASS}
    (probed,) = dry.params_of("create_network_interface")
    assert probed["DryRun"] is True

    real_tags, probe_tags = _tag_list(created), _tag_list(probed)
    assert [t["Key"] for t in probe_tags] == [t["Key"] for t in real_tags]
    shared = [t for t in real_tags if t["Key"] not in SLOT_TAG_KEYS]
    assert [t for t in probe_tags if t["Key"] not in SLOT_TAG_KEYS] == shared
    cluster_tag = {"Key": f"kubernetes.io/cluster/{cluster_name}", "Value": "owned"}
    assert (cluster_tag in probe_tags) is (cluster_name is not None)


@pytest.mark.parametrize(
    ("cluster_name", "outcome"), [("prod-east", Outcome.PASS), (None, Outcome.WARN)]
)
def test_no_cluster_name_warns_that_the_sweep_deletes_nothing(
    cluster_name: str | None, outcome: Outcome
) -> None:
    finding: Finding = cluster_identity_finding(cluster_name=cluster_name)
    assert finding.check == "cluster-name"
    assert finding.outcome is outcome
    if outcome is Outcome.WARN:
        assert "orphan sweep deletes nothing" in finding.detail
        assert "CLUSTER_NAME" in finding.detail

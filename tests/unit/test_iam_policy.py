"""The shipped IAM policy (eni_controller/iam.py, deploy/iam/policy.json) against
the code: it grants every EC2 action the client can call, on the resources AWS
authorizes each against, for the ENIs the controller really creates (tags from
reconcile.tags), and refuses other clusters' ENIs, other VPCs and tagging of
existing resources."""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from eni_controller import cli, iam
from eni_controller.aws import ec2 as ec2_module
from eni_controller.aws.ec2 import EC2_ACTIONS
from eni_controller.reconcile.tags import eni_tags
from tests.harness.iam_eval import AUTHORIZED_RESOURCES, Request, Resource, denied_resources
from tests.samples import INSTANCE_A as INSTANCE
from tests.samples import SG_A as SG
from tests.samples import SUBNET_A as SUBNET
from tests.samples import VPC_A as VPC
from tests.samples import VPC_B as OTHER_VPC

POLICY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "iam" / "policy.json"
CLUSTER = "prod-east"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
ENI = "eni-0123456789abcdef0"

POLICY = iam.render_policy(cluster_name=CLUSTER, vpc_id=VPC, region=REGION, account_id=ACCOUNT)


def _tags(cluster_name: str | None) -> Mapping[str, str]:
    return eni_tags(
        nodeeni="multus",
        uid="3f1c2a9e-0000-4000-8000-000000000001",
        node="node-a",
        instance_id=INSTANCE,
        subnet_id=SUBNET,
        cluster_name=cluster_name,
    )


OURS = _tags(CLUSTER)


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{name}"


def _request(
    action: str,
    *,
    eni_tags_now: Mapping[str, str] = OURS,
    create_tags: Mapping[str, str] = OURS,
    vpc: str = VPC,
    create_action: str | None = "CreateNetworkInterface",
) -> Request:
    """The authorization one controller call of `action` needs, as AWS makes it:
    an existing ENI brings its tags, a create brings the tags it sends."""
    in_vpc = {"ec2:Vpc": _arn("vpc", vpc)}
    creating = action in {"CreateNetworkInterface", "CreateTags"}
    by_kind = {
        "*": Resource(arn="*"),
        "network-interface": Resource(
            arn=_arn("network-interface", ENI),
            context={
                **in_vpc,
                **(
                    {} if creating else {f"aws:ResourceTag/{k}": v for k, v in eni_tags_now.items()}
                ),
            },
        ),
        "subnet": Resource(arn=_arn("subnet", SUBNET), context=in_vpc),
        "security-group": Resource(arn=_arn("security-group", SG), context=in_vpc),
        "instance": Resource(arn=_arn("instance", INSTANCE), context=in_vpc),
    }
    context: dict[str, str] = {}
    if creating:
        context.update({f"aws:RequestTag/{k}": v for k, v in create_tags.items()})
    if action == "CreateTags" and create_action:
        context["ec2:CreateAction"] = create_action
    return Request(
        action=action,
        resources=[by_kind[kind] for kind in AUTHORIZED_RESOURCES[action]],
        context=context,
    )


def _called_actions() -> set[str]:
    """The action names in aws/ec2.py's `self.call("…")` and `self._paged("…")`."""
    tree = ast.parse(inspect.getsource(ec2_module))
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"call", "_paged"}
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def _granted_actions(policy: Mapping[str, Any]) -> set[str]:
    granted: set[str] = set()
    for statement in policy["Statement"]:
        action = statement["Action"]
        granted.update([action] if isinstance(action, str) else action)
    return granted


def test_the_action_list_is_what_the_client_calls() -> None:
    assert len(set(EC2_ACTIONS)) == len(EC2_ACTIONS)
    assert _called_actions() == set(EC2_ACTIONS)


@pytest.mark.parametrize("action", [*EC2_ACTIONS, "CreateTags"])
def test_every_call_the_controller_makes_is_allowed(action: str) -> None:
    assert denied_resources(POLICY, _request(action)) == []


def test_the_policy_grants_those_actions_and_nothing_else() -> None:
    wanted = {f"ec2:{a}" for a in (*EC2_ACTIONS, "CreateTags")}
    assert _granted_actions(POLICY) == wanted
    assert not any("*" in action for action in _granted_actions(POLICY))


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(
            _request("CreateNetworkInterface", create_tags=_tags(None)), id="no-cluster-tag"
        ),
        pytest.param(
            _request("CreateNetworkInterface", create_tags=_tags("other")), id="other-cluster-tag"
        ),
        pytest.param(_request("CreateNetworkInterface", vpc=OTHER_VPC), id="subnet-of-other-vpc"),
        pytest.param(_request("CreateTags", create_action=None), id="tag-existing-resource"),
        pytest.param(
            _request("CreateTags", create_action="RunInstances"), id="tag-at-other-create"
        ),
        pytest.param(
            _request("DeleteNetworkInterface", eni_tags_now=_tags("other")), id="delete-theirs"
        ),
        pytest.param(
            _request("DetachNetworkInterface", eni_tags_now=_tags(None)), id="detach-untagged"
        ),
        pytest.param(_request("AttachNetworkInterface", eni_tags_now={}), id="attach-foreign-eni"),
        pytest.param(
            _request("ModifyNetworkInterfaceAttribute", vpc=OTHER_VPC, eni_tags_now={}),
            id="modify-foreign-eni",
        ),
    ],
)
def test_the_policy_refuses_what_is_not_this_clusters(request_: Request) -> None:
    assert denied_resources(POLICY, request_) != []


def test_tag_conditions_name_tags_every_create_sets() -> None:
    conditioned: dict[str, str] = {}
    for statement in POLICY["Statement"]:
        for keys in statement.get("Condition", {}).values():
            for key, value in keys.items():
                for prefix in ("aws:RequestTag/", "aws:ResourceTag/"):
                    if key.startswith(prefix):
                        conditioned[key.removeprefix(prefix)] = value
    assert f"kubernetes.io/cluster/{CLUSTER}" in conditioned
    assert conditioned.items() <= dict(OURS).items()
    # and without CLUSTER_NAME a create carries no cluster tag: the policy needs one
    assert not conditioned.items() <= dict(_tags(None)).items()


def test_the_rendered_policy_is_complete_json() -> None:
    text = json.dumps(POLICY)
    assert json.loads(text) == POLICY
    assert POLICY["Version"] == "2012-10-17"
    assert "${" not in text
    assert all(s["Effect"] == "Allow" and s["Sid"] for s in POLICY["Statement"])


def test_the_committed_file_is_the_template_and_filling_it_renders_the_policy() -> None:
    text = POLICY_FILE.read_text()
    assert json.loads(text) == iam.policy_template()
    assert all(placeholder in text for placeholder in iam.PLACEHOLDERS.values())
    filled = (
        text.replace("${CLUSTER_NAME}", CLUSTER)
        .replace("${VPC_ID}", VPC)
        .replace("${REGION}", REGION)
        .replace("${ACCOUNT_ID}", ACCOUNT)
    )
    assert json.loads(filled) == POLICY


@pytest.mark.parametrize(
    "bad",
    [
        {"cluster_name": "*"},
        {"cluster_name": "prod/x"},
        {"vpc_id": "vpc-*"},
        {"region": "eu-west"},
        {"account_id": "12345"},
    ],
)
def test_render_refuses_wildcards_and_malformed_ids(bad: dict[str, str]) -> None:
    args = {"cluster_name": CLUSTER, "vpc_id": VPC, "region": REGION, "account_id": ACCOUNT}
    with pytest.raises(iam.PolicyInputError):
        iam.render_policy(**{**args, **bad})


def test_the_cli_prints_the_policy(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["iam-policy", "--cluster-name", CLUSTER, "--vpc-id", VPC]
    assert cli.main([*argv, "--region", REGION, "--account-id", ACCOUNT]) == 0
    assert json.loads(capsys.readouterr().out) == POLICY

    assert cli.main(argv) == 0  # region and account default to any
    anywhere = json.loads(capsys.readouterr().out)
    assert anywhere == iam.render_policy(cluster_name=CLUSTER, vpc_id=VPC)
    assert "arn:aws:ec2:*:*:network-interface/*" in json.dumps(anywhere)

    assert (
        cli.main(["iam-policy", "--cluster-name", "a*", "--vpc-id", VPC]) == cli.EXIT_CONFIG_ERROR
    )
    assert "cluster name" in capsys.readouterr().err


GO_CONTROLLER_TAGS = {
    "NodeENI": "multus",
    "Node": "node-1",
    "SubnetID": SUBNET,
    "kubernetes.io/cluster/managed-by": "nodeeni-controller",
}


def _complete_tags(*, eni_tags_now: Mapping[str, str], adding: Mapping[str, str]) -> Request:
    """Migration's CreateTags on an ENI that exists: its tags, and the tags it adds."""
    return Request(
        action="CreateTags",
        resources=[
            Resource(
                arn=_arn("network-interface", ENI),
                context={f"aws:ResourceTag/{k}": v for k, v in eni_tags_now.items()},
            )
        ],
        context={f"aws:RequestTag/{k}": v for k, v in adding.items()},
    )


def test_the_go_controllers_enis_may_be_adopted_into_this_cluster_only() -> None:
    adding = {k: v for k, v in OURS.items() if k not in GO_CONTROLLER_TAGS}
    assert (
        denied_resources(POLICY, _complete_tags(eni_tags_now=GO_CONTROLLER_TAGS, adding=adding))
        == []
    )
    # an ENI nobody of ours made, or tags that would make it another cluster's: refused
    foreign = {"Name": "database"}
    assert denied_resources(POLICY, _complete_tags(eni_tags_now=foreign, adding=adding)) != []
    other = {**adding, **{k: v for k, v in _tags("other").items() if k not in OURS}}
    other.pop(f"kubernetes.io/cluster/{CLUSTER}")
    assert (
        denied_resources(POLICY, _complete_tags(eni_tags_now=GO_CONTROLLER_TAGS, adding=other))
        != []
    )

"""Unit tests for eni_controller.reconcile.tags and eni_controller.reconcile.nodes."""

from __future__ import annotations

from typing import Any

import pytest

from eni_controller.reconcile import tags
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.tags import client_token, eni_tags
from tests.harness.resources import network_interface
from tests.samples import INSTANCE_A as INSTANCE
from tests.samples import NODEENI_UID as UID
from tests.samples import SUBNET_A as SUBNET

NODE = "ip-10-0-1-23.ec2.internal"

# AWS tag limits: key 128 characters, value 256 characters.
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256


# --- eni_tags -------------------------------------------------------------------------


def test_eni_tags_without_cluster_name() -> None:
    assert dict(
        eni_tags(
            nodeeni="multus",
            uid=UID,
            node=NODE,
            instance_id=INSTANCE,
            subnet_id=SUBNET,
            cluster_name=None,
        )
    ) == {
        "Name": f"nodeeni-multus-{NODE}-9abcdef0",
        "NodeENI": "multus",
        "NodeENIUID": UID,
        "Node": NODE,
        "InstanceID": INSTANCE,
        "SubnetID": SUBNET,
        "kubernetes.io/cluster/managed-by": "nodeeni-controller",
        "node.k8s.amazonaws.com/no_manage": "true",
    }


def test_eni_tags_with_cluster_name_adds_the_cluster_tag() -> None:
    result = eni_tags(
        nodeeni="multus",
        uid=UID,
        node=NODE,
        instance_id=INSTANCE,
        subnet_id=SUBNET,
        cluster_name="prod-eks",
    )
    assert result["kubernetes.io/cluster/prod-eks"] == "owned"
    assert len(result) == 9


@pytest.mark.parametrize("cluster_name", [None, ""])
def test_no_cluster_tag_without_cluster_name(cluster_name: str | None) -> None:
    result = eni_tags(
        nodeeni="multus",
        uid=UID,
        node=NODE,
        instance_id=INSTANCE,
        subnet_id=SUBNET,
        cluster_name=cluster_name,
    )
    cluster_keys = [k for k in result if k.startswith("kubernetes.io/cluster/")]
    assert cluster_keys == ["kubernetes.io/cluster/managed-by"]


@pytest.mark.parametrize(
    ("subnet_id", "suffix"),
    [("subnet-0123456789abcdef0", "9abcdef0"), ("subnet-1234abcd", "1234abcd")],
)
def test_name_tag_ends_with_last_eight_of_subnet_id(subnet_id: str, suffix: str) -> None:
    result = eni_tags(
        nodeeni="db",
        uid=UID,
        node="n1",
        instance_id=INSTANCE,
        subnet_id=subnet_id,
        cluster_name=None,
    )
    assert result["Name"] == f"nodeeni-db-n1-{suffix}"
    assert result["SubnetID"] == subnet_id


def test_tag_key_constants_match_the_spec() -> None:
    assert (tags.MANAGED_BY_KEY, tags.MANAGED_BY_VALUE) == (
        "kubernetes.io/cluster/managed-by",
        "nodeeni-controller",
    )
    assert (
        tags.NODEENI_KEY,
        tags.NODEENI_UID_KEY,
        tags.NODE_KEY,
        tags.INSTANCE_KEY,
        tags.SUBNET_KEY,
        tags.NO_MANAGE_KEY,
    ) == (
        "NodeENI",
        "NodeENIUID",
        "Node",
        "InstanceID",
        "SubnetID",
        "node.k8s.amazonaws.com/no_manage",
    )


def test_every_tag_fits_ec2_limits_for_long_kubernetes_names() -> None:
    result = eni_tags(
        nodeeni="n" * 200,  # valid metadata.name: up to 253 characters
        uid=UID,
        node="ip-10-0-1-23.us-west-2.compute.internal",
        instance_id=INSTANCE,
        subnet_id=SUBNET,
        cluster_name="prod-eks",
    )
    assert all(len(key) <= TAG_KEY_MAX for key in result)
    assert {k: len(v) for k, v in result.items() if len(v) > TAG_VALUE_MAX} == {}


# --- client_token ---------------------------------------------------------------------

BASE_TOKEN_ARGS: dict[str, str] = {
    "uid": UID,
    "node": NODE,
    "instance_id": INSTANCE,
    "subnet_id": SUBNET,
}


@pytest.mark.parametrize("cluster_name", ["blue", None])
def test_the_owning_cluster_is_read_back_from_the_tags_made(cluster_name: str | None) -> None:
    made = eni_tags(
        nodeeni="n",
        uid="u",
        node="node-1",
        instance_id="i-1",
        subnet_id="subnet-1",
        cluster_name=cluster_name,
    )
    # shared: not an owner
    eni = network_interface("eni-1", tags={**made, "kubernetes.io/cluster/green": "shared"})
    assert tags.owning_cluster(eni) == cluster_name


def test_client_token_is_deterministic_and_fits_aws() -> None:
    token = client_token(**BASE_TOKEN_ARGS)
    assert token == client_token(**BASE_TOKEN_ARGS)
    assert 0 < len(token) <= 64
    assert token.isascii()
    assert token.isprintable()


def test_client_token_fits_even_for_longest_inputs() -> None:
    token = client_token(uid=UID, node="n" * 253, instance_id=INSTANCE, subnet_id=SUBNET)
    assert len(token) <= 64


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uid", "6f1c2d3e-0000-4000-8000-00000000abce"),
        ("node", "ip-10-0-1-24.ec2.internal"),
        ("instance_id", "i-0123456789abcdef1"),
        ("subnet_id", "subnet-0123456789abcdef1"),
    ],
)
def test_client_token_differs_when_any_input_differs(field: str, value: str) -> None:
    assert client_token(**{**BASE_TOKEN_ARGS, field: value}) != client_token(**BASE_TOKEN_ARGS)


def test_client_tokens_of_many_slots_are_distinct() -> None:
    tokens = {
        client_token(uid=uid, node=f"n{n}", instance_id=f"i-0{n}", subnet_id=sub)
        for uid in ("uid-a", "uid-b")
        for n in range(20)
        for sub in ("subnet-1234abcd", "subnet-1234abce")
    }
    assert len(tokens) == 2 * 20 * 2


# --- NodeView.from_api ----------------------------------------------------------------


def raw_node(provider_id: object = None, *, has_spec: bool = True) -> dict[str, Any]:
    raw: dict[str, Any] = {"metadata": {"name": "n1", "labels": {"ng": "multus"}}}
    if has_spec:
        raw["spec"] = {} if provider_id is None else {"providerID": provider_id}
    return raw


@pytest.mark.parametrize(
    ("provider_id", "instance_id", "az"),
    [
        ("aws:///us-east-1a/i-0abc", "i-0abc", "us-east-1a"),
        ("aws:///eu-west-3c/i-0123456789abcdef0", "i-0123456789abcdef0", "eu-west-3c"),
        ("aws:///us-west-2-lax-1a/i-0abc", "i-0abc", "us-west-2-lax-1a"),  # local zone
    ],
)
def test_from_api_parses_ec2_provider_id(provider_id: str, instance_id: str, az: str) -> None:
    view = NodeView.from_api(raw_node(provider_id))
    assert view == NodeView(
        name="n1", labels={"ng": "multus"}, instance_id=instance_id, availability_zone=az
    )
    assert view.on_ec2 is True


@pytest.mark.parametrize(
    "provider_id",
    [
        pytest.param("", id="empty"),
        pytest.param("kind://docker/kind/kind-worker", id="kind"),
        pytest.param("gce://project/us-central1-a/node-1", id="gce"),
        pytest.param(
            "aws:///us-west-2b/57b2bb9f4d-0f1a5b5d76eb4f3f8f5bd3a5b79e7c35/"
            "fargate-ip-192-168-1-1.us-west-2.compute.internal",
            id="fargate",
        ),
        pytest.param("aws:///us-east-1a/i-0abc/extra", id="trailing-path"),
        pytest.param("aws:///us-east-1a/", id="no-instance"),
        pytest.param("aws:///i-0abc", id="no-az"),
        pytest.param("aws:///us-east-1a/i-", id="empty-instance"),
        pytest.param("aws:///us-east-1a/i-0xyz", id="non-hex-instance"),
        pytest.param(" aws:///us-east-1a/i-0abc", id="leading-space"),
        pytest.param(12345, id="not-a-string"),
    ],
)
def test_from_api_non_ec2_provider_id_is_not_on_ec2(provider_id: object) -> None:
    view = NodeView.from_api(raw_node(provider_id))
    assert view.instance_id is None
    assert view.availability_zone is None
    assert view.on_ec2 is False
    assert view.name == "n1"
    assert dict(view.labels) == {"ng": "multus"}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(raw_node(None), id="no-providerID"),
        pytest.param(raw_node(has_spec=False), id="no-spec"),
        pytest.param({**raw_node(has_spec=False), "spec": None}, id="null-spec"),
    ],
)
def test_from_api_without_provider_id_is_not_on_ec2(raw: dict[str, Any]) -> None:
    view = NodeView.from_api(raw)
    assert (view.instance_id, view.availability_zone, view.on_ec2) == (None, None, False)


def test_from_api_tolerates_missing_metadata_and_labels() -> None:
    view = NodeView.from_api({"spec": {"providerID": "aws:///us-east-1a/i-0abc"}})
    assert view.name == ""
    assert dict(view.labels) == {}
    assert view.instance_id == "i-0abc"
    null_labels = NodeView.from_api({"metadata": {"name": "n2", "labels": None}})
    assert (null_labels.name, dict(null_labels.labels)) == ("n2", {})


def test_from_api_labels_are_a_read_only_copy() -> None:
    labels = {"ng": "multus"}
    view = NodeView.from_api({"metadata": {"name": "n1", "labels": labels}})
    labels["ng"] = "changed"
    assert view.labels["ng"] == "multus"
    with pytest.raises(TypeError):
        view.labels["ng"] = "x"  # type: ignore[index]

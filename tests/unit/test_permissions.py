"""The one RBAC list (eni_controller/kube/permissions.py) against the code's own calls.

Every kubernetes_asyncio API method the package calls is found in its source
(by AST, so a comment or a string does not count) and mapped to the RBAC verb
it needs; the verbs of the list must be exactly those, so a call added without
a grant, or a grant left behind after its call went, fails here. The chart's
rules are compared with the same list in tests/chart.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from eni_controller import model
from eni_controller.kube.permissions import (
    Permission,
    agent_permissions,
    controller_permissions,
)

PACKAGE = Path(__file__).resolve().parents[2] / "eni_controller"
# kubernetes_asyncio's generated method names: <action>_<what>.
API_METHOD = re.compile(
    r"^(list|read|create|patch|replace|delete|get)_"
    r"(node|namespaced_\w+|cluster_custom_object\w*|self_subject_access_review|code|api_resources)$"
    r"|^call_api$"
)
CUSTOM = "custom"  # NodeENIs and ENINodes: the generic custom-object calls do not name the plural
# Method -> (resource family, verb). Informers list and also watch (the same call, watch=True).
CALLS: dict[str, set[tuple[str, str]]] = {
    "list_node": {("nodes", "list"), ("nodes", "watch")},
    # kube/resources.py's raw GETs: only Nodes have a path (one Node; metadata watches)
    "call_api": {("nodes", "get"), ("nodes", "watch")},
    "list_cluster_custom_object": {(CUSTOM, "list"), (CUSTOM, "watch")},
    "create_cluster_custom_object": {(CUSTOM, "create")},
    "patch_cluster_custom_object": {(CUSTOM, "patch")},
    "patch_cluster_custom_object_status": {(f"{CUSTOM}/status", "patch")},
    "create_namespaced_event": {("events", "create")},
    "patch_namespaced_event": {("events", "patch")},
    "create_namespaced_lease": {("leases", "create")},
    "read_namespaced_lease": {("leases", "get")},
    "replace_namespaced_lease": {("leases", "update")},
    "list_namespaced_pod": {("pods", "list")},
    "delete_namespaced_pod": {("pods", "delete")},
    # Granted to every authenticated identity: no RBAC of ours.
    "create_self_subject_access_review": set(),
    "get_code": set(),
    "get_api_resources": set(),
}


def _called_methods() -> set[str]:
    called = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and API_METHOD.match(node.attr):
                called.add(node.attr)
    return called


def _family(permission: Permission) -> str:
    base = CUSTOM if permission.group == model.GROUP else permission.resource
    return f"{base}/{permission.subresource}" if permission.subresource else base


def _everything() -> tuple[Permission, ...]:
    return (
        *controller_permissions(release_namespace="eni-system", leader_election=True),
        *agent_permissions(device_plugin_namespace="kube-system"),
    )


def test_every_api_call_of_the_code_is_in_the_table() -> None:
    called = _called_methods()
    assert "patch_namespaced_event" in called  # the scan finds real calls
    assert called == set(CALLS), "a Kubernetes call was added or removed: update CALLS"


def test_the_list_grants_exactly_the_verbs_the_calls_need() -> None:
    needed = set().union(*CALLS.values())
    listed = {(_family(p), verb) for p in _everything() for verb in p.verbs}
    assert listed == needed


def test_the_lease_is_narrowed_by_name_but_create_cannot_be() -> None:
    leases = [
        p
        for p in controller_permissions(release_namespace="ns", leader_election=True)
        if p.resource == "leases"
    ]
    assert {p.verbs: p.names != () for p in leases} == {("create",): False, ("get", "update"): True}
    assert not [p for p in _everything() if p.resource != "leases" and p.names]


def test_a_name_on_an_unnamed_verb_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be narrowed by name"):
        Permission(group="", resource="leases", verbs=("create",), names=("x",), why="test")


def test_rule_and_label_spell_the_permission() -> None:
    (named,) = [
        p for p in controller_permissions(release_namespace="ns", leader_election=True) if p.names
    ]
    assert named.rule() == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "update"],
        "resourceNames": ["nodeeni-controller-leader-election"],
    }
    assert named.label == "rbac:ns/leases.coordination.k8s.io/nodeeni-controller-leader-election"
    status = Permission(
        group=model.GROUP, resource="nodeenis", subresource="status", verbs=("patch",), why="w"
    )
    assert status.rule()["resources"] == ["nodeenis/status"]
    assert "resourceNames" not in status.rule()

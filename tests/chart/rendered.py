"""Reading rendered chart objects: the one workload container, its env, flat RBAC rules.

Shared by the chart tests of the controller (test_chart.py) and of the node
agent (test_agent.py). The chart renders two workloads with their own
ServiceAccounts and roles; `part` tells them apart by the component label every
object of the chart carries (CRDs excepted), so a test about one never
silently reads the other's objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from eni_controller.kube.permissions import Permission
from tests.harness.helm import Helm, HelmError, only

COMPONENT = "app.kubernetes.io/component"
Rule = tuple[str, str, tuple[str, ...]]
# (namespace, None for a ClusterRole; group; resource; sorted verbs; sorted resourceNames)
Grant = tuple[str | None, str, str, tuple[str, ...], tuple[str, ...]]


def part(objects: Sequence[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    """The objects of one component of the chart ("controller" or "agent")."""
    return [o for o in objects if o["metadata"].get("labels", {}).get(COMPONENT) == component]


def container_of(objects: Sequence[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one container of the one workload of `kind` (Deployment, DaemonSet)."""
    (container,) = only(objects, kind)["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def env_of(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's literal env values (fieldRef entries get a stand-in value)."""
    env: dict[str, str] = {}
    for entry in container["env"]:
        assert entry["name"] not in env, f"{entry['name']} set twice"
        env[entry["name"]] = entry.get("value", "from-field-ref")
    return env


def rules_of(role: Mapping[str, Any]) -> set[Rule]:
    """(group, resource, sorted verbs) per resource; refuses wildcards by name or URL."""
    flat = set()
    for rule in role["rules"]:
        assert "resourceNames" not in rule or rule["resourceNames"], rule
        assert "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                flat.add((group, resource, tuple(sorted(rule["verbs"]))))
    return flat


def granted(objects: Sequence[dict[str, Any]]) -> set[Grant]:
    """Every rule of the rendered Roles and ClusterRoles, one entry per group and resource."""
    grants: set[Grant] = set()
    for role in objects:
        if role["kind"] not in {"Role", "ClusterRole"}:
            continue
        namespace = role["metadata"]["namespace"] if role["kind"] == "Role" else None
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, rule
            names = tuple(sorted(rule.get("resourceNames", ())))
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    grants.add((namespace, group, resource, tuple(sorted(rule["verbs"])), names))
    return grants


def wanted(permissions: Sequence[Permission]) -> set[Grant]:
    """The grants that give exactly `permissions` (eni_controller/kube/permissions.py)."""
    return {
        (p.namespace, p.group, p.full_resource, tuple(sorted(p.verbs)), tuple(sorted(p.names)))
        for p in permissions
    }


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """An equality selector (matchLabels, a Service's selector) matches these labels."""
    return selector.items() <= labels.items()


def schema_refusal(helm: Helm, directory: Path, values: Mapping[str, Any]) -> str:
    """helm's stderr for a values file that values.schema.json refuses (fails otherwise)."""
    path = directory / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    with pytest.raises(HelmError) as caught:
        helm.template(values_files=[path])
    assert caught.value.returncode != 0
    assert "don't meet the specifications of the schema" in caught.value.stderr
    return caught.value.stderr

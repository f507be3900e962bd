"""The chart's availability defaults and operator options (issue 20), rendered by the real helm.

What an operator of an EKS add-on expects: two replicas that never share a node
if it can be helped, a PodDisruptionBudget and the system-cluster-critical
priority by default, leader election whenever there is more than one replica;
and the usual knobs, each checked for what it renders and that it is off (or
empty) by default: commonLabels on every object, defaultTags as EXTRA_ENI_TAGS,
extraVolumes / extraVolumeMounts, envFrom, a PodMonitor, a NetworkPolicy, and a
`helm test` pod running `eni-controller check` as the controller would.
Strict lint and API validation of ci/all-options-values.yaml (every option on)
run with the other values files in test_chart.py, as do the schema's refusals
of bad option values (its BAD_VALUES table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eni_controller.config import Config
from tests.chart.rendered import COMPONENT, container_of, env_of, part, schema_refusal, selects
from tests.harness.helm import CHART, Helm, find, only

ALL_OPTIONS = CHART / "ci" / "all-options-values.yaml"
HOSTNAME = "kubernetes.io/hostname"


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def _pod_labels(objects: list[dict[str, Any]]) -> dict[str, str]:
    labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert isinstance(labels, dict)
    return labels


def _check_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return only(part(objects, "test"), "Pod")


def _parse_tags(text: str) -> dict[str, str]:
    """EXTRA_ENI_TAGS read back: `k=v,k2=v2`, split on the first `=` of each pair."""
    return dict(pair.split("=", 1) for pair in text.split(","))


# ---- availability defaults ----------------------------------------------------------


def test_defaults_are_two_replicas_with_leader_election_pdb_and_priority(helm: Helm) -> None:
    objects = helm.manifests()
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert env_of(container_of(objects, "Deployment"))["ENABLE_LEADER_ELECTION"] == "true"
    pod = _pod(objects)
    assert pod["priorityClassName"] == "system-cluster-critical"
    budget = only(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert selects(budget["spec"]["selector"]["matchLabels"], _pod_labels(objects))


def test_replicas_avoid_sharing_a_node_by_default(helm: Helm) -> None:
    objects = helm.manifests()
    anti = _pod(objects)["affinity"]["podAntiAffinity"]
    assert list(anti) == ["preferredDuringSchedulingIgnoredDuringExecution"]  # soft
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["weight"] == 100
    assert term["podAffinityTerm"]["topologyKey"] == HOSTNAME
    selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
    assert selects(selector, _pod_labels(objects))  # its own replicas...
    agent_labels = only(objects, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert not selects(selector, agent_labels)  # ...not the agent on the same node


def test_anti_affinity_presets_and_an_explicit_one(helm: Helm) -> None:
    hard = _pod(helm.manifests(set_values={"podAntiAffinityPreset": "hard"}))["affinity"]
    (term,) = hard["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == HOSTNAME
    none = _pod(helm.manifests(set_values={"podAntiAffinityPreset": "none"}))
    assert "affinity" not in none
    # affinity.podAntiAffinity replaces the preset; other affinity keys sit beside it.
    term_key = "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
    explicit = _pod(
        helm.manifests(set_values={f"{term_key}.topologyKey": "topology.kubernetes.io/zone"})
    )["affinity"]["podAntiAffinity"]
    assert list(explicit) == ["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = explicit["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"topologyKey": "topology.kubernetes.io/zone"}
    scheduled = _pod(helm.manifests(values_files=[CHART / "ci" / "scheduling-values.yaml"]))
    assert {"nodeAffinity", "podAntiAffinity"} <= set(scheduled["affinity"])


def test_a_single_replica_is_an_explicit_choice(helm: Helm, tmp_path: Path) -> None:
    """One replica renders once the PDB is off; without leader election only then."""
    single = helm.manifests(
        set_values={
            "replicaCount": "1",
            "podDisruptionBudget.enabled": "false",
            "controller.enableLeaderElection": "false",
        }
    )
    assert only(single, "Deployment")["spec"]["replicas"] == 1
    assert not find(single, "PodDisruptionBudget")
    stderr = schema_refusal(helm, tmp_path, {"controller": {"enableLeaderElection": False}})
    assert "controller.enableLeaderElection does not match: true" in stderr


# ---- commonLabels -------------------------------------------------------------------


def test_common_labels_are_on_every_object_and_no_selector(helm: Helm) -> None:
    objects = helm.manifests(values_files=[ALL_OPTIONS])
    common = {"team": "networking", "cost-center": "4242"}
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "DaemonSet", "PodMonitor", "NetworkPolicy", "Pod", "Role"} <= kinds
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert common.items() <= labels.items(), (obj["kind"], obj["metadata"]["name"])
        assert labels[COMPONENT] in {"controller", "agent", "test"}
    for workload in (only(objects, "Deployment"), only(objects, "DaemonSet")):
        assert common.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        assert not set(common) & set(workload["spec"]["selector"]["matchLabels"])
    for obj in objects:
        selector = obj.get("spec", {}).get("selector", {})
        assert not set(common) & set(selector.get("matchLabels", selector)), obj["kind"]
    assert "team" not in helm.manifests()[0]["metadata"]["labels"]  # off by default


# ---- defaultTags --------------------------------------------------------------------


def test_default_tags_become_extra_eni_tags(helm: Helm) -> None:
    assert "EXTRA_ENI_TAGS" not in env_of(container_of(helm.manifests(), "Deployment"))
    env = env_of(container_of(helm.manifests(values_files=[ALL_OPTIONS]), "Deployment"))
    assert env["EXTRA_ENI_TAGS"] == (
        "cost-center=4242,example.com/environment=prod,owner=platform-team"
    )
    assert _parse_tags(env["EXTRA_ENI_TAGS"]) == {
        "cost-center": "4242",
        "owner": "platform-team",
        "example.com/environment": "prod",
    }
    # A value may hold "=" (split on the first), and an empty value is kept.
    odd = env_of(
        container_of(
            helm.manifests(set_strings={"defaultTags.formula": "a=b", "defaultTags.empty": ""}),
            "Deployment",
        )
    )
    assert _parse_tags(odd["EXTRA_ENI_TAGS"]) == {"empty": "", "formula": "a=b"}


# ---- extraVolumes / extraVolumeMounts / envFrom ---------------------------------------


def test_extra_volumes_mounts_and_env_from(helm: Helm) -> None:
    default = container_of(helm.manifests(), "Deployment")
    assert "envFrom" not in default
    assert [m["mountPath"] for m in default["volumeMounts"]] == ["/tmp"]
    objects = helm.manifests(values_files=[ALL_OPTIONS])
    container = container_of(objects, "Deployment")
    volumes = {v["name"]: v for v in _pod(objects)["volumes"]}
    assert volumes["ca-bundle"] == {"name": "ca-bundle", "configMap": {"name": "corporate-ca"}}
    assert "emptyDir" in volumes["tmp"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/ssl/corporate"]["name"] == "ca-bundle"
    assert mounts["/etc/ssl/corporate"]["readOnly"] is True
    assert set(volumes) == {m["name"] for m in container["volumeMounts"]}
    assert container["envFrom"] == [
        {"configMapRef": {"name": "eni-controller-env"}},
        {"secretRef": {"name": "eni-controller-proxy", "optional": True}, "prefix": "PROXY_"},
    ]


# ---- PodMonitor ---------------------------------------------------------------------


def test_pod_monitor_scrapes_the_controllers_metrics_port(helm: Helm) -> None:
    assert not [o for o in part(helm.manifests(), "controller") if o["kind"] == "PodMonitor"]
    objects = helm.manifests(values_files=[ALL_OPTIONS])
    monitor = only(part(objects, "controller"), "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert selects(monitor["spec"]["selector"]["matchLabels"], _pod_labels(objects))
    agent_labels = only(objects, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert not selects(monitor["spec"]["selector"]["matchLabels"], agent_labels)
    ports = {p["name"] for p in container_of(objects, "Deployment")["ports"]}
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert "metrics" in ports
    assert not find(objects, "ServiceMonitor")


# ---- NetworkPolicy ------------------------------------------------------------------


def test_network_policy_opens_metrics_and_health_only(helm: Helm) -> None:
    assert not find(helm.manifests(), "NetworkPolicy")
    objects = helm.manifests(set_values={"networkPolicy.enabled": "true"})
    policy = only(objects, "NetworkPolicy")["spec"]
    assert selects(policy["podSelector"]["matchLabels"], _pod_labels(objects))
    agent_labels = only(objects, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert not selects(policy["podSelector"]["matchLabels"], agent_labels)
    assert policy["policyTypes"] == ["Ingress"]  # egress unrestricted
    assert "egress" not in policy
    (rule,) = policy["ingress"]
    assert "from" not in rule  # anyone, but only to these ports
    container_ports = {p["name"] for p in container_of(objects, "Deployment")["ports"]}
    assert {p["port"] for p in rule["ports"]} == container_ports == {"metrics", "health"}
    shared = only(
        helm.manifests(
            set_values={
                "networkPolicy.enabled": "true",
                "metrics.port": "9000",
                "health.port": "9000",
            }
        ),
        "NetworkPolicy",
    )
    assert [p["port"] for p in shared["spec"]["ingress"][0]["ports"]] == ["metrics"]


def test_network_policy_peers_and_egress_rules(helm: Helm) -> None:
    policy = only(helm.manifests(values_files=[ALL_OPTIONS]), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert [p["port"] for rule in policy["egress"] for p in rule["ports"]] == [53, 53, 443]


# ---- helm test ----------------------------------------------------------------------


@pytest.mark.parametrize("values", [(), (ALL_OPTIONS,)], ids=["defaults", "all-options"])
def test_helm_test_pod_runs_check_as_the_controller(helm: Helm, values: tuple[Path, ...]) -> None:
    objects = helm.manifests(values_files=values)
    pod = _check_pod(objects)
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["args"] == ["check"]
    controller_pod = _pod(objects)
    controller = container_of(objects, "Deployment")
    assert spec["serviceAccountName"] == controller_pod["serviceAccountName"]
    for key in ("image", "env", "securityContext", "volumeMounts"):
        assert container[key] == controller[key], key
    assert container.get("envFrom") == controller.get("envFrom")
    assert spec["volumes"] == controller_pod["volumes"]
    assert spec["securityContext"] == controller_pod["securityContext"]
    env = env_of(container)
    Config.from_env({**env, "POD_NAMESPACE": "eni-system"})  # the settings `run` gets
    # No selector of the controller matches it (its ReplicaSet would adopt it).
    labels = pod["metadata"]["labels"]
    assert not selects(only(objects, "Deployment")["spec"]["selector"]["matchLabels"], labels)
    for obj in objects:
        if obj["kind"] in {"Service", "PodDisruptionBudget", "NetworkPolicy", "PodMonitor"}:
            spec_of = obj["spec"]
            selector = spec_of.get("podSelector", spec_of.get("selector", {}))
            assert not selects(selector.get("matchLabels", selector), labels), obj["kind"]


def test_helm_test_pod_can_be_left_out(helm: Helm) -> None:
    assert part(helm.manifests(set_values={"helmTest.enabled": "false"}), "test") == []

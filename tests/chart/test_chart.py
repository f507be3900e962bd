"""The Helm chart, rendered by the real helm and checked offline.

What an operator relies on when installing: `helm lint --strict` passes for the
defaults and for real-world values files; every rendered object is valid for
the Kubernetes API (kubernetes-validate, strict: a misspelt field fails); the
Deployment runs hardened and sets every variable the controller reads, with
values the controller accepts; RBAC grants exactly what the controller uses;
and values.schema.json refuses bad values with the path of the bad value.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from eni_controller.config import Config
from eni_controller.kube.leader import DEFAULT_LEASE_NAME
from eni_controller.kube.permissions import controller_permissions
from tests.chart.rendered import (
    Grant,
    container_of,
    env_of,
    granted,
    part,
    schema_refusal,
    selects,
    wanted,
)
from tests.harness.helm import CHART, REPO, Helm, HelmError, find, only

# EKS's oldest supported minor as of this chart; kubernetes-validate bundles 1.25-1.37.
KUBE_VERSIONS = ("1.29.0", "1.33.0")
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
KIND_VALUES = REPO / "deploy" / "kind" / "values.yaml"
VALUE_SETS: dict[str, tuple[Path, ...]] = {
    "defaults": (),
    **{path.stem: (path,) for path in CI_VALUES},
    "kind": (KIND_VALUES,),
}
# No bundled schema: checked by the tests below and in test_agent.py instead.
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
# Variables the chart leaves to the controller's default on purpose.
# BIND_ADDRESS: all interfaces in a pod; LOG_FORMAT: json, the default, is what a
# cluster's log pipeline reads; AWS_DEFAULT_REGION: the AWS SDKs' fallback name
NOT_SET_BY_CHART = {"BIND_ADDRESS", "LOG_FORMAT", "AWS_DEFAULT_REGION"}


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return container_of(objects, "Deployment")


_env = env_of


class _RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name Config.from_env asks for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_ci_values_files_exist() -> None:
    assert len(CI_VALUES) >= 3, CI_VALUES


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_lint_strict(helm: Helm, values: tuple[Path, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in values:
        args += ["--values", str(path)]
    out = helm.run(*args).stdout
    assert "0 chart(s) failed" in out, out


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_rendered_manifests_validate_strict(
    helm: Helm, kubernetes_validate: Path, values: tuple[Path, ...]
) -> None:
    rendered = helm.template(values_files=values, include_crds=True)
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert {"CustomResourceDefinition", "Deployment", "DaemonSet", "ClusterRole"} <= kinds
    for version in KUBE_VERSIONS:
        done = subprocess.run(
            [str(kubernetes_validate), "--strict", "--quiet", "-k", version, "-"],
            input=rendered,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        skipped = [line for line in output.splitlines() if line.startswith("WARN")]
        for line in skipped:  # only kinds without a bundled schema may be skipped
            assert any(f"kind {kind} " in line for kind in CUSTOM_KINDS), line


def test_validator_catches_a_misspelt_field(helm: Helm, kubernetes_validate: Path) -> None:
    """The validation above is real: the same pipeline fails on one bad field."""
    objects = helm.manifests()
    _container(objects)["securityContext"]["readOnlyRootFilesytem"] = True
    bad = yaml.safe_dump(only(objects, "Deployment"))
    done = subprocess.run(
        [str(kubernetes_validate), "--strict", "--quiet", "-k", KUBE_VERSIONS[0], "-"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "readOnlyRootFilesytem" in done.stdout


def test_deployment_is_hardened(helm: Helm) -> None:
    objects = helm.manifests()
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(objects)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in security
    # Scratch space for a read-only root: /tmp is an emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    assert container["args"][0] == "run"


def test_probes_and_ports(helm: Helm) -> None:
    container = _container(helm.manifests())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8081}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8081}
    env = _env(container)
    assert (env["METRICS_PORT"], env["HEALTH_PROBE_PORT"]) == ("8080", "8081")


def test_one_port_when_metrics_and_probes_share_it(helm: Helm) -> None:
    container = _container(
        helm.manifests(set_values={"metrics.port": "9000", "health.port": "9000"})
    )
    assert [p["containerPort"] for p in container["ports"]] == [9000]
    assert container["livenessProbe"]["httpGet"]["port"] == 9000


def test_pod_namespace_comes_from_the_downward_api(helm: Helm) -> None:
    (entry,) = [e for e in _container(helm.manifests())["env"] if e["name"] == "POD_NAMESPACE"]
    assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_env_sets_every_variable_the_controller_reads(helm: Helm) -> None:
    recorder = _RecordingEnv()
    Config.from_env(recorder)
    env = _env(_container(helm.manifests(values_files=[CHART / "ci" / "irsa-ha-values.yaml"])))
    # empty in this values file: the AWS default, no extra ENI tags (defaultTags)
    optional = {"AWS_ENDPOINT_URL", "EXTRA_ENI_TAGS"}
    assert recorder.asked - NOT_SET_BY_CHART - optional <= set(env), "variables not set"
    assert set(env) <= recorder.asked | {"AWS_STS_REGIONAL_ENDPOINTS"}, "unknown variables"


def test_chart_defaults_are_the_controller_defaults(helm: Helm) -> None:
    env = _env(_container(helm.manifests(namespace="default")))
    env["POD_NAMESPACE"] = "default"
    assert Config.from_env(env) == Config()


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_the_controller_accepts_the_rendered_env(helm: Helm, values: tuple[Path, ...]) -> None:
    env = _env(_container(helm.manifests(values_files=values)))
    env["POD_NAMESPACE"] = "eni-system"
    Config.from_env(env)  # raises ConfigError naming any variable it refuses


def test_custom_values_reach_the_env(helm: Helm) -> None:
    env = _env(
        _container(helm.manifests(values_files=[CHART / "ci" / "custom-endpoint-values.yaml"]))
    )
    config = Config.from_env({**env, "POD_NAMESPACE": "eni-system"})
    assert config.aws_region == "ap-southeast-2"
    assert config.aws_endpoint_url is not None
    assert "vpce" in config.aws_endpoint_url
    assert config.max_concurrent_reconciles == 10
    assert config.max_concurrent_eni_cleanup == 6
    assert config.enable_leader_election is False
    assert config.max_cleanup_duration_seconds == 3600
    assert config.ec2_rate_limits.mutating.refill_per_second == 2.5
    assert config.default_device_index == 2
    assert config.default_delete_on_termination is False
    assert config.log_level == "debug"


def test_allow_lists_reach_the_env(helm: Helm) -> None:
    default = _env(_container(helm.manifests()))
    assert "SUBNET_ALLOW_TAG" not in default  # empty: no allow-list
    assert "SECURITY_GROUP_ALLOW_TAG" not in default
    env = _env(_container(helm.manifests(values_files=[CHART / "ci" / "irsa-ha-values.yaml"])))
    config = Config.from_env({**env, "POD_NAMESPACE": "eni-system"})
    assert config.subnet_allow_tag == ("multus", "true")
    assert config.security_group_allow_tag == ("eni-controller/allowed", "true")


# One replica without leader election (then no PodDisruptionBudget: it could never be met).
SINGLE_REPLICA = {
    "replicaCount": "1",
    "controller.enableLeaderElection": "false",
    "podDisruptionBudget.enabled": "false",
}


def _controller_grants(objects: list[dict[str, Any]]) -> set[Grant]:
    return granted(part(objects, "controller"))


@pytest.mark.parametrize("electing", [True, False], ids=["leader-election", "single"])
def test_rbac_is_exactly_what_the_controller_uses(helm: Helm, electing: bool) -> None:
    """The rendered rules equal the one list the code and `check` use, both ways."""
    objects = helm.manifests(set_values={} if electing else SINGLE_REPLICA)
    needed = controller_permissions(release_namespace="eni-system", leader_election=electing)
    assert _controller_grants(objects) == wanted(needed)
    controller = part(objects, "controller")
    account = only(controller, "ServiceAccount")["metadata"]["name"]
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in controller}
    for binding in (*find(controller, "ClusterRoleBinding"), *find(controller, "RoleBinding")):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": "eni-system"}
        ]
        ref = binding["roleRef"]
        assert (ref["kind"], binding["metadata"].get("namespace"), ref["name"]) in roles
    text = yaml.safe_dump_all([*find(controller, "ClusterRole"), *find(controller, "Role")])
    for forbidden in ("secrets", "pods", "exec", "'*'", "escalate", "impersonate", "bind"):
        assert forbidden not in text, forbidden


def test_rbac_comparison_sees_an_extra_verb(helm: Helm) -> None:
    """The comparison above is not vacuous: one verb more, or one less, is a difference."""
    objects = helm.manifests()
    needed = controller_permissions(release_namespace="eni-system", leader_election=True)
    role = next(o for o in part(objects, "controller") if o["kind"] == "ClusterRole")
    role["rules"][0]["verbs"].append("get")
    assert _controller_grants(objects) != wanted(needed)
    role["rules"][0]["verbs"].remove("get")
    assert _controller_grants(objects) == wanted(needed)
    role["rules"][0]["verbs"].remove("watch")
    assert _controller_grants(objects) != wanted(needed)


def test_the_lease_is_narrowed_by_name(helm: Helm) -> None:
    (lease_role,) = [
        o
        for o in part(helm.manifests(), "controller")
        if o["kind"] == "Role" and o["metadata"]["namespace"] == "eni-system"
    ]
    by_verbs = {tuple(r["verbs"]): r.get("resourceNames") for r in lease_role["rules"]}
    assert by_verbs == {("create",): None, ("get", "update"): [DEFAULT_LEASE_NAME]}


def test_no_lease_role_without_leader_election(helm: Helm) -> None:
    objects = part(helm.manifests(set_values=SINGLE_REPLICA), "controller")
    in_release = [o for o in objects if o["metadata"].get("namespace") == "eni-system"]
    assert not find(in_release, "Role")
    assert not find(in_release, "RoleBinding")
    assert not [g for g in _controller_grants(objects) if g[2] == "leases"]


def test_rbac_and_service_account_can_be_left_out(helm: Helm) -> None:
    objects = helm.manifests(
        set_values={
            "rbac.create": "false",
            "serviceAccount.create": "false",
            "agent.serviceAccount.create": "false",
        },
        set_strings={"serviceAccount.name": "existing", "agent.serviceAccount.name": "node"},
    )
    assert not {"ServiceAccount", "ClusterRole", "Role"} & {o["kind"] for o in objects}
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "existing"
    agent_pod = only(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert agent_pod["serviceAccountName"] == "node"


def test_optional_objects_are_off_by_default(helm: Helm) -> None:
    objects = helm.manifests()
    assert sorted(o["kind"] for o in part(objects, "controller")) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    # The node agent is on by default (its DaemonSet, ServiceAccount and ClusterRole).
    assert sorted(o["kind"] for o in part(objects, "agent")) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "ServiceAccount",
    ]
    # The `helm test` hook pod (tests/chart/test_options.py).
    assert [o["kind"] for o in part(objects, "test")] == ["Pod"]
    assert sum(len(part(objects, c)) for c in ("controller", "agent", "test")) == len(objects)


def test_production_values(helm: Helm) -> None:
    objects = part(
        helm.manifests(values_files=[CHART / "ci" / "irsa-ha-values.yaml"]), "controller"
    )
    account = only(objects, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::"
    )
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = only(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
    service = only(objects, "Service")
    assert selects(service["spec"]["selector"], pod_labels)
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = only(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    dashboard = only(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["aws-multi-eni-controller.json"].lstrip().startswith("{")


def test_scheduling_values(helm: Helm) -> None:
    objects = helm.manifests(values_files=[CHART / "ci" / "scheduling-values.yaml"])
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["node-group"] == "system"
    assert {t["key"] for t in pod["tolerations"]} == {
        "CriticalAddonsOnly",
        "node-role.kubernetes.io/control-plane",
    }
    assert "nodeAffinity" in pod["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "ecr-pull"}]
    container = pod["containers"][0]
    assert container["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert container["resources"]["limits"]["cpu"] == "1"


def test_the_crds_have_one_source(helm: Helm) -> None:
    crds = sorted((CHART / "crds").iterdir())
    assert [p.name for p in crds] == [
        "networking.k8s.aws_eninodes.yaml",
        "networking.k8s.aws_nodeenis.yaml",
    ]
    assert not find(helm.manifests(), "CustomResourceDefinition"), "a template renders a CRD"
    rendered = find(helm.manifests(include_crds=True), "CustomResourceDefinition")
    by_name = {crd["metadata"]["name"]: crd for crd in rendered}
    for path in crds:
        crd = yaml.safe_load(path.read_text())
        assert by_name.pop(crd["metadata"]["name"]) == crd, path.name
    assert not by_name, f"rendered CRDs without a file in crds/: {sorted(by_name)}"


def test_pdb_must_leave_room_to_drain(helm: Helm) -> None:
    with pytest.raises(HelmError) as caught:
        helm.template(set_values={"replicaCount": "1"})  # the PDB is on by default
    assert "podDisruptionBudget.minAvailable (1) must be less than replicaCount (1)" in (
        caught.value.stderr
    )
    assert "set podDisruptionBudget.enabled=false" in caught.value.stderr
    objects = helm.manifests(
        set_values={"podDisruptionBudget.enabled": "true", "replicaCount": "3"},
        set_strings={"podDisruptionBudget.maxUnavailable": "50%"},
    )
    assert only(objects, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": "50%",
        "selector": {"matchLabels": only(objects, "Deployment")["spec"]["selector"]["matchLabels"]},
    }


BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "string-for-reconciles": (
        {"controller": {"maxConcurrentReconciles": "5"}},
        "controller.maxConcurrentReconciles: Invalid type. Expected: integer, given: string",
    ),
    "zero-reconciles": (
        {"controller": {"maxConcurrentReconciles": 0}},
        "controller.maxConcurrentReconciles: Must be greater than or equal to 1",
    ),
    "typo-in-a-key": (
        {"controller": {"maxConcurentReconciles": 5}},
        "Additional property maxConcurentReconciles is not allowed",
    ),
    "go-chart-only-key": ({"eniManager": {"debug": True}}, "Additional property eniManager"),
    "go-chart-resources-layout": (
        {"resources": {"controller": {"limits": {"cpu": "500m"}}}},
        "resources: Additional property controller is not allowed",
    ),
    "fs-group-in-the-container-context": (
        {"securityContext": {"fsGroup": 2000}},
        "securityContext: Additional property fsGroup is not allowed",
    ),
    "region": ({"awsRegion": "US East"}, "awsRegion: Does not match pattern"),
    "endpoint": ({"awsEndpointUrl": "moto:5000"}, "awsEndpointUrl: Does not match pattern"),
    "vpc-id": ({"vpcId": "vpc-123"}, "vpcId: Does not match pattern"),
    "duration-without-unit": (
        {"controller": {"detachmentTimeout": "15"}},
        "controller.detachmentTimeout: Does not match pattern",
    ),
    "duration-as-number": (
        {"controller": {"reconcilePeriod": 300}},
        "controller.reconcilePeriod: Invalid type. Expected: string, given: integer",
    ),
    "privileged-port": ({"metrics": {"port": 80}}, "metrics.port: Must be greater than or equal"),
    "rate": (
        {"controller": {"ec2RateLimits": {"mutatingRate": 0}}},
        "controller.ec2RateLimits.mutatingRate: Must be greater than 0",
    ),
    "log-level": ({"logLevel": "verbose"}, "logLevel: logLevel must be one of"),
    "device-index-past-the-crd": (
        {"controller": {"defaultDeviceIndex": 80}},
        "controller.defaultDeviceIndex: Must be less than or equal to 79",
    ),
    "replicas-without-leader-election": (
        {"replicaCount": 2, "controller": {"enableLeaderElection": False}},
        "controller.enableLeaderElection does not match: true",
    ),
    "default-replicas-without-leader-election": (
        {"controller": {"enableLeaderElection": False}},
        "controller.enableLeaderElection does not match: true",
    ),
    "service-monitor-without-metrics": (
        {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
        "metrics.enabled does not match: true",
    ),
    "existing-account-without-name": (
        {"serviceAccount": {"create": False}},
        "serviceAccount.name: String length must be greater than or equal to 1",
    ),
    "pdb-min-and-max": (
        {
            "replicaCount": 2,
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1},
        },
        "podDisruptionBudget: Must not validate the schema (not)",
    ),
    "image-pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
    "annotation-not-a-string": (
        {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": 123}}},
        "Invalid type. Expected: string, given: integer",
    ),
    # issue 20 options (tests/chart/test_options.py)
    "label-of-the-chart": (
        {"commonLabels": {"app.kubernetes.io/component": "other"}},
        'commonLabels: Property name of "app.kubernetes.io/component" does not match',
    ),
    "tag-key-with-comma": (
        {"defaultTags": {"a,b": "x"}},
        'defaultTags: Property name of "a,b" does not match',
    ),
    "tag-key-with-equals": (
        {"defaultTags": {"a=b": "x"}},
        'defaultTags: Property name of "a=b" does not match',
    ),
    "tag-key-aws-prefix": (
        {"defaultTags": {"aws:cloudformation:stack-name": "x"}},
        'defaultTags: Property name of "aws:cloudformation:stack-name" does not match',
    ),
    "tag-value-with-comma": (
        {"defaultTags": {"owner": "a,b"}},
        "defaultTags.owner: Does not match pattern",
    ),
    "tag-value-number": (
        {"defaultTags": {"owner": 7}},
        "defaultTags.owner: Invalid type. Expected: string",
    ),
    "volume-named-tmp": (
        {"controller": {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}},
        "controller.extraVolumes.0.name",
    ),
    "mount-over-tmp": (
        {"controller": {"extraVolumeMounts": [{"name": "x", "mountPath": "/tmp"}]}},
        "controller.extraVolumeMounts.0.mountPath",
    ),
    "mount-without-path": (
        {"controller": {"extraVolumeMounts": [{"name": "x"}]}},
        "mountPath is required",
    ),
    "env-from-typo": (
        {"controller": {"envFrom": [{"configMap": {"name": "x"}}]}},
        "Additional property configMap",
    ),
    "pod-and-service-monitor": (
        {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}},
        "metrics.serviceMonitor.enabled does not match: false",
    ),
    "anti-affinity-preset": ({"podAntiAffinityPreset": "always"}, "podAntiAffinityPreset"),
    "network-policy-peer-typo": (
        {"networkPolicy": {"enabled": True, "metricsFrom": [{"namespaceSelectr": {}}]}},
        "Additional property namespaceSelectr",
    ),
    # prometheusRule.* (templates/prometheusrule.yaml)
    "rule-duration": (
        {"prometheusRule": {"enabled": True, "notReadyFor": "15 minutes"}},
        "prometheusRule.notReadyFor: Does not match pattern",
    ),
    "rule-selector-breaking-out": (
        {"prometheusRule": {"enabled": True, "selector": 'job="a"} or vector(1) #'}},
        "prometheusRule.selector: Does not match pattern",
    ),
    "rule-throttled-share": (
        {"prometheusRule": {"enabled": True, "throttledShare": 2}},
        "prometheusRule.throttledShare: Must be less than or equal to 1",
    ),
    "rule-runbook-fragment": (
        {"prometheusRule": {"enabled": True, "runbookBaseUrl": "https://x/r.md#top"}},
        "prometheusRule.runbookBaseUrl: Does not match pattern",
    ),
    "rule-unknown-key": (
        {"prometheusRule": {"enabled": True, "severity": "page"}},
        "Additional property severity is not allowed",
    ),
}


@pytest.mark.parametrize(("values", "message"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(
    helm: Helm, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    stderr = schema_refusal(helm, tmp_path, values)
    assert message in stderr, stderr


def test_schema_rejects_set_string_for_reconciles(helm: Helm) -> None:
    """The way a string usually sneaks in: --set-string, or a quoted "5" in a values file."""
    with pytest.raises(HelmError) as caught:
        helm.template(set_strings={"controller.maxConcurrentReconciles": "5"})
    assert "controller.maxConcurrentReconciles: Invalid type. Expected: integer" in (
        caught.value.stderr
    )
    with pytest.raises(HelmError):
        helm.run(
            "lint", "--strict", str(CHART), "--set-string", "controller.maxConcurrentReconciles=5"
        )


def test_dockerfile_is_hadolint_clean(hadolint: Path) -> None:
    dockerfile = REPO / "Dockerfile"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = dockerfile.read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2
    assert " AS build" in stages[0]
    assert "USER 65532:65532" in text
    assert 'ENTRYPOINT ["eni-controller"]' in text
    assert 'CMD ["run"]' in text


def test_hadolint_is_not_a_no_op(hadolint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    done = subprocess.run(
        [str(hadolint), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "DL3007" in done.stdout

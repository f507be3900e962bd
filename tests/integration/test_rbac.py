"""The chart's RBAC on a real API server: the controller can do its job, nothing more.

The ServiceAccount, ClusterRole(Binding) and Role(Binding) come from `helm
template` of the real chart, applied to the real kube-apiserver (authorization
mode RBAC). Then, as that ServiceAccount (a TokenRequest token, so the API
server authenticates it like a pod's projected token):
- every request the controller makes succeeds (informer lists, status and
  finalizer patches, Events, the leader Lease), and the preflight's own RBAC
  check passes;
- SubjectAccessReviews confirm the verb matrix, and that reading secrets,
  exec into pods, patching nodes or touching another namespace's Lease are
  denied.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.config import Config
from eni_controller.kube.events import EVENTS_NAMESPACE
from eni_controller.kube.leader import DEFAULT_LEASE_NAME
from eni_controller.kube.writes import MERGE_PATCH
from eni_controller.preflight import kube as kube_checks
from eni_controller.preflight.report import Outcome
from tests.conftest import NodeENIs
from tests.harness.helm import INSTALL_SCRIPT, Helm, find, helm_binary, only
from tests.harness.kube import api_client_from_kubeconfig


@pytest.fixture(scope="module")
def helm() -> Helm:
    binary = helm_binary()
    if binary is None:
        pytest.skip(f"helm not installed: run `bash {INSTALL_SCRIPT}` (make test does)")
    return Helm(binary)


@dataclass(frozen=True, kw_only=True)
class Installed:
    namespace: str
    service_account: str
    objects: list[dict[str, Any]]
    api: client.ApiClient  # authenticated as the chart's ServiceAccount

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


async def _create(api: client.ApiClient, obj: dict[str, Any]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    body = cast(Any, obj)
    namespace = obj["metadata"].get("namespace")
    match obj["kind"]:
        case "ServiceAccount":
            await client.CoreV1Api(api).create_namespaced_service_account(namespace, body)
        case "ClusterRole":
            await rbac.create_cluster_role(body)
        case "ClusterRoleBinding":
            await rbac.create_cluster_role_binding(body)
        case "Role":
            await rbac.create_namespaced_role(namespace, body)
        case "RoleBinding":
            await rbac.create_namespaced_role_binding(namespace, body)
        case other:
            raise AssertionError(f"not an RBAC object: {other}")


async def _delete(api: client.ApiClient, obj: dict[str, Any]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    name = obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    try:
        match obj["kind"]:
            case "ServiceAccount":
                await client.CoreV1Api(api).delete_namespaced_service_account(name, namespace)
            case "ClusterRole":
                await rbac.delete_cluster_role(name)
            case "ClusterRoleBinding":
                await rbac.delete_cluster_role_binding(name)
            case "Role":
                await rbac.delete_namespaced_role(name, namespace)
            case "RoleBinding":
                await rbac.delete_namespaced_role_binding(name, namespace)
    except ApiException as err:
        if err.status != HTTPStatus.NOT_FOUND:
            raise


def _token_kubeconfig(kubeconfig: Path, token: str, path: Path) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def installed(
    helm: Helm, kube_api: client.ApiClient, kubeconfig: Path, unique: str, tmp_path: Path
) -> AsyncIterator[Installed]:
    namespace = f"{unique}-eni"
    # the controller's identity; the node agent's has its own checks (tests/chart)
    rendered = helm.manifests(
        release=unique, namespace=namespace, set_values={"agent.enabled": "false"}
    )
    objects = [
        o
        for o in rendered
        if o["kind"]
        in {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    ]
    core = client.CoreV1Api(kube_api)
    await core.create_namespace(cast(Any, {"metadata": {"name": namespace}}))
    created: list[dict[str, Any]] = []
    sa_api: client.ApiClient | None = None
    try:
        for obj in objects:
            await _create(kube_api, obj)
            created.append(obj)
        account = only(objects, "ServiceAccount")["metadata"]["name"]
        token = await core.create_namespaced_service_account_token(
            account, namespace, cast(Any, {"spec": {"expirationSeconds": 3600}})
        )
        sa_api = await api_client_from_kubeconfig(
            _token_kubeconfig(kubeconfig, token.status.token, tmp_path / "sa-kubeconfig")
        )
        yield Installed(namespace=namespace, service_account=account, objects=objects, api=sa_api)
    finally:
        if sa_api is not None:
            await sa_api.close()
        for obj in reversed(created):
            await _delete(kube_api, obj)
        await core.delete_namespace(namespace)


async def _allowed(
    api: client.ApiClient,
    user: str,
    *,
    verb: str,
    resource: str,
    group: str = "",
    subresource: str = "",
    namespace: str | None = None,
    name: str | None = None,
) -> bool:
    attributes: dict[str, str] = {
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "verb": verb,
    }
    if namespace is not None:
        attributes["namespace"] = namespace
    if name is not None:
        attributes["name"] = name
    namespace_of_user = user.split(":")[2]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace_of_user}",
                "system:authenticated",
            ],
            "resourceAttributes": attributes,
        },
    }
    answer = await client.AuthorizationV1Api(api).create_subject_access_review(cast(Any, review))
    return bool(answer.status.allowed)


def test_only_rbac_objects_are_applied(installed: Installed) -> None:
    kinds = sorted(o["kind"] for o in installed.objects)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "ServiceAccount",
    ]
    namespaces = {o["metadata"]["namespace"] for o in find(installed.objects, "Role")}
    assert namespaces == {installed.namespace, EVENTS_NAMESPACE}


async def test_the_controllers_own_calls_are_allowed(
    installed: Installed, kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    api = installed.api
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    # Informers: list (and watch, checked by review below) Nodes and NodeENIs.
    await core.list_node(limit=1)
    await custom.list_cluster_custom_object(model.GROUP, model.VERSION, model.PLURAL, limit=1)
    # Finalizer, annotation and status merge patches on a NodeENI.
    name = f"{unique}-rbac"
    await nodeenis.create(
        name,
        {
            "nodeSelector": {"rbac": unique},
            "subnetID": "subnet-0123abcd",
            "securityGroupIDs": ["sg-0123abcd"],
        },
    )
    await custom.patch_cluster_custom_object(
        model.GROUP,
        model.VERSION,
        model.PLURAL,
        name,
        {"metadata": {"finalizers": [model.FINALIZER]}},
        _content_type=MERGE_PATCH,  # type: ignore[call-arg]
    )
    await custom.patch_cluster_custom_object_status(
        model.GROUP,
        model.VERSION,
        model.PLURAL,
        name,
        {"status": {"observedGeneration": 1}},
        _content_type=MERGE_PATCH,  # type: ignore[call-arg]
    )
    await custom.patch_cluster_custom_object(
        model.GROUP,
        model.VERSION,
        model.PLURAL,
        name,
        {"metadata": {"finalizers": []}},
        _content_type=MERGE_PATCH,  # type: ignore[call-arg]
    )
    # An Event where the controller writes them.
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = await core.create_namespaced_event(
        EVENTS_NAMESPACE,
        cast(
            Any,
            {
                "metadata": {"generateName": f"{name}."},
                "involvedObject": {"kind": model.KIND, "name": name},
                "reason": "RBACTest",
                "message": "written by the chart's ServiceAccount",
                "type": "Normal",
                "firstTimestamp": now,
                "lastTimestamp": now,
            },
        ),
    )
    await client.CoreV1Api(kube_api).delete_namespaced_event(event.metadata.name, EVENTS_NAMESPACE)
    # The leader Lease in the release namespace: create, read, renew.
    leases = client.CoordinationV1Api(api)
    lease = await leases.create_namespaced_lease(
        installed.namespace,
        cast(
            Any,
            {
                "metadata": {"name": DEFAULT_LEASE_NAME},
                "spec": {"holderIdentity": "rbac-test", "leaseDurationSeconds": 15},
            },
        ),
    )
    lease = await leases.read_namespaced_lease(DEFAULT_LEASE_NAME, installed.namespace)
    lease.spec.holder_identity = "rbac-test-2"
    await leases.replace_namespaced_lease(DEFAULT_LEASE_NAME, installed.namespace, lease)
    # ...but not delete it, nor anything in another namespace.
    with pytest.raises(ApiException) as caught:
        await leases.delete_namespaced_lease(DEFAULT_LEASE_NAME, installed.namespace)
    assert caught.value.status == HTTPStatus.FORBIDDEN


async def test_the_preflight_rbac_check_passes(installed: Installed) -> None:
    """`eni-controller check` run as the chart's ServiceAccount finds nothing missing."""
    config = Config(pod_namespace=installed.namespace)
    findings = await kube_checks.rbac_findings(
        installed.api, kube_checks.required_permissions(config)
    )
    assert findings
    assert all(f.outcome is Outcome.PASS for f in findings), findings


async def test_secrets_exec_and_writes_outside_the_job_are_denied(installed: Installed) -> None:
    api = installed.api
    core = client.CoreV1Api(api)
    for call in (
        core.list_secret_for_all_namespaces(),
        core.list_namespaced_secret(installed.namespace),
        core.read_namespaced_secret("anything", "kube-system"),
        core.list_pod_for_all_namespaces(),
        core.delete_node("anything"),
        core.list_config_map_for_all_namespaces(),
    ):
        with pytest.raises(ApiException) as caught:
            await call
        assert caught.value.status == HTTPStatus.FORBIDDEN
    leases = client.CoordinationV1Api(api)
    with pytest.raises(ApiException) as caught:
        await leases.list_namespaced_lease("kube-system")
    assert caught.value.status == HTTPStatus.FORBIDDEN


ALLOWED: tuple[dict[str, str], ...] = (
    *({"verb": v, "resource": "nodes"} for v in ("get", "list", "watch")),
    *(
        {"verb": v, "resource": "nodeenis", "group": model.GROUP}
        for v in ("list", "watch", "patch")
    ),
    {"verb": "patch", "resource": "nodeenis", "subresource": "status", "group": model.GROUP},
    *(
        {"verb": v, "resource": "events", "namespace": EVENTS_NAMESPACE}
        for v in ("create", "patch")
    ),
)
LEASE_VERBS = ("get", "update")  # by name; create names no existing object
# Granted before issue 20 though never called: gone now.
NEVER_CALLED: tuple[dict[str, str], ...] = (
    *({"verb": v, "resource": "nodeenis", "group": model.GROUP} for v in ("get", "update")),
    *(
        {"verb": v, "resource": "nodeenis", "subresource": "status", "group": model.GROUP}
        for v in ("get", "update")
    ),
    {"verb": "create", "resource": "events", "namespace": "kube-system"},
)
DENIED: tuple[dict[str, str], ...] = (
    *NEVER_CALLED,
    *(
        {"verb": v, "resource": "secrets", "namespace": ns}
        for v in ("get", "list", "watch")
        for ns in ("kube-system", "default")
    ),
    {"verb": "create", "resource": "pods", "subresource": "exec", "namespace": "kube-system"},
    {"verb": "get", "resource": "pods", "subresource": "exec", "namespace": "default"},
    {"verb": "create", "resource": "pods", "subresource": "attach", "namespace": "default"},
    {"verb": "list", "resource": "pods"},
    {"verb": "delete", "resource": "pods", "namespace": "default"},
    *({"verb": v, "resource": "nodes"} for v in ("patch", "update", "delete", "create")),
    {"verb": "patch", "resource": "nodes", "subresource": "status"},
    *({"verb": v, "resource": "nodeenis", "group": model.GROUP} for v in ("create", "delete")),
    {
        "verb": "update",
        "resource": "leases",
        "group": "coordination.k8s.io",
        "namespace": "default",
    },
    {
        "verb": "delete",
        "resource": "leases",
        "group": "coordination.k8s.io",
        "namespace": "default",
    },
    {"verb": "get", "resource": "configmaps", "namespace": "kube-system"},
    {
        "verb": "create",
        "resource": "serviceaccounts",
        "subresource": "token",
        "namespace": "default",
    },
    {"verb": "create", "resource": "customresourcedefinitions", "group": "apiextensions.k8s.io"},
    {"verb": "bind", "resource": "clusterroles", "group": "rbac.authorization.k8s.io"},
    {"verb": "escalate", "resource": "clusterroles", "group": "rbac.authorization.k8s.io"},
    {"verb": "impersonate", "resource": "users"},
    {"verb": "impersonate", "resource": "serviceaccounts", "namespace": "kube-system"},
)


async def test_subject_access_review_matrix(
    installed: Installed, kube_api: client.ApiClient
) -> None:
    wrong: list[str] = []
    lease = {"resource": "leases", "group": "coordination.k8s.io"}
    allowed = (
        *ALLOWED,
        *(
            {**lease, "verb": v, "namespace": installed.namespace, "name": DEFAULT_LEASE_NAME}
            for v in LEASE_VERBS
        ),
    )
    allowed = (
        *allowed,
        {**lease, "verb": "create", "namespace": installed.namespace},
    )
    denied = (
        *DENIED,
        {**lease, "verb": "patch", "namespace": installed.namespace, "name": DEFAULT_LEASE_NAME},
        {**lease, "verb": "get", "namespace": installed.namespace, "name": "another-lease"},
        {**lease, "verb": "update", "namespace": installed.namespace, "name": "another-lease"},
    )
    for attributes in allowed:
        if not await _allowed(kube_api, installed.user, **attributes):
            wrong.append(f"denied but needed: {attributes}")
    for attributes in denied:
        if await _allowed(kube_api, installed.user, **attributes):
            wrong.append(f"allowed but must not be: {attributes}")
    assert not wrong, "\n".join(wrong)
    # The review is not vacuous: the same questions for a user without the bindings are denied.
    stranger = f"system:serviceaccount:{installed.namespace}:someone-else"
    assert not await _allowed(kube_api, stranger, verb="list", resource="nodes")

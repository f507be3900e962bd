"""Kubernetes side of the preflight: the API server answers, the NodeENI CRD is
served with its status subresource, and RBAC allows every request the controller
makes (asked with SelfSubjectAccessReview, which every authenticated identity
may create, so the answer is about the identity the controller runs as)."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Final

from aiohttp import ClientError
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.config import Config
from eni_controller.kube.permissions import Permission, controller_permissions
from eni_controller.preflight.report import Finding, failed, passed

CRD_NAME: Final = f"{model.PLURAL}.{model.GROUP}"


def required_permissions(config: Config) -> tuple[Permission, ...]:
    """Every request the controller makes (the list the chart's RBAC is tested against)."""
    return controller_permissions(
        release_namespace=config.pod_namespace, leader_election=config.enable_leader_election
    )


def _api_error(err: Exception) -> str:
    if isinstance(err, ApiException):
        return f"HTTP {err.status} {err.reason}"
    return f"{type(err).__name__}: {err}"


async def api_finding(api: client.ApiClient) -> Finding:
    check = "kubernetes"
    host = api.configuration.host
    try:
        info = await client.VersionApi(api).get_code()
    except ApiException as err:
        if err.status == HTTPStatus.UNAUTHORIZED:
            return failed(check, f"{host}: credentials rejected (HTTP 401)")
        return failed(check, f"{host}: {_api_error(err)}")
    except (ClientError, OSError) as err:
        return failed(check, f"{host}: unreachable ({_api_error(err)})")
    return passed(check, f"{info.git_version} at {host}")


async def crd_finding(api: client.ApiClient) -> Finding:
    check = "crd"
    try:
        resources = await client.CustomObjectsApi(api).get_api_resources(model.GROUP, model.VERSION)
    except (ApiException, ClientError, OSError) as err:
        if isinstance(err, ApiException) and err.status == HTTPStatus.NOT_FOUND:
            return failed(
                check,
                f"{CRD_NAME} ({model.VERSION}) is not installed: apply "
                "helm/aws-multi-eni-controller/crds/ or install the chart",
            )
        return failed(check, f"discovery of {model.GROUP}/{model.VERSION}: {_api_error(err)}")
    served = {r.name for r in resources.resources or ()}
    if model.PLURAL not in served:
        return failed(check, f"{model.GROUP}/{model.VERSION} does not serve {model.PLURAL}")
    if f"{model.PLURAL}/status" not in served:
        return failed(check, f"{CRD_NAME} has no status subresource: re-apply the CRD")
    return passed(check, f"{CRD_NAME} served at {model.VERSION} with status subresource")


async def _allowed(
    api: client.ApiClient, permission: Permission, verb: str, *, name: str | None
) -> bool:
    review: Any = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "group": permission.group,
                "resource": permission.resource,
                "subresource": permission.subresource,
                "verb": verb,
                **({"namespace": permission.namespace} if permission.namespace else {}),
                **({"name": name} if name else {}),
            }
        },
    }
    answer = await client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(answer.status.allowed)


async def rbac_findings(api: client.ApiClient, permissions: Sequence[Permission]) -> list[Finding]:
    findings = []
    for permission in permissions:
        try:
            denied = [
                verb
                for verb in permission.verbs
                for name in (permission.names or (None,))
                if not await _allowed(api, permission, verb, name=name)
            ]
        except (ApiException, ClientError, OSError) as err:
            findings.append(failed(permission.label, f"could not ask: {_api_error(err)}"))
            continue
        verbs = ", ".join(permission.verbs)
        denial = f"denied: {', '.join(denied)} (needs {verbs})"
        allowed = passed(permission.label, f"allowed: {verbs}")
        findings.append(failed(permission.label, denial) if denied else allowed)
    return findings

"""Kubernetes-side test helpers: client from a kubeconfig, the CRDs, Nodes.

The CRDs applied here are the same files the Helm chart installs (every file
in its crds/ folder: NodeENI and ENINode), so the schemas the tests exercise
are the ones users get.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import eninode, model
from tests.harness.ec2world import Instance

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "helm" / "aws-multi-eni-controller" / "crds"
CRD_PATH = CRD_DIR / "networking.k8s.aws_nodeenis.yaml"
MERGE_PATCH = "application/merge-patch+json"


def load_crd(path: Path = CRD_PATH) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(path.read_text())
    return crd


def crd_paths() -> list[Path]:
    """Every CRD the chart installs, in a stable order."""
    return sorted(CRD_DIR.glob("*.yaml"))


async def api_client_from_kubeconfig(path: Path) -> client.ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration)
    return client.ApiClient(configuration)


async def install_crd(api: client.ApiClient, *, established_within: float = 30.0) -> None:
    """Create or update every CRD of the chart and wait until each is Established."""
    ext = client.ApiextensionsV1Api(api)
    names = [await _apply_crd(ext, load_crd(path)) for path in crd_paths()]
    async with asyncio.timeout(established_within):
        for name in names:
            while True:
                current = await ext.read_custom_resource_definition(name)
                conditions = current.status.conditions or []
                if any(c.type == "Established" and c.status == "True" for c in conditions):
                    break
                await asyncio.sleep(0.1)


async def _apply_crd(ext: client.ApiextensionsV1Api, crd: dict[str, Any]) -> str:
    """Create or replace one CRD; returns its name."""
    # The client accepts plain dicts for bodies; its stubs only admit model classes.
    body = cast(Any, crd)
    name: str = crd["metadata"]["name"]
    try:
        current = await ext.read_custom_resource_definition(name)
    except ApiException as err:
        if err.status != HTTPStatus.NOT_FOUND:
            raise
        await ext.create_custom_resource_definition(body)
    else:
        crd["metadata"]["resourceVersion"] = current.metadata.resource_version
        await ext.replace_custom_resource_definition(name, body)
    return name


def node_body(*, name: str, instance: Instance, labels: dict[str, str]) -> dict[str, Any]:
    """A Node as the AWS cloud provider registers it for `instance`."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": instance.az,
                "node.kubernetes.io/instance-type": instance.instance_type,
                **labels,
            },
        },
        "spec": {"providerID": instance.provider_id},
    }


def nodeeni_body(
    name: str, spec: dict[str, Any], *, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A NodeENI as a user applies it."""
    return {
        "apiVersion": f"{model.GROUP}/{model.VERSION}",
        "kind": model.KIND,
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "spec": spec,
    }


async def create_nodeeni(api: client.ApiClient, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = await client.CustomObjectsApi(api).create_cluster_custom_object(
        model.GROUP, model.VERSION, model.PLURAL, nodeeni_body(name, spec)
    )
    return created


class NodeFactory:
    """Creates Nodes for seeded instances and deletes them at teardown."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._names: list[str] = []

    async def create(
        self, *, name: str, instance: Instance, labels: dict[str, str] | None = None
    ) -> Any:
        body = node_body(name=name, instance=instance, labels=labels or {})
        node = await self._core.create_node(cast(Any, body))
        self._names.append(name)
        return node

    async def cleanup(self) -> None:
        """Delete the Nodes, and their ENINodes as the garbage collector would (the
        test API server runs none)."""
        custom = client.CustomObjectsApi(self._api)
        for name in self._names:
            await _unless_missing(self._core.delete_node(name))
            await _unless_missing(
                custom.delete_cluster_custom_object(
                    model.GROUP, model.VERSION, eninode.PLURAL, name
                )
            )
        self._names.clear()


async def _unless_missing(request: Awaitable[Any]) -> None:
    """Await a delete; already gone is fine."""
    try:
        await request
    except ApiException as err:
        if err.status != HTTPStatus.NOT_FOUND:
            raise


async def merge_patch_nodeeni(
    custom: client.CustomObjectsApi, name: str, body: dict[str, Any], *, status: bool = False
) -> dict[str, Any]:
    """Merge-patch a NodeENI (or its status). The client would send a dict as a
    JSON patch, which the server refuses for custom objects."""
    patch = (
        custom.patch_cluster_custom_object_status if status else custom.patch_cluster_custom_object
    )
    result: dict[str, Any] = await patch(
        model.GROUP,
        model.VERSION,
        model.PLURAL,
        name,
        body,
        _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit it
    )
    return result

"""Pods on the test API server, as a device plugin's DaemonSet would have them.

There is no kubelet: a deleted pod bound to a node stays, terminating (its
deletionTimestamp set), until a kubelet confirms it, which is what a real
cluster shows between the delete and the pod's end. `cleanup` force-deletes
every pod this object created.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

NAMESPACE = "kube-system"


class Pods:
    """Pods created through the real API and force-deleted at teardown."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self._names: list[str] = []

    async def create(self, name: str, *, node: str, labels: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "sriovdp", "image": "sriov-device-plugin:test"}],
            },
        }
        await self.core.create_namespaced_pod(NAMESPACE, cast(Any, body))
        self._names.append(name)

    async def terminating(self, name: str) -> bool:
        pod = await self.core.read_namespaced_pod(name, NAMESPACE)
        return pod.metadata.deletion_timestamp is not None

    async def remove(self, name: str) -> None:
        """Force-delete (what the kubelet's confirmation does); gone already is fine."""
        try:
            await self.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        except ApiException as err:
            if err.status != HTTPStatus.NOT_FOUND:
                raise

    async def cleanup(self) -> None:
        for name in self._names:
            await self.remove(name)

"""restart_device_plugin on a real API server: only the device plugin's pod on
this node is deleted, once per call and not again while it terminates.

There is no kubelet: a deleted pod bound to a node stays, terminating (its
deletionTimestamp set), until a kubelet confirms it, which is what a real
cluster shows between the delete and the pod's end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any, cast

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.agent.deviceplugin import restart_device_plugin

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

    async def cleanup(self) -> None:
        for name in self._names:
            try:
                await self.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
            except ApiException as err:
                if err.status != HTTPStatus.NOT_FOUND:
                    raise


@pytest.fixture
async def pods(kube_api: client.ApiClient) -> AsyncIterator[Pods]:
    factory = Pods(kube_api)
    try:
        yield factory
    finally:
        await factory.cleanup()


async def test_only_this_nodes_device_plugin_pod_is_deleted(pods: Pods, unique: str) -> None:
    selector = {"app": f"sriovdp-{unique}"}
    here, there = f"{unique}-node-a", f"{unique}-node-b"
    await pods.create(f"{unique}-dp-a", node=here, labels=selector)
    await pods.create(f"{unique}-dp-b", node=there, labels=selector)
    await pods.create(f"{unique}-other-a", node=here, labels={"app": f"other-{unique}"})

    deleted = await restart_device_plugin(
        pods.core, namespace=NAMESPACE, selector=f"app=sriovdp-{unique}", node=here
    )

    assert deleted == 1
    assert await pods.terminating(f"{unique}-dp-a")
    assert not await pods.terminating(f"{unique}-dp-b")
    assert not await pods.terminating(f"{unique}-other-a")

    # Called again while the pod terminates: its replacement reads the new config
    # anyway, so nothing is deleted twice.
    again = await restart_device_plugin(
        pods.core, namespace=NAMESPACE, selector=f"app=sriovdp-{unique}", node=here
    )
    assert again == 0
    assert not await pods.terminating(f"{unique}-dp-b")

    # The other node's agent restarts its own.
    there_deleted = await restart_device_plugin(
        pods.core, namespace=NAMESPACE, selector=f"app=sriovdp-{unique}", node=there
    )
    assert there_deleted == 1
    assert await pods.terminating(f"{unique}-dp-b")


async def test_no_device_plugin_pod_on_the_node_deletes_nothing(pods: Pods, unique: str) -> None:
    await pods.create(f"{unique}-dp-b", node=f"{unique}-node-b", labels={"app": "sriovdp"})

    deleted = await restart_device_plugin(
        pods.core, namespace=NAMESPACE, selector="app=sriovdp", node=f"{unique}-node-a"
    )

    assert deleted == 0
    assert not await pods.terminating(f"{unique}-dp-b")


async def test_a_malformed_node_name_is_refused_before_any_request(
    kube_api: client.ApiClient,
) -> None:
    with pytest.raises(ValueError, match="not a node name"):
        await restart_device_plugin(
            client.CoreV1Api(kube_api), namespace=NAMESPACE, selector="app=sriovdp", node="a,b=c"
        )


@pytest.mark.parametrize("meanwhile", ["gone", "replaced"])
async def test_a_pod_gone_or_replaced_between_list_and_delete_is_not_counted(
    kube_api: client.ApiClient, pods: Pods, unique: str, meanwhile: str
) -> None:
    """404 (gone) and 409 (a new pod under the same name: the uid precondition)
    are not failures, and the new pod, which already reads the new config, stays."""
    name, node = f"{unique}-dp-a", f"{unique}-node-a"
    labels = {"app": f"sriovdp-{unique}"}
    await pods.create(name, node=node, labels=labels)

    class Racing(client.CoreV1Api):
        async def delete_namespaced_pod(self, *args: Any, **kwargs: Any) -> Any:
            await pods.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
            if meanwhile == "replaced":
                await pods.create(name, node=node, labels=labels)
            return await super().delete_namespaced_pod(*args, **kwargs)

    deleted = await restart_device_plugin(
        Racing(kube_api),
        namespace=NAMESPACE,
        selector=f"app=sriovdp-{unique}",
        node=node,
    )

    assert deleted == 0
    if meanwhile == "replaced":
        assert not await pods.terminating(name)

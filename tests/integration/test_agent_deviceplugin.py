"""restart_device_plugin on a real API server: only the device plugin's pod on
this node is deleted, once per call and not again while it terminates
(tests/harness/pods.py: no kubelet, so a deleted pod stays terminating).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from eni_controller.agent.deviceplugin import restart_device_plugin
from tests.harness.pods import NAMESPACE, Pods


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
            await pods.remove(name)
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

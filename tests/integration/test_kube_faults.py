"""The controller against a Kubernetes API that misbehaves, and correlated Events.

A fault proxy (tests/harness/kubeproxy.py) sits between the controller and the
real API server; the test reads and writes the API server directly. Verdicts
wait on conditions with generous upper bounds, never on elapsed time.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from eni_controller import model
from eni_controller.kube.events import EVENTS_NAMESPACE, EventRecorder
from eni_controller.kube.timeouts import with_request_timeout
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    read_nodeeni,
    reconcile_errors,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, World, ec2_client, launch_instance
from tests.harness.kubeproxy import running_kube_proxy

WITHIN = 60.0  # generous bound on anything that should happen


def _enis_of(world: World, uid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ec2_client(world.endpoint).describe_network_interfaces(
        Filters=[{"Name": f"tag:{tags.NODEENI_UID_KEY}", "Values": [uid]}]
    )["NetworkInterfaces"]
    return found


async def test_a_hung_status_patch_neither_pins_its_key_nor_blocks_others(
    both_ec2: AWSEnv, kubeconfig: Path
) -> None:
    kube_api, nodes, nodeenis, world, _realism, unique = both_ec2
    hung, healthy = f"{unique}-hung", f"{unique}-ok"
    for name in (hung, healthy):
        instance = launch_instance(world.endpoint, az=AZ_A, instance_type="m5.large")
        await nodes.create(name=name, instance=instance, labels={"test": unique, "slot": name})
    # one worker: if the hung request held it, the other NodeENI would never be reconciled
    config = controller_config(world, kube_request_timeout_seconds=2.0, max_concurrent_reconciles=1)
    metrics = Metrics()
    async with running_kube_proxy(kubeconfig) as proxy, proxy.api_client() as proxied:
        hold = proxy.hold(method="PATCH", path_contains=f"/nodeenis/{hung}/status")
        async with running_controller(proxied, config, metrics=metrics) as controller:
            for name in (hung, healthy):
                await nodeenis.create(
                    name,
                    {
                        "nodeSelector": {"test": unique, "slot": name},
                        "subnetIDs": [world.subnet("multus-a").id],
                        "securityGroupNames": ["multus-sg"],
                    },
                )
            await wait_for_nodeeni(kube_api, healthy, is_ready, within=WITHIN)
            # the held PATCH timed out and the key was reconciled again, more than once
            await hold.wait_seen(3, within=WITHIN)
            assert reconcile_errors(metrics, "KubeRequestTimeout") >= 2
            assert not is_ready(await read_nodeeni(kube_api, hung))
            assert controller.live() == (True, "")
            hold.release()
            ready = await wait_for_nodeeni(kube_api, hung, is_ready, within=WITHIN)
            assert controller.live() == (True, "")
    # every retry adopted the ENI the first pass made: one ENI, not one per attempt
    enis = _enis_of(world, ready["metadata"]["uid"])
    assert [e["NetworkInterfaceId"] for e in enis] == [
        a["eniID"] for a in ready["status"]["attachments"]
    ]


# --- Events ------------------------------------------------------------------------------


def _nodeeni(name: str) -> model.NodeENI:
    """Just what an Event names: the involved object (a uid of its own per test)."""
    return model.NodeENI(name=name, uid=f"uid-{secrets.token_hex(8)}", spec=None)


async def _events_of(api: client.ApiClient, nodeeni: model.NodeENI) -> list[Any]:
    found = await client.CoreV1Api(api).list_namespaced_event(
        EVENTS_NAMESPACE, field_selector=f"involvedObject.uid={nodeeni.uid}"
    )
    return sorted(found.items, key=lambda e: (e.reason, e.message, e.metadata.name))


@pytest.fixture
async def involved(kube_api: client.ApiClient, unique: str) -> AsyncIterator[model.NodeENI]:
    nodeeni = _nodeeni(unique)
    yield nodeeni
    core = client.CoreV1Api(kube_api)
    for event in await _events_of(kube_api, nodeeni):
        await core.delete_namespaced_event(event.metadata.name, EVENTS_NAMESPACE)


async def test_repeated_events_are_one_event_with_a_growing_count(
    kube_api: client.ApiClient, involved: model.NodeENI
) -> None:
    recorder = EventRecorder(kube_api)
    for count in (1, 1, 3):
        await recorder.record(
            involved, type_="Warning", reason="ENICreationFailed", message="denied", count=count
        )
    await recorder.record(involved, type_="Warning", reason="ENICreationFailed", message="other")
    await recorder.record(involved, type_="Normal", reason="ENICreated", message="denied")
    events = await _events_of(kube_api, involved)
    assert [(e.reason, e.type, e.message, e.count) for e in events] == [
        ("ENICreated", "Normal", "denied", 1),
        ("ENICreationFailed", "Warning", "denied", 5),
        ("ENICreationFailed", "Warning", "other", 1),
    ]
    repeated = events[1]
    assert repeated.first_timestamp <= repeated.last_timestamp
    assert repeated.involved_object.name == involved.name


async def test_an_expired_event_is_created_again_with_the_count_carried_on(
    kube_api: client.ApiClient, involved: model.NodeENI
) -> None:
    recorder = EventRecorder(kube_api)
    await recorder.record(involved, type_="Warning", reason="InvalidSpec", message="bad")
    (first,) = await _events_of(kube_api, involved)
    await client.CoreV1Api(kube_api).delete_namespaced_event(first.metadata.name, EVENTS_NAMESPACE)
    await recorder.record(involved, type_="Warning", reason="InvalidSpec", message="bad")
    (second,) = await _events_of(kube_api, involved)
    assert second.metadata.name != first.metadata.name
    assert second.count == 2
    await recorder.record(involved, type_="Warning", reason="InvalidSpec", message="bad")
    (third,) = await _events_of(kube_api, involved)
    assert (third.metadata.name, third.count) == (second.metadata.name, 3)


async def test_the_correlation_cache_is_bounded(
    kube_api: client.ApiClient, involved: model.NodeENI
) -> None:
    recorder = EventRecorder(kube_api, cache_size=1)
    for message in ("x", "y", "x"):
        await recorder.record(involved, type_="Normal", reason="ENIAttached", message=message)
    events = await _events_of(kube_api, involved)
    # "x" was forgotten when "y" came: its repeat is a new Event, as for a restart
    assert sorted((e.message, e.count) for e in events) == [("x", 1), ("x", 1), ("y", 1)]


async def test_a_hung_event_write_times_out_and_its_occurrence_is_carried_on(
    kube_api: client.ApiClient, kubeconfig: Path, involved: model.NodeENI
) -> None:
    async with running_kube_proxy(kubeconfig) as proxy, proxy.api_client() as proxied:
        recorder = EventRecorder(with_request_timeout(proxied, seconds=0.5))
        hold = proxy.hold(method="POST", path_contains=f"/namespaces/{EVENTS_NAMESPACE}/events")
        # best effort: the timeout is logged, not raised
        await recorder.record(involved, type_="Warning", reason="CleanupTimeout", message="slow")
        assert hold.seen == 1
        proxy.remove(hold)  # the held create is never sent
        await recorder.record(involved, type_="Warning", reason="CleanupTimeout", message="slow")
    (event,) = await _events_of(kube_api, involved)
    assert event.count == 2

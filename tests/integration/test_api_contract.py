"""What the real API server guarantees and our controller will rely on.

Each test here pins a behaviour of the kube-apiserver + our CRD: schema
rejection with 422, the status subresource, optimistic concurrency (409), and
expired watches (410). If the CRD or the server changes, these break first.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.spec import DEVICE_INDEX_MAX, parse_spec
from tests.conftest import NodeENIs
from tests.harness.kube import merge_patch_nodeeni
from tests.samples import (
    AT_BOUNDS_SPECS,
    INVALID_SPECS,
    OVERSIZED_SPECS,
    SECURITY_GROUPS_PAST_THE_SUM,
    VALID_SPECS,
)


@pytest.mark.parametrize("case", sorted(INVALID_SPECS))
async def test_schema_rejects_invalid_spec(nodeenis: NodeENIs, unique: str, case: str) -> None:
    spec = INVALID_SPECS[case]
    with pytest.raises(ApiException) as raised:
        await nodeenis.create(f"{unique}-{case}", spec)
    assert raised.value.status == HTTPStatus.UNPROCESSABLE_ENTITY, raised.value.body
    _, problems = parse_spec(spec)
    assert problems, f"the model accepts {case!r}, which the CRD schema rejects"


@pytest.mark.parametrize("case", sorted(VALID_SPECS))
async def test_schema_accepts_spec_samples(nodeenis: NodeENIs, unique: str, case: str) -> None:
    created = await nodeenis.create(f"{unique}-{case}", VALID_SPECS[case])
    assert created["metadata"]["uid"]
    parsed, problems = parse_spec(created["spec"])
    assert problems == ()
    assert parsed is not None
    assert parsed.device_index == VALID_SPECS[case].get("deviceIndex", 1)
    assert parsed.delete_on_termination == VALID_SPECS[case].get("deleteOnTermination", True)


@pytest.mark.parametrize("case", sorted(OVERSIZED_SPECS))
async def test_an_oversized_spec_is_refused_naming_the_field_and_its_bound(
    nodeenis: NodeENIs, unique: str, case: str
) -> None:
    spec, field = OVERSIZED_SPECS[case]
    with pytest.raises(ApiException) as raised:
        await nodeenis.create(f"{unique}-{case}", spec)
    assert raised.value.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert raised.value.body is not None
    details = json.loads(raised.value.body)["details"]["causes"]
    # e.g. "Too many: 17: must have at most 16 items", "Too long: may not be longer than 32"
    bounded = [c for c in details if c["field"].startswith(field)]
    assert bounded, details
    assert any(
        word in c["message"] for c in bounded for word in ("at most", "longer than", "less than")
    ), bounded


async def test_at_the_bounds_a_spec_is_stored_whole(nodeenis: NodeENIs, unique: str) -> None:
    spec = AT_BOUNDS_SPECS["at-bounds"]
    created = await nodeenis.create(unique, spec)
    assert created["spec"] == spec  # nothing pruned or cut
    parsed, problems = parse_spec(created["spec"])
    assert problems == ()
    assert parsed is not None
    assert parsed.device_index == DEVICE_INDEX_MAX


async def test_security_groups_past_the_sum_are_stored_and_refused_by_the_controller(
    nodeenis: NodeENIs, unique: str
) -> None:
    # each list within its bound: the 1.20 schema has no rule across two fields
    created = await nodeenis.create(unique, SECURITY_GROUPS_PAST_THE_SUM)
    _, problems = parse_spec(created["spec"])
    assert problems == (
        "spec: 17 security groups in securityGroupIDs and securityGroupNames together"
        " (at most 16 per ENI allowed)",
    )


async def test_omitted_defaults_are_left_to_the_controllers_settings(
    nodeenis: NodeENIs, unique: str
) -> None:
    # no schema default: DEFAULT_DEVICE_INDEX / DEFAULT_DELETE_ON_TERMINATION decide
    created = await nodeenis.create(unique, VALID_SPECS["single-subnet"])
    assert "deviceIndex" not in created["spec"]
    assert "deleteOnTermination" not in created["spec"]
    parsed = model.NodeENI.from_dict(
        created, default_device_index=3, default_delete_on_termination=False
    ).spec
    assert parsed is not None
    assert (parsed.device_index, parsed.delete_on_termination) == (3, False)


async def test_status_subresource_is_separate_from_spec(nodeenis: NodeENIs, unique: str) -> None:
    created = await nodeenis.create(unique, VALID_SPECS["single-subnet"])
    generation = created["metadata"]["generation"]
    attachment = {"nodeID": "node-1", "eniID": "eni-0123456789abcdef0", "status": "attached"}

    # status through the main resource is ignored
    patched = await _patch(nodeenis, unique, {"status": {"attachments": [attachment]}})
    assert "attachments" not in patched.get("status", {})

    # status through the subresource lands and leaves spec and generation alone
    patched = await _patch(
        nodeenis, unique, {"status": {"attachments": [attachment], "attachedCount": 1}}, status=True
    )
    assert patched["status"]["attachments"] == [attachment]
    assert patched["metadata"]["generation"] == generation

    # spec through the subresource is ignored; through the resource it bumps generation
    patched = await _patch(nodeenis, unique, {"spec": {"mtu": 1500}}, status=True)
    assert "mtu" not in patched["spec"]
    patched = await _patch(nodeenis, unique, {"spec": {"mtu": 1500}})
    assert patched["spec"]["mtu"] == 1500
    assert patched["metadata"]["generation"] == generation + 1
    assert patched["status"]["attachments"] == [attachment]


async def test_status_merge_patch_keeps_unrelated_fields(nodeenis: NodeENIs, unique: str) -> None:
    await nodeenis.create(unique, VALID_SPECS["single-subnet"])
    await _patch(nodeenis, unique, {"status": {"observedGeneration": 1}}, status=True)
    patched = await _patch(nodeenis, unique, {"status": {"attachedCount": 0}}, status=True)
    assert patched["status"] == {"observedGeneration": 1, "attachedCount": 0}


async def test_stale_resource_version_conflicts(nodeenis: NodeENIs, unique: str) -> None:
    created = await nodeenis.create(unique, VALID_SPECS["single-subnet"])
    await _patch(nodeenis, unique, {"metadata": {"labels": {"touched": "yes"}}})
    stale = {**created, "spec": {**created["spec"], "mtu": 1500}}
    with pytest.raises(ApiException) as raised:
        await nodeenis.custom.replace_cluster_custom_object(
            model.GROUP, model.VERSION, model.PLURAL, unique, stale
        )
    assert raised.value.status == HTTPStatus.CONFLICT
    # a merge patch carrying the stale resourceVersion is refused too
    with pytest.raises(ApiException) as raised:
        await _patch(
            nodeenis,
            unique,
            {
                "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
                "spec": {"mtu": 1500},
            },
        )
    assert raised.value.status == HTTPStatus.CONFLICT


async def test_watch_from_expired_resource_version_is_gone(kube_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_api)
    # resourceVersion 1 predates the CRD, so the server no longer has its history.
    response = await custom.list_cluster_custom_object(
        model.GROUP,
        model.VERSION,
        model.PLURAL,
        watch=True,
        resource_version="1",
        timeout_seconds=5,
        _preload_content=False,
    )
    async with response:
        line = await response.content.readline()
    event = json.loads(line)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == HTTPStatus.GONE
    assert event["object"]["reason"] == "Expired"


async def test_watch_delivers_events_with_resource_versions(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    listed = await custom.list_cluster_custom_object(model.GROUP, model.VERSION, model.PLURAL)
    start = listed["metadata"]["resourceVersion"]
    created = await nodeenis.create(unique, VALID_SPECS["single-subnet"])
    response = await custom.list_cluster_custom_object(
        model.GROUP,
        model.VERSION,
        model.PLURAL,
        watch=True,
        resource_version=start,
        timeout_seconds=2,
        _preload_content=False,
    )
    async with response:
        events = [json.loads(line) async for line in response.content]
    ours = [e for e in events if e["object"]["metadata"]["name"] == unique]
    assert [e["type"] for e in ours] == ["ADDED"]
    assert (
        ours[0]["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    )


async def _patch(
    nodeenis: NodeENIs, name: str, body: dict[str, Any], *, status: bool = False
) -> dict[str, Any]:
    return await merge_patch_nodeeni(nodeenis.custom, name, body, status=status)

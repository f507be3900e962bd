"""ENINodes in integration tests: read them, wait for them, and play a node's
agent by merge-patching their status subresource as the agent does (with the
agent's own model, eni_controller/eninode.py, rendering the status)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import eninode
from eni_controller.eninode import ENINodeStatus, InterfaceStatus, OperState, Summary
from tests.harness.kube import MERGE_PATCH


async def read_eninode(api: client.ApiClient, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await client.CustomObjectsApi(api).get_cluster_custom_object(
            eninode.GROUP, eninode.VERSION, eninode.PLURAL, name
        )
    except ApiException as err:
        if err.status == HTTPStatus.NOT_FOUND:
            return None
        raise
    return found


async def wait_for_eninode(
    api: client.ApiClient,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    within: float = 30.0,
) -> dict[str, Any]:
    """Poll until the ENINode exists and `predicate(obj)`; fail with the last spec seen."""
    obj: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                obj = await read_eninode(api, name)
                if obj is not None and predicate(obj):
                    return obj
                await asyncio.sleep(0.2)
    except TimeoutError:
        last = None if obj is None else obj.get("spec")
        raise AssertionError(f"eninode {name} never got there; last spec: {last}") from None


def spec_interfaces(obj: dict[str, Any]) -> list[dict[str, Any]]:
    interfaces: list[dict[str, Any]] = (obj.get("spec") or {}).get("interfaces") or []
    return interfaces


async def report(
    api: client.ApiClient, node: str, interfaces: list[InterfaceStatus], *, ready: int | None = None
) -> None:
    """The node's agent writes its status: these entries, and the summary."""
    status = ENINodeStatus(
        summary=Summary(wanted=len(interfaces), ready=len(interfaces) if ready is None else ready),
        interfaces=tuple(interfaces),
    )
    await client.CustomObjectsApi(api).patch_cluster_custom_object_status(
        eninode.GROUP,
        eninode.VERSION,
        eninode.PLURAL,
        node,
        {"status": status.to_dict()},
        _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit it
    )


def interface_up(entry: dict[str, Any], name: str, **facts: Any) -> InterfaceStatus:
    """An agent's status entry for the ENI of a spec (or NodeENI status) entry: up as
    `name`; `facts` (InterfaceStatus fields: mtu, error, ...) override the defaults."""
    up = InterfaceStatus(
        eni_id=entry["eniID"],
        mac_address=entry["macAddress"].lower(),
        interface_name=name,
        mtu=entry.get("mtu", 1500),
        oper_state=OperState.UP,
        driver="ena",
        observed_at="2026-12-04T10:00:00Z",
    )
    return dataclasses.replace(up, **facts)

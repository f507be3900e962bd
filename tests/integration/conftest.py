"""Fixtures of the node agent's integration tests: simulated nodes (a Node, a
network namespace and its hypervisor each), the ENINodes client, and pods as a
device plugin's DaemonSet has them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client

from tests.harness.agents import ENINodes, SimNode, simulated_nodes
from tests.harness.pods import Pods


@pytest.fixture
async def one_node(kube_api: client.ApiClient, unique: str) -> AsyncIterator[SimNode]:
    async with simulated_nodes(kube_api, prefix=f"enin-{unique}", count=1) as nodes:
        yield nodes[0]


@pytest.fixture
async def three_nodes(kube_api: client.ApiClient, unique: str) -> AsyncIterator[list[SimNode]]:
    async with simulated_nodes(kube_api, prefix=f"enin-{unique}", count=3) as nodes:
        yield nodes


@pytest.fixture
def eninodes(kube_api: client.ApiClient) -> ENINodes:
    return ENINodes(kube_api)


@pytest.fixture
async def pods(kube_api: client.ApiClient) -> AsyncIterator[Pods]:
    factory = Pods(kube_api)
    try:
        yield factory
    finally:
        await factory.cleanup()

"""Fixtures of the node agent's integration tests: simulated nodes (a Node, a
network namespace and its hypervisor each), the ENINodes client, and pods as a
device plugin's DaemonSet has them; and, for scale tests, an API server of the
test module's own (tests/harness/memory_cluster.py) with the CRDs installed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes_asyncio import client

from tests.harness.agents import ENINodes, SimNode, simulated_nodes
from tests.harness.apiserver import APIServerEndpoint
from tests.harness.kube import api_client_from_kubeconfig, install_crd
from tests.harness.memory_cluster import own_api_server
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


@pytest.fixture(scope="module")
def own_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[APIServerEndpoint]:
    """An API server of this test module's own: its many Nodes stay out of the session's."""
    name = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    yield from own_api_server(tmp_path_factory.mktemp(f"{name}-apiserver"))


@pytest.fixture
async def own_api(own_server: APIServerEndpoint) -> AsyncIterator[client.ApiClient]:
    api = await api_client_from_kubeconfig(own_server.kubeconfig)
    try:
        await install_crd(api)
        yield api
    finally:
        await api.close()

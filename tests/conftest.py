"""Session fixtures: a real kube-apiserver + etcd and a real moto server.

Servers start lazily, once per session, only when a test asks for them, so unit
tests stay instant. `ENI_TEST_KUBECONFIG=<path>` points the same tests at an
existing cluster (a kind cluster on a laptop) instead of the local API server.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from tests.harness.apiserver import LocalAPIServer
from tests.harness.controller import AWSEnv
from tests.harness.ec2world import FAKE_CREDENTIALS, World, seed_world
from tests.harness.kube import (
    NodeFactory,
    api_client_from_kubeconfig,
    install_crd,
    nodeeni_body,
)
from tests.harness.motoserver import MotoServer
from tests.harness.realism.control import RealismControl

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    # Fake credentials for the moto server; aiobotocore reads them from the environment
    # as the controller does in a pod. Real ones, if set, are never sent anywhere else.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    existing = os.environ.get("ENI_TEST_KUBECONFIG")
    if existing:
        yield Path(existing)
        return
    server = LocalAPIServer(tmp_path_factory.mktemp("apiserver"))
    try:
        yield server.start().kubeconfig
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def kube_api(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    api = await api_client_from_kubeconfig(kubeconfig)
    try:
        await install_crd(api)
        yield api
    finally:
        await api.close()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ec2_world(moto_endpoint: str) -> World:
    return seed_world(moto_endpoint)


@pytest.fixture
def unique() -> str:
    """A short per-test prefix: tests may share one cluster (ENI_TEST_KUBECONFIG)."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
async def nodes(kube_api: client.ApiClient) -> AsyncIterator[NodeFactory]:
    factory = NodeFactory(kube_api)
    try:
        yield factory
    finally:
        await factory.cleanup()


class NodeENIs:
    """Creates NodeENIs through the real API and deletes them at teardown."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self._names: list[str] = []

    async def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self.custom.create_cluster_custom_object(
            model.GROUP, model.VERSION, model.PLURAL, nodeeni_body(name, spec)
        )
        self._names.append(name)
        return created

    async def cleanup(self) -> None:
        for name in self._names:
            try:
                await self.custom.delete_cluster_custom_object(
                    model.GROUP, model.VERSION, model.PLURAL, name
                )
            except ApiException as err:
                if err.status != HTTPStatus.NOT_FOUND:
                    raise
        self._names.clear()


@pytest.fixture
async def nodeenis(kube_api: client.ApiClient) -> AsyncIterator[NodeENIs]:
    factory = NodeENIs(kube_api)
    try:
        yield factory
    finally:
        await factory.cleanup()


@pytest.fixture
def realism(moto_endpoint: str) -> Iterator[RealismControl]:
    """The AWS realism switches of the session's moto server, all off again after the test.

    Reset on entry too, so a test's counters start at zero.
    """
    control = RealismControl(moto_endpoint)
    control.reset()
    try:
        yield control
    finally:
        control.reset()


@pytest.fixture
def aws_env(
    kube_api: client.ApiClient,
    nodes: NodeFactory,
    nodeenis: NodeENIs,
    ec2_world: World,
    realism: RealismControl,
    unique: str,
) -> AWSEnv:
    """Everything a controller test needs, with the realism layer's AWS rules on."""
    realism.aws_rules()
    return AWSEnv(
        api=kube_api,
        nodes=nodes,
        nodeenis=nodeenis,
        world=ec2_world,
        realism=realism,
        unique=unique,
    )


@pytest.fixture(params=["aws-rules", "plain-moto"])
def both_ec2(request: pytest.FixtureRequest, aws_env: AWSEnv) -> AWSEnv:
    """Like `aws_env`, run twice: with the realism layer's AWS rules, and against
    plain moto (every switch off), as users of the kind workflow run it. Plain
    moto ignores DeleteOnTermination changes and ClientTokens, answers at once,
    and enforces no device index, so lifecycle bugs hide in one or the other."""
    if request.param == "aws-rules":
        return aws_env
    aws_env.realism.reset()
    return dataclasses.replace(aws_env, aws_rules=False)

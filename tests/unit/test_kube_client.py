"""cli.kube_client's session: the environment's proxy is read once at start-up, and
the session does not read the environment again on every request (no servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client

from eni_controller import cli

SERVER = "https://10.1.2.3:6443"
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY")


def _kubeconfig(tmp_path: Path, **cluster: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": SERVER, **cluster}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
async def opened() -> AsyncIterator[list[client.ApiClient]]:
    clients: list[client.ApiClient] = []
    yield clients
    for api in clients:
        await api.close()


async def _client(path: str, opened: list[client.ApiClient]) -> client.ApiClient:
    api = await cli.kube_client(path)
    opened.append(api)
    return api


async def test_the_session_does_not_read_the_environment_per_request(
    tmp_path: Path, no_proxy_env: pytest.MonkeyPatch, opened: list[client.ApiClient]
) -> None:
    api = await _client(_kubeconfig(tmp_path), opened)
    session = api.rest_client.pool_manager
    assert session.trust_env is False
    assert not session.closed
    assert session.connector is not None  # kubernetes_asyncio's, kept
    assert session.connector.limit == api.configuration.connection_pool_maxsize
    assert api.configuration.proxy is None


async def test_the_environments_proxy_is_read_once_for_the_api_server(
    tmp_path: Path, no_proxy_env: pytest.MonkeyPatch, opened: list[client.ApiClient]
) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    api = await _client(_kubeconfig(tmp_path), opened)
    assert api.configuration.proxy == "http://proxy.example:3128"
    assert api.rest_client.proxy == "http://proxy.example:3128"  # sent with every request

    no_proxy_env.setenv("NO_PROXY", "10.1.2.3")
    api = await _client(_kubeconfig(tmp_path), opened)
    assert api.configuration.proxy is None


async def test_a_kubeconfigs_own_proxy_is_kept(
    tmp_path: Path, no_proxy_env: pytest.MonkeyPatch, opened: list[client.ApiClient]
) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    path = _kubeconfig(tmp_path, **{"proxy-url": "http://own.example:8080"})
    api = await _client(path, opened)
    assert api.configuration.proxy == "http://own.example:8080"

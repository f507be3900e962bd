"""with_request_timeout: every request without its own timeout is bounded, and runs out
as KubeRequestTimeout. Against a tiny HTTP server on 127.0.0.1 (a free port) that
answers some paths and never answers others."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client import rest

from eni_controller.kube.timeouts import KubeRequestTimeout, with_request_timeout

WAIT = 10.0  # generous bound: a failure never hangs the suite
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def api() -> AsyncIterator[client.ApiClient]:
    """An ApiClient for a server where GET /api/v1/nodes answers and anything under
    /api/v1/namespaces/ never does."""
    stop = asyncio.Event()

    async def nodes(_: web.Request) -> web.Response:
        return web.json_response({"kind": "NodeList", "apiVersion": "v1", "items": []})

    async def silent(_: web.Request) -> web.Response:
        await stop.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/api/v1/nodes", nodes)
    app.router.add_route("*", "/api/v1/namespaces/{tail:.*}", silent)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    api = client.ApiClient(client.Configuration(host=f"http://{host}:{port}"))
    try:
        yield api
    finally:
        stop.set()
        await api.close()
        await runner.cleanup()


async def test_a_request_without_an_answer_times_out(api: client.ApiClient) -> None:
    core = client.CoreV1Api(with_request_timeout(api, seconds=0.2))
    with pytest.raises(KubeRequestTimeout) as caught:
        async with asyncio.timeout(WAIT):
            await core.read_namespace("anything")
    assert re.fullmatch(
        r"GET \S+/api/v1/namespaces/anything got no answer within 0.2s", str(caught.value)
    )
    assert isinstance(caught.value, TimeoutError)


def _write(core: client.CoreV1Api, method: str) -> Awaitable[object]:
    if method == "POST":
        return core.create_namespaced_event("default", cast(Any, {"metadata": {"name": "e"}}))
    if method == "PATCH":
        return core.patch_namespaced_event(
            "e",
            "default",
            cast(Any, {"count": 2}),
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]
        )
    return core.delete_namespaced_event("e", "default")


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_writes_are_bounded_too(api: client.ApiClient, method: str) -> None:
    core = client.CoreV1Api(with_request_timeout(api, seconds=0.2))
    with pytest.raises(KubeRequestTimeout) as caught:
        await asyncio.wait_for(_write(core, method), WAIT)
    assert str(caught.value).startswith(f"{method} ")


async def test_answered_requests_pass_through(api: client.ApiClient) -> None:
    nodes = await client.CoreV1Api(with_request_timeout(api, seconds=5)).list_node()
    assert nodes.items == []


async def test_an_explicit_timeout_is_kept(api: client.ApiClient) -> None:
    core = client.CoreV1Api(with_request_timeout(api, seconds=3600))
    with pytest.raises(KubeRequestTimeout) as caught:
        async with asyncio.timeout(WAIT):
            await core.read_namespace("anything", _request_timeout=(5, 0.2))
    assert str(caught.value).endswith("got no answer")  # the caller's limit, not the default


async def test_the_original_client_is_left_alone(api: client.ApiClient) -> None:
    before = api.rest_client
    bounded = with_request_timeout(api, seconds=1)
    assert api.rest_client is before
    assert type(api.rest_client) is rest.RESTClientObject
    assert bounded.configuration is api.configuration


async def test_wrapping_again_replaces_the_limit(api: client.ApiClient) -> None:
    twice = with_request_timeout(with_request_timeout(api, seconds=3600), seconds=0.2)
    with pytest.raises(KubeRequestTimeout) as caught:
        async with asyncio.timeout(WAIT):
            await client.CoreV1Api(twice).read_namespace("anything")
    assert str(caught.value).endswith("got no answer within 0.2s")


async def test_an_enclosing_deadline_is_not_a_request_timeout(api: client.ApiClient) -> None:
    core = client.CoreV1Api(with_request_timeout(api, seconds=3600))
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.2):
            await core.read_namespace("anything")
    assert not isinstance(caught.value, KubeRequestTimeout)


async def test_the_limit_must_be_positive(api: client.ApiClient) -> None:
    with pytest.raises(ValueError, match="positive"):
        with_request_timeout(api, seconds=0)

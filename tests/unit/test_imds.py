"""The region from the instance metadata service (aws/imds.py), against a local
aiohttp server standing in for IMDS on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from eni_controller import cli
from eni_controller.aws import imds
from eni_controller.config import Config
from eni_controller.envvars import ConfigError
from tests.harness.procs import free_port

TOKEN = "token-123"


class FakeIMDS:
    """IMDSv2: a PUT with a TTL header gives a token; the region needs it."""

    def __init__(self, *, region: str = "eu-west-3", hang: bool = False) -> None:
        self.region = region
        self.hang = hang
        self.requests: list[str] = []
        self.release = asyncio.Event()  # a hanging handler returns once set

    async def token(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path}")
        if self.hang:
            await self.release.wait()
        if imds.TOKEN_TTL_HEADER not in request.headers:
            return web.Response(status=400)
        return web.Response(text=TOKEN)

    async def region_(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path}")
        if request.headers.get(imds.TOKEN_HEADER) != TOKEN:
            return web.Response(status=401)
        return web.Response(text=self.region)


async def _serve(fake: FakeIMDS) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_put(imds.TOKEN_PATH, fake.token)
    app.router.add_get(imds.REGION_PATH, fake.region_)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeIMDS, str]]:
    fake = FakeIMDS()
    runner, endpoint = await _serve(fake)
    try:
        yield fake, endpoint
    finally:
        await runner.cleanup()


async def test_region_comes_from_imdsv2(served: tuple[FakeIMDS, str]) -> None:
    fake, endpoint = served
    assert await imds.region(endpoint=endpoint) == "eu-west-3"
    assert fake.requests == [f"PUT {imds.TOKEN_PATH}", f"GET {imds.REGION_PATH}"]
    fake.region = "ap-south-1"  # nothing cached: asked again
    assert await imds.region(endpoint=endpoint) == "ap-south-1"


async def test_unset_region_is_discovered_and_a_set_one_wins(
    served: tuple[FakeIMDS, str],
) -> None:
    fake, endpoint = served
    env = {imds.ENDPOINT_VARIABLE: endpoint}
    assert (await cli.with_region(Config.from_env(env), env=env)).aws_region == "eu-west-3"
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        fake.requests.clear()
        set_env = {**env, variable: "us-west-2"}
        found = await cli.with_region(Config.from_env(set_env), env=set_env)
        assert found.aws_region == "us-west-2"
        assert fake.requests == []  # not asked at all


async def test_a_bad_answer_is_one_configuration_problem_naming_aws_region() -> None:
    fake = FakeIMDS(region="<html>")
    runner, endpoint = await _serve(fake)
    try:
        env = {imds.ENDPOINT_VARIABLE: endpoint}
        with pytest.raises(ConfigError) as caught:
            await cli.with_region(Config.from_env(env), env=env)
    finally:
        await runner.cleanup()
    (problem,) = caught.value.problems
    assert problem.startswith("AWS_REGION: unset")
    assert "not a region name" in problem


async def test_nothing_listening_fails_fast_with_the_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(imds.RegionUnavailable, match=r"127\.0\.0\.1"):
        await imds.region(endpoint=endpoint)


async def test_a_silent_service_times_out() -> None:
    fake = FakeIMDS(hang=True)
    runner, endpoint = await _serve(fake)
    try:
        with pytest.raises(imds.RegionUnavailable, match=r"no answer within 0\.2s"):
            await imds.region(endpoint=endpoint, timeout_seconds=0.2)
    finally:
        fake.release.set()
        await runner.cleanup()


async def test_disabled_imds_is_not_asked() -> None:
    env = {imds.DISABLED_VARIABLE: "true", imds.ENDPOINT_VARIABLE: "http://127.0.0.1:1"}
    assert imds.endpoint(env) is None
    with pytest.raises(ConfigError, match="AWS_EC2_METADATA_DISABLED=true"):
        await cli.with_region(Config.from_env(env), env=env)
    assert imds.endpoint({}) == imds.DEFAULT_ENDPOINT

"""Unit tests for the writer's own-write wait (kube/writes.NodeENIWriter): a
reconcile right after our write waits until the informer shows it, and never
longer than OWN_WRITE_WAIT_SECONDS."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from kubernetes_asyncio.client.rest import ApiException
from multidict import CIMultiDict, CIMultiDictProxy

from eni_controller.kube import writes
from eni_controller.kube.writes import NodeENIWriter, retry_after_seconds


class Custom:
    """CustomObjectsApi's patch calls: each answers the next resourceVersion."""

    def __init__(self) -> None:
        self.version = 10

    async def patch_cluster_custom_object(self, *args: Any, **_: Any) -> dict[str, Any]:
        name, body = args[3], args[4]
        if body.get("metadata", {}).get("finalizers") == ["same"]:
            return {"metadata": {"name": name, "resourceVersion": str(self.version)}}
        self.version += 1
        return {"metadata": {"name": name, "resourceVersion": str(self.version)}}

    patch_cluster_custom_object_status = patch_cluster_custom_object


def _writer() -> NodeENIWriter:
    return NodeENIWriter(cast(Any, Custom()))


def _obj(version: str) -> dict[str, Any]:
    return {"metadata": {"name": "a", "resourceVersion": version}}


async def test_nothing_written_nothing_to_wait_for() -> None:
    async with asyncio.timeout(0.1):
        await _writer().caught_up("a")


async def test_the_wait_ends_when_the_informer_stores_our_version() -> None:
    writer = _writer()
    await writer.set_finalizers("a", ["f"], resource_version="10")  # answers 11
    waiting = asyncio.create_task(writer.caught_up("a"))
    await asyncio.sleep(0.01)
    writer.seen(_obj("10"))  # an older version: still waiting
    await asyncio.sleep(0.01)
    assert not waiting.done()
    writer.seen(_obj("11"))
    async with asyncio.timeout(0.1):
        await waiting
    async with asyncio.timeout(0.1):
        await writer.caught_up("a")  # caught up: no wait any more


async def test_a_deletion_ends_the_wait() -> None:
    writer = _writer()
    await writer.annotate("a", "k", "v", resource_version="10")
    waiting = asyncio.create_task(writer.caught_up("a"))
    await asyncio.sleep(0.01)
    writer.seen(_obj("12"), gone=True)
    async with asyncio.timeout(0.1):
        await waiting


async def test_the_wait_is_bounded_and_then_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writes, "OWN_WRITE_WAIT_SECONDS", 0.05)
    writer = _writer()
    await writer.patch_status("a", {"status": {}}, resource_version="10")
    async with asyncio.timeout(1):
        await writer.caught_up("a")  # the informer never showed it (a relist skipped it)
    async with asyncio.timeout(0.01):
        await writer.caught_up("a")


@pytest.mark.parametrize("gone", [False, True])
async def test_a_version_the_informer_stored_before_the_answer_is_not_waited_for(
    gone: bool,
) -> None:
    """The watch event often beats the patch's own answer: it must not leave a
    wait for a version that has come and gone (each reconcile after a write
    stalled OWN_WRITE_WAIT_SECONDS that way)."""
    custom = Custom()
    writer = NodeENIWriter(cast(Any, custom))
    answer = custom.patch_cluster_custom_object

    async def event_first(*args: Any, **kwargs: Any) -> dict[str, Any]:
        writer.seen(_obj(str(custom.version + 1)), gone=gone)
        return await answer(*args, **kwargs)

    custom.patch_cluster_custom_object = event_first  # type: ignore[method-assign]
    await writer.set_finalizers("a", ["f"], resource_version="10")  # 11, seen first
    async with asyncio.timeout(0.1):
        await writer.caught_up("a")
    custom.patch_cluster_custom_object = answer  # type: ignore[method-assign]
    await writer.set_finalizers("a", ["g"], resource_version="11")  # 12, not seen yet
    waiting = asyncio.create_task(writer.caught_up("a"))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the collected versions went with their write
    writer.seen(_obj("12"))
    async with asyncio.timeout(0.1):
        await waiting


async def test_a_write_that_changed_nothing_is_not_waited_for() -> None:
    writer = _writer()
    await writer.set_finalizers("a", ["same"], resource_version="10")  # answers 10 again
    async with asyncio.timeout(0.01):
        await writer.caught_up("a")


@pytest.mark.parametrize(
    ("status", "headers", "seconds"),
    [
        (429, {"Retry-After": "2"}, 2.0),
        (503, {"Retry-After": "0.5"}, 0.5),
        (429, {}, 0.0),
        (429, {"Retry-After": "Fri, 04 Dec 2026 10:00:00 GMT"}, 0.0),  # the date form
        (429, {"Retry-After": "-3"}, 0.0),
        (500, {"Retry-After": "9"}, 0.0),  # only a server shedding load asks it
        (409, {"Retry-After": "9"}, 0.0),
    ],
)
def test_retry_after_is_read_from_a_429_or_503_answer(
    status: int, headers: dict[str, str], seconds: float
) -> None:
    err = ApiException(status=status, reason="test")
    err.headers = CIMultiDictProxy(CIMultiDict(headers))  # as aiohttp hands them
    assert retry_after_seconds(err) == seconds


def test_retry_after_of_anything_else_is_no_wait() -> None:
    assert retry_after_seconds(TimeoutError()) == 0.0

"""The controller's writes of NodeENIs: status, finalizers and annotations.

Every write is a merge patch (the client's default JSON patch is refused for
custom objects) carrying the resourceVersion the decision was made on, so a
write based on stale data gets 409 instead of clobbering what the node agent or
a user wrote. A write that timed out may have landed: the retry starts from a
fresh read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model

MERGE_PATCH: Final = "application/merge-patch+json"
OWN_WRITE_WAIT_SECONDS: Final = 2.0
_GONE: Final = "<deleted>"  # collected for a deletion: no resourceVersion looks like it


def retry_after_seconds(err: BaseException) -> float:
    """The seconds a 429 or 503 asked for in its Retry-After header (an HTTP-date,
    or anything unreadable, counts as no wait)."""
    if not isinstance(err, ApiException) or err.status not in (
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.SERVICE_UNAVAILABLE,
    ):
        return 0.0
    headers: Mapping[str, str] = err.headers or {}
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return 0.0


class Conflict(Exception):
    """The object changed since it was read (409) or is gone (404): re-read and retry."""


class NodeENIWriter:
    """Patches of NodeENIs, and the wait for the informer to show our own.

    Right after our write the informer's copy may be the one before it, and a write
    over it would get 409. So `caught_up` waits, at most OWN_WRITE_WAIT_SECONDS, until
    the informer reported (`seen`) the resourceVersion our write made; versions seen
    while the write is in flight count too (the watch often beats the answer).
    """

    def __init__(self, custom: client.CustomObjectsApi) -> None:
        self._custom = custom
        self._expected: dict[str, tuple[str, asyncio.Event]] = {}
        self._in_flight: dict[str, list[set[str]]] = {}  # by name: versions seen per write
        self.status_writes = 0  # read by tests and benchmarks

    def seen(self, obj: dict[str, Any], *, gone: bool = False) -> None:
        """The informer stored (or, `gone`, deleted) this version of a NodeENI."""
        metadata = obj["metadata"]
        for versions in self._in_flight.get(metadata["name"], ()):
            versions.add(_GONE if gone else metadata.get("resourceVersion", ""))
        expected = self._expected.get(metadata["name"])
        if expected is not None and (gone or metadata.get("resourceVersion") == expected[0]):
            del self._expected[metadata["name"]]
            expected[1].set()

    async def caught_up(self, name: str) -> None:
        """Return once the informer shows our last write to `name`, or after the wait."""
        expected = self._expected.get(name)
        if expected is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OWN_WRITE_WAIT_SECONDS):
                await expected[1].wait()
        if self._expected.get(name) is expected:
            del self._expected[name]  # a relist skipped it, or the watch is down

    async def patch_status(
        self, name: str, patch: dict[str, Any], *, resource_version: str
    ) -> None:
        body = {"metadata": {"resourceVersion": resource_version}, **patch}
        await self._patch(self._custom.patch_cluster_custom_object_status, name, body)
        self.status_writes += 1

    async def set_finalizers(
        self, name: str, finalizers: Sequence[str], *, resource_version: str
    ) -> dict[str, Any]:
        body = {"metadata": {"resourceVersion": resource_version, "finalizers": list(finalizers)}}
        return await self._patch(self._custom.patch_cluster_custom_object, name, body)

    async def annotate(
        self, name: str, key: str, value: str, *, resource_version: str
    ) -> dict[str, Any]:
        """Set one annotation; returns the object as written."""
        body = {"metadata": {"resourceVersion": resource_version, "annotations": {key: value}}}
        return await self._patch(self._custom.patch_cluster_custom_object, name, body)

    async def _patch(
        self, patch: Callable[..., Awaitable[Any]], name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        seen: set[str] = set()
        self._in_flight.setdefault(name, []).append(seen)
        try:
            result: dict[str, Any] = await patch(
                model.GROUP, model.VERSION, model.PLURAL, name, body, _content_type=MERGE_PATCH
            )
        except ApiException as err:
            if err.status in (HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT):
                raise Conflict(f"{name}: {err.status}") from err
            raise
        finally:
            if others := [w for w in self._in_flight.pop(name) if w is not seen]:
                self._in_flight[name] = others
        version = result["metadata"]["resourceVersion"]
        # nothing changed, or the informer stored it (or its deletion) already
        if version != body["metadata"]["resourceVersion"] and not seen & {version, _GONE}:
            self._expected[name] = (version, asyncio.Event())
        return result

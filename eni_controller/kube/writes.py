"""The controller's writes to the Kubernetes API: NodeENI status and finalizers,
and Events.

Every NodeENI write is a merge patch (a dict sent as the client's default JSON
patch is refused by the server for custom objects) carrying the
resourceVersion the decision was made on, so a write based on stale data gets
409 instead of clobbering what the node agent or a user wrote meanwhile. A
write that times out (``KubeRequestTimeout``) may still have landed; the
retry starts from a fresh read, and the resourceVersion makes a stale one 409.

Events are correlated like client-go's EventCorrelator: the same Event about
the same object (uid, type, reason, message) raised again is one Event whose
``count`` and ``lastTimestamp`` grow, not a new object per reconcile pass, so
a NodeENI failing every resync does not flood etcd. The correlation cache is
bounded (least recently used entries go first) and per process. Events are
best effort: a failure is logged and never raised to the reconcile.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import aiohttp
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model

log = structlog.get_logger(__name__)

MERGE_PATCH: Final = "application/merge-patch+json"
COMPONENT: Final = "nodeeni-controller"
# Events about cluster-scoped NodeENIs go where kubectl looks for them by default.
EVENTS_NAMESPACE: Final = "default"
HTTP_NOT_FOUND: Final = 404
HTTP_CONFLICT: Final = 409
OWN_WRITE_WAIT_SECONDS: Final = 2.0


class Conflict(Exception):
    """The object changed since it was read (409) or is gone (404): re-read and retry."""


class NodeENIWriter:
    """Patches of NodeENIs, and the wait for the informer to show our own.

    A reconcile reads the informer's copy. Right after one of our writes that
    copy may still be the one before it, and a write over it would get 409 for
    a change that was ours. So each write's resulting resourceVersion is
    expected from the informer (routing reports every version it stores, see
    `seen`), and `caught_up` waits, at most OWN_WRITE_WAIT_SECONDS, until it
    came; past that the reconcile goes on, and a 409 retries it.
    """

    def __init__(
        self, api: client.ApiClient, *, custom: client.CustomObjectsApi | None = None
    ) -> None:
        self._custom = custom or client.CustomObjectsApi(api)
        self._expected: dict[str, tuple[str, asyncio.Event]] = {}
        self.status_writes = 0  # read by tests and benchmarks

    def seen(self, obj: dict[str, Any], *, gone: bool = False) -> None:
        """The informer stored (or, `gone`, deleted) this version of a NodeENI."""
        metadata = obj["metadata"]
        expected = self._expected.get(metadata["name"])
        if expected is not None and (gone or metadata.get("resourceVersion") == expected[0]):
            del self._expected[metadata["name"]]
            expected[1].set()

    async def caught_up(self, name: str) -> None:
        """Return once the informer shows our last write to `name`, or after
        OWN_WRITE_WAIT_SECONDS."""
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
        await self._patch(name, body, status=True)
        self.status_writes += 1

    async def set_finalizers(
        self, name: str, finalizers: Sequence[str], *, resource_version: str
    ) -> dict[str, Any]:
        body = {"metadata": {"resourceVersion": resource_version, "finalizers": list(finalizers)}}
        return await self._patch(name, body, status=False)

    async def annotate(
        self, name: str, key: str, value: str, *, resource_version: str
    ) -> dict[str, Any]:
        """Set one annotation; returns the object as written."""
        body = {"metadata": {"resourceVersion": resource_version, "annotations": {key: value}}}
        return await self._patch(name, body, status=False)

    async def _patch(self, name: str, body: dict[str, Any], *, status: bool) -> dict[str, Any]:
        patch = (
            self._custom.patch_cluster_custom_object_status
            if status
            else self._custom.patch_cluster_custom_object
        )
        try:
            result: dict[str, Any] = await patch(
                model.GROUP,
                model.VERSION,
                model.PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # missing from the stubs
            )
        except ApiException as err:
            if err.status in (HTTP_NOT_FOUND, HTTP_CONFLICT):
                raise Conflict(f"{name}: {err.status}") from err
            raise
        version = result["metadata"]["resourceVersion"]
        if version != body["metadata"]["resourceVersion"]:  # else nothing changed
            self._expected[name] = (version, asyncio.Event())
        return result


EVENT_MESSAGE_LIMIT = 1024  # what an Event keeps of its message
EVENT_CACHE_SIZE: Final = 4096  # Events remembered for correlation (client-go keeps 4096)

_EventKey = tuple[str, str, str, str, str]  # involved uid, name, type, reason, message


def _event_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Correlated:
    """What was written for one Event key: the Event object, and the occurrences
    counted so far (also those whose write failed: the next write carries them)."""

    first_timestamp: str
    name: str | None = None  # the Event object, once created
    count: int = 0
    # one write per key at a time: two record() calls racing must not create two Events
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class EventRecorder:
    """Kubernetes Events about NodeENIs, correlated. Best effort: a failed event is
    logged, never raised.

    The first occurrence of (involved object uid, type, reason, message) creates
    an Event; each repeat merge-patches that Event's ``count`` (absolute, so a
    patch that timed out but landed is not counted twice) and ``lastTimestamp``.
    A patch answered 404 means the Event expired (the server's event TTL, one
    hour by default): a new Event carries the count on, as client-go does.
    """

    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str = EVENTS_NAMESPACE,
        cache_size: int = EVENT_CACHE_SIZE,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self._cache_size = cache_size
        self._seen: collections.OrderedDict[_EventKey, _Correlated] = collections.OrderedDict()

    async def record(
        self, nodeeni: model.NodeENI, *, type_: str, reason: str, message: str, count: int = 1
    ) -> None:
        """One occurrence, or `count` occurrences at once, of an Event about `nodeeni`."""
        text = message[:EVENT_MESSAGE_LIMIT]
        seen = self._remember((nodeeni.uid, nodeeni.name, type_, reason, text))
        async with seen.lock:
            seen.count += count
            now = _event_time()
            try:
                if seen.name is not None and await self._bump(seen, now=now):
                    return
                seen.name = await self._create(
                    nodeeni, type_=type_, reason=reason, message=text, seen=seen, now=now
                )
            except ApiException as err:
                log.warning(
                    "event not recorded", nodeeni=nodeeni.name, reason=reason, status=err.status
                )
            except (TimeoutError, aiohttp.ClientError) as err:  # timed out, connection lost
                log.warning(
                    "event not recorded",
                    nodeeni=nodeeni.name,
                    reason=reason,
                    error=type(err).__name__,
                )
            except Exception:  # a bug here must not fail the reconcile that reported
                log.exception("event not recorded", nodeeni=nodeeni.name, reason=reason)

    def _remember(self, key: _EventKey) -> _Correlated:
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            return seen
        seen = self._seen[key] = _Correlated(first_timestamp=_event_time())
        while len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)
        return seen

    async def _bump(self, seen: _Correlated, *, now: str) -> bool:
        """Patch the existing Event's count; False when it is gone (expired)."""
        assert seen.name is not None
        try:
            await self._core.patch_namespaced_event(
                seen.name,
                self._namespace,
                cast(Any, {"count": seen.count, "lastTimestamp": now}),
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # missing from the stubs
            )
        except ApiException as err:
            if err.status == HTTP_NOT_FOUND:
                log.debug("event expired, creating a new one", name=seen.name)
                seen.name = None
                return False
            raise
        return True

    async def _create(
        self,
        nodeeni: model.NodeENI,
        *,
        type_: str,
        reason: str,
        message: str,
        seen: _Correlated,
        now: str,
    ) -> str:
        body = {
            "metadata": {"generateName": f"{nodeeni.name}."},
            "involvedObject": {
                "apiVersion": f"{model.GROUP}/{model.VERSION}",
                "kind": model.KIND,
                "name": nodeeni.name,
                "uid": nodeeni.uid,
                "resourceVersion": nodeeni.resource_version,
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": seen.first_timestamp,
            "lastTimestamp": now,
            "count": seen.count,
        }
        created = await self._core.create_namespaced_event(self._namespace, cast(Any, body))
        return str(created.metadata.name)

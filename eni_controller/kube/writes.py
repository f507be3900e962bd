"""The controller's writes to the Kubernetes API: NodeENI status, finalizers and
annotations (Events: events.py).

Every NodeENI write is a merge patch (a dict sent as the client's default JSON
patch is refused by the server for custom objects) carrying the
resourceVersion the decision was made on, so a write based on stale data gets
409 instead of clobbering what the node agent or a user wrote meanwhile. A
write that times out (``KubeRequestTimeout``) may still have landed; the
retry starts from a fresh read, and the resourceVersion makes a stale one 409.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model

MERGE_PATCH: Final = "application/merge-patch+json"
HTTP_NOT_FOUND: Final = 404
HTTP_CONFLICT: Final = 409


class Conflict(Exception):
    """The object changed since it was read (409) or is gone (404): re-read and retry."""


class OwnWrites:
    """What the controller's own NodeENI writes returned, until the informer catches up.

    The informer delivers a write's result some milliseconds after the write. A
    reconcile starting in between would decide on the copy before it and write
    over that copy's resourceVersion: 409, an error and a retry with fresh
    describes, for a change that was our own (3-5 of the ~30 reconciles of a
    1,000-ENI create). Each write records the resourceVersion it was made over and
    the object it returned; `newest` follows that chain from the informer's
    copy. The chain ends where the informer has a copy we did not write over:
    caught up, or someone else wrote meanwhile, and then the 409 is right.

    A write's watch event can also arrive before its response: an event about a
    NodeENI with a write in flight is held until that write returns, and only
    then judged (`unless_own`); judged at once it looked foreign and queued a
    second reconcile of every NodeENI whose finalizer event won that race.
    """

    def __init__(self) -> None:
        # name -> {resourceVersion written over: the object that write returned}
        self._chains: dict[str, dict[str, dict[str, Any]]] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._held: dict[str, list[tuple[dict[str, Any], Callable[[], None]]]] = {}

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[None]:
        """Around one write of `name` (its `wrote` inside): events held meanwhile are
        judged when the last write in flight returns, or fails."""
        self._in_flight[name] += 1
        try:
            yield
        finally:
            self._in_flight[name] -= 1
            if not self._in_flight[name]:
                del self._in_flight[name]
                for obj, then in self._held.pop(name, ()):
                    if not self.is_own(obj):
                        then()

    def unless_own(self, obj: dict[str, Any], *, then: Callable[[], None]) -> None:
        """Call `then` unless `obj` is what one of our writes returned; while a write
        of it is in flight, decide once that write has returned."""
        name = obj["metadata"]["name"]
        if name in self._in_flight:
            self._held.setdefault(name, []).append((obj, then))
        elif not self.is_own(obj):
            then()

    def wrote(self, name: str, *, over: str, result: dict[str, Any]) -> None:
        if result["metadata"]["resourceVersion"] == over:
            return  # the server found nothing to change: no new version, no link
        self._chains.setdefault(name, {})[over] = result

    def newest(self, obj: dict[str, Any]) -> dict[str, Any]:
        """`obj` (the informer's copy), or what our writes over it returned."""
        name = obj["metadata"]["name"]
        chain = self._chains.get(name)
        if chain is None:
            return obj
        newest = obj
        for _ in range(len(chain)):  # each link once: a chain never loops back
            after = chain.get(newest["metadata"]["resourceVersion"])
            if after is None:
                break
            newest = after
        if newest is obj:
            del self._chains[name]
        return newest

    def is_own(self, obj: dict[str, Any]) -> bool:
        """True when `obj` is exactly what one of our writes returned."""
        chain = self._chains.get(obj["metadata"]["name"], {})
        version = obj["metadata"].get("resourceVersion")
        return any(o["metadata"]["resourceVersion"] == version for o in chain.values())

    def forget(self, name: str) -> None:
        self._chains.pop(name, None)


class NodeENIWriter:
    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.own = OwnWrites()
        self.status_writes = 0  # read by tests and benchmarks

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
        with self.own.writing(name):
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
            self.own.wrote(name, over=body["metadata"]["resourceVersion"], result=result)
        return result

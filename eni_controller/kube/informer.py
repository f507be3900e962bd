"""A list/watch cache of one resource type, with client-go's informer contract.

* every (re)list replaces the store and delivers the difference, so an object
  deleted while the watch was down still arrives as a deletion, last state seen;
* a watch the server ends normally resumes from the last resourceVersion seen;
* an expired resourceVersion (HTTP 410, or an ``ERROR`` event with code 410)
  relists, at once the first time; other failures back off, jittered, capped;
* handlers are synchronous and only enqueue keys; one that raises is logged;
* ``transform`` (client-go's TransformFunc) cuts every object down to what the
  controller reads before anything sees it (a real Node is 10-20 KB);
* with ``complete``, the watch asks for metadata only and each event is
  completed from the stored object, or one GET when the store cannot tell.

The update rule (which replacement is a change for the handlers) is in store.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Final, Protocol

import structlog
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.kube.resources import ResourceAPI
from eni_controller.kube.store import Indexer, Obj, Store, object_name, resource_version

log = structlog.get_logger(__name__)

# A new dict (the argument is not changed) keeping metadata.name and resourceVersion.
Transform = Callable[[Obj], Obj]
# complete(source, partial): `partial` (transformed metadata) with what it lacks from
# `source` (stored, or fetched and transformed); None when `source` lacks it too.
Completion = Callable[[Obj, Obj], Obj | None]

LABELS_INDEX: Final = "labels"
ATTACHED_NODES_INDEX: Final = "attachedNodes"

# A watch closed sooner than this without an event is a failure (backoff), so a proxy
# that drops idle streams at once cannot make the informer a hot loop.
_MIN_HEALTHY_WATCH_SECONDS: Final = 1.0
_MAX_BACKOFF_EXPONENT: Final = 32


class EventHandler(Protocol):
    """What an informer calls on changes. Must be quick and must not block:
    the controller's handlers only put keys on the work queue."""

    def on_add(self, obj: Obj) -> None: ...
    def on_update(self, old: Obj, new: Obj) -> None: ...
    def on_delete(self, obj: Obj) -> None: ...


def node_labels_index(node: Obj) -> list[str]:
    """``key=value`` for each label of a Node: finds the Nodes a nodeSelector term matches."""
    metadata = node.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if not isinstance(labels, dict):
        return []
    return [f"{key}={value}" for key, value in labels.items() if isinstance(value, str)]


def nodeeni_attached_nodes_index(nodeeni: Obj) -> list[str]:
    """The nodes in ``status.attachments[].nodeID``: the NodeENIs holding an ENI on a node."""
    status = nodeeni.get("status")
    attachments = status.get("attachments") if isinstance(status, dict) else None
    if not isinstance(attachments, list):
        return []
    nodes = (a.get("nodeID") for a in attachments if isinstance(a, dict))
    return list(dict.fromkeys(n for n in nodes if isinstance(n, str) and n))


# What the controller reads of a Node (reconcile/nodes.py, routing.py, sweep.py, NodeView):
# a reader of anything else must add it here (tests/unit/test_informer_transform.py).
NODE_METADATA_KEPT: Final = ("name", "uid", "resourceVersion", "labels", "deletionTimestamp")
NODE_SPEC_KEPT: Final = ("providerID",)


def _picked(source: object, keys: Iterable[str]) -> dict[str, Any]:
    return {key: source[key] for key in keys if key in source} if isinstance(source, dict) else {}


def node_transform(node: Obj) -> Obj:
    """A Node cut down to NODE_METADATA_KEPT and NODE_SPEC_KEPT: status is dropped."""
    kept: Obj = {
        "apiVersion": node.get("apiVersion"),
        "kind": node.get("kind"),
        "metadata": _picked(node.get("metadata"), NODE_METADATA_KEPT),
    }
    if spec := _picked(node.get("spec"), NODE_SPEC_KEPT):
        kept["spec"] = spec
    return kept


def complete_node(source: Obj, partial: Obj) -> Obj | None:
    """`partial` with `source`'s providerID, which never changes once set; None without."""
    spec = source.get("spec")
    provider_id = spec.get("providerID") if isinstance(spec, dict) else None
    if not provider_id:
        return None
    return {**partial, "spec": {"providerID": provider_id}}


def without_managed_fields(obj: Obj) -> Obj:
    """`obj` without ``metadata.managedFields``, most of a small object's bytes."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    kept = {key: value for key, value in metadata.items() if key != "managedFields"}
    return {**obj, "metadata": kept}


class Informer(Store):
    """A Store kept current by list and watch, calling ``handler`` on changes. ``run()``
    runs until cancelled; reads are complete once ``has_synced``."""

    def __init__(
        self,
        *,
        name: str,
        api: ResourceAPI,
        handler: EventHandler,
        indexers: Mapping[str, Indexer] | None = None,
        transform: Transform | None = None,
        complete: Completion | None = None,
        watch_timeout_seconds: int = 300,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(indexers)
        self.name = name
        self._api = api
        self._handler = handler
        self._transform = transform
        self._complete = complete
        self.fetches = 0  # GETs made to complete metadata-only events
        self._watch_timeout_seconds = watch_timeout_seconds
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._synced = asyncio.Event()
        self.resource_version: str | None = None  # where the next watch starts; None: relist
        self._failures = 0
        self._expiries = 0  # 410s in a row, with no event delivered in between
        self._log = log.bind(informer=name)
        self._object_key = api.kind.lower()  # "node", "nodeeni": the log field naming one

    @property
    def has_synced(self) -> bool:
        """True once the first list has been stored and its events delivered."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def run(self) -> None:
        while True:
            try:
                rv = self.resource_version
                if rv is None:
                    rv = await self._relist()
                await self._watch(rv)
            except ApiException as err:
                if err.status == HTTPStatus.GONE and self.resource_version is not None:
                    await self._expired()
                else:
                    self._failures += 1
                    await self._backoff("list/watch failed", status=err.status, reason=err.reason)
            except Exception as err:
                self._failures += 1
                await self._backoff("list/watch failed", error=repr(err))

    async def _relist(self) -> str:
        items, rv = await self._api.list(transform=self._transformed)
        diff = self.replace(items)
        for obj in diff.deleted:
            self._notify("on_delete", obj)
        for obj in diff.added:
            self._notify("on_add", obj)
        for old, new in diff.updated:
            self._notify("on_update", old, new)
        self.resource_version = rv
        self._log.info(
            "listed",
            count=len(self),
            added=len(diff.added),
            updated=len(diff.updated),
            deleted=len(diff.deleted),
            resource_version=rv,
        )
        self._synced.set()
        return rv

    async def _watch(self, rv: str) -> None:
        started = time.monotonic()
        events = 0
        stream = self._api.watch(
            resource_version=rv,
            timeout_seconds=self._watch_timeout_seconds,
            metadata_only=self._complete is not None,
        )
        async with contextlib.aclosing(stream):
            async for event in stream:
                await self._apply(event)
                events += 1
                self._failures = self._expiries = 0
        healthy = min(_MIN_HEALTHY_WATCH_SECONDS, self._watch_timeout_seconds / 2)
        if events == 0 and time.monotonic() - started < healthy:
            raise ConnectionError("watch closed at once without an event")
        self._failures = self._expiries = 0

    async def _apply(self, event: Obj) -> None:
        """One watch event: ADDED, MODIFIED, DELETED, BOOKMARK, or ERROR with a Status."""
        kind, obj = event["type"], event["object"]
        if kind == "ERROR":  # the server's Status, as an HTTP error would have carried it
            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
        rv = resource_version(obj)
        if kind != "BOOKMARK":
            if self._complete is not None:  # a PartialObjectMetadata: the type is ours
                obj = {**obj, "kind": self._api.kind, "apiVersion": self._api.api_version}
            kept = self._transformed(obj)
            name = object_name(kept)
            if kind == "DELETED":
                gone = self._from_store(name, kept) or kept
                self.delete(name)  # the store first, as after a relist
                self._notify("on_delete", gone)
            else:
                if self._complete is not None:
                    kept = await self._completed(name, kept)
                old, changed = self.put(kept)
                if old is None:
                    self._notify("on_add", kept)
                elif changed:
                    self._notify("on_update", old, kept)
        if rv is not None:
            self.resource_version = rv

    def _from_store(self, name: str, partial: Obj) -> Obj | None:
        """`partial` completed from the stored object; None when that cannot tell."""
        stored = self.get(name)
        return None if self._complete is None or stored is None else self._complete(stored, partial)

    async def _completed(self, name: str, partial: Obj) -> Obj:
        """A metadata-only object made whole: from the store, else from one GET.
        A failed GET ends the watch: stored partial, the relist bringing it whole
        would be no change by the update rule, so no handler would see it whole."""
        assert self._complete is not None
        if (whole := self._from_store(name, partial)) is not None:
            return whole
        self.fetches += 1
        try:
            fetched = await self._api.get(name)
        except Exception as err:
            self._log.warning("get failed", **{self._object_key: name}, error=repr(err))
            raise
        if fetched is None:  # deleted since: its DELETED event follows
            return partial
        return self._complete(self._transformed(fetched), partial) or partial

    def _transformed(self, obj: Obj) -> Obj:
        if self._transform is None:
            return obj
        try:
            return self._transform(obj)
        except Exception:
            # one odd object must not wedge the informer: keep it whole
            self._log.warning("transform failed, object kept whole", exc_info=True)
            return obj

    def _notify(self, method: str, *objs: Obj) -> None:
        try:
            getattr(self._handler, method)(*objs)
        except Exception:
            name = objs[-1].get("metadata", {}).get("name")
            self._log.exception("event handler failed", handler=method, **{self._object_key: name})

    async def _expired(self) -> None:
        self._log.info("watch expired, relisting", resource_version=self.resource_version)
        self.resource_version = None
        self._expiries += 1
        # A 410 is the server answering: earlier failures to reach it are over, and
        # the first expiry relists at once; more in a row back off more each time.
        self._failures = self._expiries - 1
        if self._failures:
            await self._backoff("watch expired again")

    async def _backoff(self, why: str, **fields: Any) -> None:
        exponent = min(self._failures - 1, _MAX_BACKOFF_EXPONENT)
        ceiling = min(self._backoff_max, self._backoff_base * 2**exponent)
        delay = random.uniform(ceiling / 2, ceiling)
        self._log.warning(why, backoff=round(delay, 3), failures=self._failures, **fields)
        await asyncio.sleep(delay)

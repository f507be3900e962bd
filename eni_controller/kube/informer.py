"""A list/watch cache of one resource type, with secondary indexes.

One list and then a watch stream answer every read the controller makes from
memory, and bring every change to it within milliseconds. Hand-rolled, not
kopf or the client's ``Watch``, to keep exactly client-go's contract:

* the store is replaced after every (re)list and the difference delivered as
  add/update/delete, so an object deleted while the watch was down still
  arrives as a deletion, with the last state seen;
* a watch the server ends normally resumes from the last resourceVersion seen
  (events or bookmarks), without a relist;
* an expired resourceVersion (HTTP 410, or the ``ERROR`` event with code 410
  the server actually sends) relists: at once the first time, even after
  failures to connect, with backoff only for expiries in a row; any other
  failure backs off, capped, jittered and exponential;
* handlers are synchronous and only enqueue keys: one that raises is logged and
  never stops the informer;
* ``transform`` (client-go's TransformFunc) cuts every object down to what the
  controller reads before anything sees it: a real Node is 10-20 KB, mostly a
  status that kubelet heartbeats rewrite and the controller never reads;
* with ``complete``, the watch asks for metadata only and each event is
  completed from the stored object, or one GET when the store cannot tell (a
  Node's providerID never changes once set). Lists stay whole.

The store, its indexes and the update rule (which replacement is a change for
the handlers) are in store.py.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Final, Protocol

import structlog
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.kube.resources import ResourceAPI
from eni_controller.kube.store import (
    NO_INDEXERS,
    Indexer,
    Obj,
    Store,
    object_name,
    resource_version,
)

log = structlog.get_logger(__name__)

Transform = Callable[[Obj], Obj]
"""Returns what to keep of an object: a new dict (it must not change its argument),
with ``metadata.name`` and ``metadata.resourceVersion`` always among what it keeps."""
Completion = Callable[[Obj, Obj], Obj | None]
"""``complete(source, partial)``: `partial` (a transformed metadata-only object)
with what it lacks taken from `source` (the stored object, or a fresh GET,
transformed); None when `source` lacks it too. Must not change its arguments."""

LABELS_INDEX: Final = "labels"
ATTACHED_NODES_INDEX: Final = "attachedNodes"

# A watch the server closes sooner than this, having sent nothing, is treated as
# a failure (backoff) rather than a normal timeout, so a proxy that drops idle
# streams at once cannot turn the informer into a hot loop against the server.
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
    """The nodes named in ``status.attachments[].nodeID``: finds the NodeENIs that
    hold an ENI on a node (when the node goes away or stops matching)."""
    status = nodeeni.get("status")
    attachments = status.get("attachments") if isinstance(status, dict) else None
    if not isinstance(attachments, list):
        return []
    nodes: dict[str, None] = {}
    for attachment in attachments:
        node = attachment.get("nodeID") if isinstance(attachment, dict) else None
        if isinstance(node, str) and node:
            nodes[node] = None
    return list(nodes)


# What the controller reads of a Node (reconcile/nodes.py, reconcile/routing.py,
# reconcile/sweep.py, the reconciler through NodeView): its name and labels, the
# providerID naming its EC2 instance; uid (owner references name it),
# resourceVersion and deletionTimestamp for the informer and its handlers.
# A reader of anything else must add it here (tests/unit/test_informer_transform.py).
NODE_METADATA_KEPT: Final = ("name", "uid", "resourceVersion", "labels", "deletionTimestamp")
NODE_SPEC_KEPT: Final = ("providerID",)
# Never read, and on every object the server returns: who wrote which field.
_SERVER_BOOKKEEPING: Final = "managedFields"


def _picked(source: object, keys: Iterable[str]) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    return {key: source[key] for key in keys if key in source}


def node_transform(node: Obj) -> Obj:
    """A Node cut down to what the controller reads: name, uid, labels,
    resourceVersion, deletionTimestamp and spec.providerID. Status (conditions,
    images, addresses, heartbeats), annotations and managedFields are dropped."""
    kept: Obj = {
        "apiVersion": node.get("apiVersion"),
        "kind": node.get("kind"),
        "metadata": _picked(node.get("metadata"), NODE_METADATA_KEPT),
    }
    spec = _picked(node.get("spec"), NODE_SPEC_KEPT)
    if spec:
        kept["spec"] = spec
    return kept


def complete_node(source: Obj, partial: Obj) -> Obj | None:
    """A Node's metadata (`partial`, transformed) with `source`'s providerID: set
    once by the kubelet or the cloud controller and never changed after, so the
    stored Node's serves every later event. None when `source` has none."""
    spec = source.get("spec")
    provider_id = spec.get("providerID") if isinstance(spec, dict) else None
    if not provider_id:
        return None
    return {**partial, "spec": {"providerID": provider_id}}


def without_managed_fields(obj: Obj) -> Obj:
    """A NodeENI or an ENINode without ``metadata.managedFields``: everything else
    (spec, status, labels, annotations, finalizers, generation...) is read by the
    models, and managedFields is most of a small object's bytes."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or _SERVER_BOOKKEEPING not in metadata:
        return obj
    kept = {key: value for key, value in metadata.items() if key != _SERVER_BOOKKEEPING}
    return {**obj, "metadata": kept}


class WatchExpired(Exception):
    """The resourceVersion the watch asked for is gone from the server: relist."""


class WatchError(Exception):
    """The server ended a watch with an ERROR event other than 410."""


class Informer:
    """Lists and watches one resource type into a ``Store`` and calls ``handler``.

    ``run()`` runs until cancelled; reads are complete once ``has_synced``.
    Listed objects are transformed page by page, so a relist never holds every
    whole object at once; an object ``transform`` fails on is kept whole.
    """

    def __init__(
        self,
        *,
        name: str,
        api: ResourceAPI,
        handler: EventHandler,
        indexers: Mapping[str, Indexer] = NO_INDEXERS,
        transform: Transform | None = None,
        complete: Completion | None = None,
        watch_timeout_seconds: int = 300,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = name
        self.store = Store(indexers)
        self._api = api
        self._handler = handler
        self._transform = transform
        self._complete = complete
        self.fetches = 0  # GETs made to complete metadata-only events
        self._watch_timeout_seconds = watch_timeout_seconds
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._synced = asyncio.Event()
        self._resource_version: str | None = None
        self._failures = 0
        self._expiries = 0  # 410s in a row, with no event delivered in between
        self._running = False
        self._log = log.bind(informer=name)
        self._object_key = api.kind.lower()  # "node", "nodeeni": the log field naming one

    # -- reads ---------------------------------------------------------------

    def get(self, name: str) -> Obj | None:
        return self.store.get(name)

    def list(self) -> list[Obj]:
        return self.store.list()

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        return self.store.by_index(index_name, value)

    def index_values(self, index_name: str) -> builtins.list[str]:
        return self.store.index_values(index_name)

    @property
    def has_synced(self) -> bool:
        """True once the first list has been stored and its events delivered."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    @property
    def resource_version(self) -> str | None:
        """Where the next watch starts; None when the next step is a relist."""
        return self._resource_version

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        if self._running:
            raise RuntimeError(f"informer {self.name} is already running")
        self._running = True
        try:
            while True:
                try:
                    rv = self._resource_version
                    if rv is None:
                        rv = await self._relist()
                    await self._watch(rv)
                except WatchExpired:
                    await self._expired("ERROR event 410")
                except ApiException as err:
                    if err.status == HTTPStatus.GONE and self._resource_version is not None:
                        await self._expired("HTTP 410")
                    else:
                        self._failures += 1
                        self._log.warning("list/watch failed", status=err.status, reason=err.reason)
                        await self._backoff()
                except Exception as err:
                    self._failures += 1
                    self._log.warning("list/watch failed", error=repr(err))
                    await self._backoff()
        finally:
            self._running = False

    async def _relist(self) -> str:
        items, rv = await self._api.list(transform=self._transformed)
        diff = self.store.replace(items)
        for obj in diff.deleted:
            self._notify("on_delete", obj)
        for obj in diff.added:
            self._notify("on_add", obj)
        for old, new in diff.updated:
            self._notify("on_update", old, new)
        self._resource_version = rv
        self._log.info(
            "listed",
            count=len(self.store),
            added=len(diff.added),
            updated=len(diff.updated),
            deleted=len(diff.deleted),
            resource_version=rv,
        )
        if not self._synced.is_set():
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
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            self._log.warning("watch event without an object", type=kind)
            return
        if kind == "ERROR":
            if obj.get("code") == HTTPStatus.GONE:
                raise WatchExpired(obj.get("message"))
            raise WatchError(
                f"watch error {obj.get('code')} {obj.get('reason')}: {obj.get('message')}"
            )
        rv = resource_version(obj)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            if self._complete is not None:  # a PartialObjectMetadata: the type is ours
                obj = {**obj, "kind": self._api.kind, "apiVersion": self._api.api_version}
            kept = self._transformed(obj)
            try:
                name = object_name(kept)
            except ValueError:
                self._log.warning("watch event for an object without a name", type=kind)
                return
            if kind == "DELETED":
                gone = self._from_store(name, kept) or kept
                self.store.delete(name)  # the store first, as after a relist
                self._notify("on_delete", gone)
            else:
                if self._complete is not None:
                    kept = await self._completed(name, kept)
                old, changed = self.store.put(kept)
                if old is None:
                    self._notify("on_add", kept)
                elif changed:
                    self._notify("on_update", old, kept)
        elif kind != "BOOKMARK":
            self._log.warning("unknown watch event type", type=kind)
        if rv is not None:
            self._resource_version = rv

    def _from_store(self, name: str, partial: Obj) -> Obj | None:
        """`partial` completed from the stored object; None when that cannot tell."""
        stored = self.store.get(name)
        return None if self._complete is None or stored is None else self._complete(stored, partial)

    async def _completed(self, name: str, partial: Obj) -> Obj:
        """A metadata-only object made whole: from the store, else from one GET.
        A failed GET ends the watch: stored partial, the object would keep its
        resourceVersion, and the relist bringing it whole would be no change by
        the update rule, so no handler would ever see it whole. Unstored, the
        relist that follows adds it whole."""
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

    async def _expired(self, how: str) -> None:
        self._log.info("watch expired, relisting", how=how, resource_version=self._resource_version)
        self._resource_version = None
        self._expiries += 1
        # A 410 is the server answering: failures to reach it before (say, while
        # it restarted) are over, and the first expiry relists at once. A fresh
        # list's version expiring again means something is off: slow down, more
        # with each expiry in a row.
        self._failures = self._expiries - 1
        if self._failures:
            await self._backoff()

    async def _backoff(self) -> None:
        exponent = min(self._failures - 1, _MAX_BACKOFF_EXPONENT)
        ceiling = min(self._backoff_max, self._backoff_base * 2**exponent)
        delay = random.uniform(ceiling / 2, ceiling)
        self._log.info("backing off", seconds=round(delay, 3), failures=self._failures)
        await asyncio.sleep(delay)

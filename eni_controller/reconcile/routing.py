"""Which NodeENIs an informer event concerns: the keys it puts on the work queue.

Invariants:

* A NodeENI is enqueued when it is added or deleted, and on an update only
  for what a reconcile acts on: a new generation (spec edited), a deletion
  timestamp set, or our finalizer removed by someone else. Our own writes
  (status, adding the finalizer, the cleanup-start annotation) change none of
  these, so they enqueue nothing: no loop, and nothing to tell apart.
* A Node event enqueues every NodeENI that matches the node's old labels or
  its new ones, or that holds an attachment on it, so a removed label starts
  cleanup at once. kubelet heartbeats (status-only updates) enqueue nothing.
* Whatever an event enqueues is marked changed in the EC2 view first, so the
  reconcile it starts describes EC2 afresh (ec2view.py). A Node that goes
  takes its instance's kept facts with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from eni_controller.kube.informer import ATTACHED_NODES_INDEX
from eni_controller.model import FINALIZER
from eni_controller.reconcile.nodes import NodeView

Obj = dict[str, Any]


class Queue(Protocol):
    def add(self, key: str) -> None: ...


class View(Protocol):
    def changed(self, *, uid: str | None = None, instance: str | None = None) -> None: ...
    def forget(self, *, uid: str | None = None, instance: str | None = None) -> None: ...


class Index(Protocol):
    def by_index(self, index_name: str, value: str) -> list[Obj]: ...
    def list(self) -> list[Obj]: ...


class Seen(Protocol):
    def seen(self, obj: Obj, *, gone: bool = False) -> None: ...


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = _meta(obj).get("labels") or {}
    return labels


def _provider_id(node: Mapping[str, Any]) -> str:
    return str((node.get("spec") or {}).get("providerID") or "")


class NodeENIEvents:
    """NodeENI events → that NodeENI, for the changes a reconcile acts on."""

    def __init__(self, queue: Queue, *, view: View, writes: Seen) -> None:
        self._queue = queue
        self._view = view
        self._writes = writes  # told every version the informer stores (own-write waits)

    def on_add(self, obj: Obj) -> None:
        self._writes.seen(obj)
        self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._writes.seen(new)
        before, after = _meta(old), _meta(new)
        finalizer_removed = FINALIZER in (before.get("finalizers") or ()) and FINALIZER not in (
            after.get("finalizers") or ()
        )
        if (
            before.get("generation") != after.get("generation")
            or before.get("deletionTimestamp") != after.get("deletionTimestamp")
            or finalizer_removed
        ):
            self._enqueue(new)

    def on_delete(self, obj: Obj) -> None:
        self._writes.seen(obj, gone=True)
        self._queue.add(_meta(obj)["name"])  # the reconcile finds it gone and forgets it

    def _enqueue(self, obj: Obj) -> None:
        self._view.changed(uid=_meta(obj).get("uid"))
        self._queue.add(_meta(obj)["name"])


class NodeEvents:
    """Node events → the NodeENIs the node concerns, before and after."""

    def __init__(self, queue: Queue, nodeenis: Index, *, view: View) -> None:
        self._queue = queue
        self._nodeenis = nodeenis
        self._view = view

    def on_add(self, obj: Obj) -> None:
        self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if _provider_id(old) != _provider_id(new):
            self._view.forget(instance=NodeView.from_api(old).instance_id)
            self._enqueue(old, new)
        elif _labels(old) != _labels(new):
            self._enqueue(old, new)

    def on_delete(self, obj: Obj) -> None:
        self._view.forget(instance=NodeView.from_api(obj).instance_id)
        self._enqueue(obj)

    def _enqueue(self, *versions: Obj) -> None:
        name = _meta(versions[-1])["name"]
        wanted = {_meta(n)["name"]: n for n in self._nodeenis.by_index(ATTACHED_NODES_INDEX, name)}
        for raw in self._nodeenis.list():
            selector = (raw.get("spec") or {}).get("nodeSelector")
            if isinstance(selector, Mapping) and any(
                _selects(selector, _labels(v)) for v in versions
            ):
                wanted[_meta(raw)["name"]] = raw
        for nodeeni in sorted(wanted):
            self._view.changed(uid=_meta(wanted[nodeeni]).get("uid"))
            self._queue.add(nodeeni)


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())

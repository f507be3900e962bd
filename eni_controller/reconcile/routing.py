"""Which NodeENIs an informer event concerns (work queue keys), and which nodes'
ENINode specs it concerns (ENINode queue keys).

* A NodeENI is enqueued on add, delete, a new generation, a deletion timestamp,
  or our finalizer removed by someone else: never by our own writes (no loop).
* A Node event enqueues every NodeENI matching its old or new labels or holding
  an attachment on it; status-only updates (heartbeats) enqueue nothing.
* What an event enqueues is first marked changed in the EC2 view, so its
  reconcile describes afresh; a Node that goes takes its instance's facts along.
  A deletion is not: asking for one changes nothing in EC2, so its cleanup
  starts at once from what the view keeps (the reconciler concludes absence
  only from a describe made after the deletion).
* An ENINode whose status (its agent's report) changed enqueues the NodeENIs
  its spec names, marking nothing changed in EC2; a deleted one has its node's
  spec synced.
* A NodeENI event syncs the ENINode specs of the nodes whose share of its
  attachments changed (all of them on an edit, add or delete),
  ENINODE_SYNC_DELAY_SECONDS later: a rollout costs each node one write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

from eni_controller.kube.informer import ATTACHED_NODES_INDEX
from eni_controller.model import FINALIZER
from eni_controller.reconcile.nodes import NodeView

Obj = dict[str, Any]


ENINODE_SYNC_DELAY_SECONDS: Final = 1.0


class Queue(Protocol):
    def add(self, key: str) -> None: ...
    def add_after(self, key: str, delay: float) -> None: ...


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
    """NodeENI events → that NodeENI, and the nodes whose ENINode spec they change."""

    def __init__(self, queue: Queue, *, view: View, writes: Seen, eninodes: Queue) -> None:
        self._queue = queue
        self._view = view
        self._writes = writes  # told every version the informer stores (own-write waits)
        self._eninodes = eninodes

    def on_add(self, obj: Obj) -> None:
        self._writes.seen(obj)
        self._sync(_shares(obj))
        self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._writes.seen(new)
        self._sync(_changed_shares(old, new))
        had, has = (FINALIZER in (_meta(v).get("finalizers") or ()) for v in (old, new))
        if _meta(new).get("deletionTimestamp") and not _meta(old).get("deletionTimestamp"):
            # asked to delete (the server bumps the generation too): nothing changed in EC2
            self._queue.add(_meta(new)["name"])
        elif _edited(old, new) or (had and not has):
            self._enqueue(new)

    def on_delete(self, obj: Obj) -> None:
        self._writes.seen(obj, gone=True)
        self._sync(_shares(obj))
        self._queue.add(_meta(obj)["name"])  # the reconcile finds it gone and forgets it

    def _enqueue(self, obj: Obj) -> None:
        self._view.changed(uid=_meta(obj).get("uid"))
        self._queue.add(_meta(obj)["name"])

    def _sync(self, nodes: Iterable[str]) -> None:
        for node in sorted(nodes):
            self._eninodes.add_after(node, ENINODE_SYNC_DELAY_SECONDS)


def _shares(nodeeni: Obj) -> dict[str, frozenset[tuple[Any, ...]]]:
    """Per node, what its ENINode spec takes from this NodeENI's status entries."""
    items = (nodeeni.get("status") or {}).get("attachments")
    by_node: dict[str, set[tuple[Any, ...]]] = {}
    for a in items if isinstance(items, list) else ():
        if isinstance(a, Mapping) and isinstance(a.get("nodeID"), str):
            entry = (a.get("eniID"), a.get("macAddress"), a.get("deviceIndex"), a.get("status"))
            by_node.setdefault(a["nodeID"], set()).add(entry)
    return {node: frozenset(entries) for node, entries in by_node.items()}


def _changed_shares(old: Obj, new: Obj) -> set[str]:
    before, after = _shares(old), _shares(new)
    nodes = before.keys() | after.keys()
    if _edited(old, new):
        return set(nodes)  # every entry's MTU or DPDK settings may change, or all go
    return {n for n in nodes if before.get(n) != after.get(n)}


def _edited(old: Obj, new: Obj) -> bool:
    """A new generation (spec edited) or a deletion timestamp set."""
    return any(_meta(old).get(k) != _meta(new).get(k) for k in ("generation", "deletionTimestamp"))


class ENINodeEvents:
    """ENINode events → the NodeENIs its agent reports on; a deleted one → its node."""

    def __init__(self, queue: Queue, *, eninodes: Queue) -> None:
        self._queue = queue
        self._eninodes = eninodes

    def on_add(self, obj: Obj) -> None:
        if obj.get("status"):
            self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if old.get("status") != new.get("status"):
            self._enqueue(old, new)

    def on_delete(self, obj: Obj) -> None:
        self._eninodes.add(_meta(obj)["name"])

    def _enqueue(self, *versions: Obj) -> None:
        named: set[str] = set()
        for version in versions:
            items = (version.get("spec") or {}).get("interfaces")
            for item in items if isinstance(items, list) else ():
                nodeeni = item.get("nodeENI") if isinstance(item, Mapping) else None
                if isinstance(nodeeni, str) and nodeeni:
                    named.add(nodeeni)
        for name in sorted(named):
            self._queue.add(name)


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

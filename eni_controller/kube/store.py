"""The informer's cache: objects by name, secondary indexes, and the update rule.

Pure and synchronous, so the rule handlers rely on is testable without a server.
Objects are shared with the handlers: treat them as read-only.

The update rule: an object equal to the stored one except for
``metadata.resourceVersion`` is not an update. The store keeps the new version
(writes based on it carry the newest resourceVersion) and no handler is called,
so a Node heartbeat costs one comparison. Indexers must not read
``metadata.resourceVersion``: such a replacement keeps its index entries.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import structlog

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
Indexer = Callable[[Obj], Iterable[str]]


def object_name(obj: Obj) -> str:
    """The store key: ``metadata.name`` (the resources watched are cluster-scoped)."""
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("object has no metadata.name")
    return name


def resource_version(obj: Obj) -> str | None:
    metadata = obj.get("metadata")
    rv = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return rv if isinstance(rv, str) and rv else None


def same_but_version(old: Obj, new: Obj) -> bool:
    """True when ``old`` and ``new`` are equal except for metadata.resourceVersion."""
    return _versionless(old) == _versionless(new)


def _versionless(obj: Obj) -> Obj:
    """`obj` with any metadata.resourceVersion blanked (its presence still counts)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "resourceVersion" not in metadata:
        return obj
    return {**obj, "metadata": {**metadata, "resourceVersion": None}}


class Diff(NamedTuple):
    """What a ``Store.replace`` changed."""

    added: tuple[Obj, ...]
    updated: tuple[tuple[Obj, Obj], ...]
    deleted: tuple[Obj, ...]


class Store:
    """Objects by name, plus secondary indexes kept exact on every change: the values an
    object was filed under are remembered, so an update removes exactly those."""

    def __init__(self, indexers: Mapping[str, Indexer] | None = None) -> None:
        self._indexers = dict(indexers or {})
        self._items: dict[str, Obj] = {}
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> Obj | None:
        return self._items.get(name)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        """Objects filed under ``value`` in ``index_name``, sorted by name."""
        keys = self._indices[index_name].get(value, ())
        return [self._items[key] for key in sorted(keys)]

    def index_values(self, index_name: str) -> builtins.list[str]:
        """Every value ``index_name`` currently holds, sorted."""
        return sorted(self._indices[index_name])

    def put(self, obj: Obj) -> tuple[Obj | None, bool]:
        """Store ``obj``; return the object it replaced (None: it is new) and
        whether that is a change for the handlers by the update rule."""
        key = object_name(obj)
        old = self._items.get(key)
        changed = old is None or not same_but_version(old, obj)
        if changed:
            self._unfile(key)
            self._file(key, obj)
        self._items[key] = obj
        return old, changed

    def delete(self, name: str) -> Obj | None:
        """Remove an object; returns it, or None if it was not there."""
        self._unfile(name)
        return self._items.pop(name, None)

    def replace(self, objs: Iterable[Obj]) -> Diff:
        """Make the store hold exactly ``objs``; report the difference (updates by
        the update rule, deletions as last stored)."""
        incoming: dict[str, Obj] = {object_name(obj): obj for obj in objs}
        deleted = [obj for key, obj in self._items.items() if key not in incoming]
        for obj in deleted:
            self.delete(object_name(obj))
        added: list[Obj] = []
        updated: list[tuple[Obj, Obj]] = []
        for obj in incoming.values():
            old, changed = self.put(obj)
            if old is None:
                added.append(obj)
            elif changed:
                updated.append((old, obj))
        return Diff(added=tuple(added), updated=tuple(updated), deleted=tuple(deleted))

    def _file(self, key: str, obj: Obj) -> None:
        filed: dict[str, tuple[str, ...]] = {}
        for index_name, indexer in self._indexers.items():
            try:
                values = tuple(dict.fromkeys(indexer(obj)))
            except Exception:
                # An indexer tripping over one odd object must not wedge the informer.
                log.warning("indexer failed", index=index_name, name=key, exc_info=True)
                values = ()
            index = self._indices[index_name]
            for value in values:
                index.setdefault(value, set()).add(key)
            filed[index_name] = values
        self._filed[key] = filed

    def _unfile(self, key: str) -> None:
        for index_name, values in self._filed.pop(key, {}).items():
            index = self._indices[index_name]
            for value in values:
                index[value].discard(key)
                if not index[value]:
                    del index[value]

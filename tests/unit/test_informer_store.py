"""The informer's Store: indexes stay exact through add/update/delete, and a
relist (`replace`) reports exactly what changed, deletions with the last
stored object."""

from __future__ import annotations

from typing import Any

import pytest

from eni_controller.kube.informer import (
    ATTACHED_NODES_INDEX,
    LABELS_INDEX,
    node_labels_index,
    nodeeni_attached_nodes_index,
)
from eni_controller.kube.store import Store


def node(name: str, rv: str = "1", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv, "labels": labels}}


def nodeeni(name: str, rv: str = "1", *nodes: str) -> dict[str, Any]:
    attachments = [{"nodeID": n, "eniID": f"eni-{i}"} for i, n in enumerate(nodes)]
    return {
        "metadata": {"name": name, "resourceVersion": rv},
        "status": {"attachments": attachments},
    }


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


@pytest.fixture
def store() -> Store:
    return Store({LABELS_INDEX: node_labels_index})


def test_add_indexes_every_label(store: Store) -> None:
    assert store.put(node("a", ng="multus", zone="z1")) == (None, True)
    store.put(node("b", ng="multus"))
    assert names(store.by_index(LABELS_INDEX, "ng=multus")) == ["a", "b"]
    assert names(store.by_index(LABELS_INDEX, "zone=z1")) == ["a"]
    assert store.by_index(LABELS_INDEX, "ng=other") == []
    assert store.index_values(LABELS_INDEX) == ["ng=multus", "zone=z1"]


def test_update_drops_old_index_values(store: Store) -> None:
    first = node("a", "1", ng="multus", zone="z1")
    store.put(first)
    store.put(node("b", "1", ng="multus"))
    second = node("a", "2", ng="other")
    assert store.put(second)[0] is first
    assert store.get("a") is second
    assert names(store.by_index(LABELS_INDEX, "ng=multus")) == ["b"]
    assert names(store.by_index(LABELS_INDEX, "ng=other")) == ["a"]
    assert store.by_index(LABELS_INDEX, "zone=z1") == []
    # no empty buckets are left behind
    assert store.index_values(LABELS_INDEX) == ["ng=multus", "ng=other"]


def test_update_is_exact_even_if_the_old_object_was_mutated(store: Store) -> None:
    # The values an object was filed under are remembered, not recomputed.
    obj = node("a", ng="multus")
    store.put(obj)
    obj["metadata"]["labels"] = {"ng": "changed-in-place"}
    store.put(node("a", "2", ng="new"))
    assert store.index_values(LABELS_INDEX) == ["ng=new"]


def test_delete_removes_object_and_index_entries(store: Store) -> None:
    obj = node("a", ng="multus")
    store.put(obj)
    store.put(node("b", ng="multus"))
    assert store.delete("a") is obj
    assert store.get("a") is None
    assert names(store.by_index(LABELS_INDEX, "ng=multus")) == ["b"]
    assert store.delete("a") is None
    store.delete("b")
    assert store.index_values(LABELS_INDEX) == []
    assert len(store) == 0


def test_replace_reports_adds_changes_and_deletions() -> None:
    store = Store({LABELS_INDEX: node_labels_index})
    a1, b1, c1 = node("a", "1", ng="x"), node("b", "1", ng="x"), node("c", "1", ng="gone")
    diff = store.replace([a1, b1, c1])
    assert names(list(diff.added)) == ["a", "b", "c"]
    assert diff.updated == ()
    assert diff.deleted == ()

    b2, d1 = node("b", "2", ng="y"), node("d", "1", ng="x")
    unchanged_a = node("a", "1", ng="x")
    diff = store.replace([unchanged_a, b2, d1])
    assert diff.added == (d1,)
    assert diff.updated == ((b1, b2),)
    assert diff.deleted == (c1,)  # as last stored
    assert sorted(o["metadata"]["name"] for o in store.list()) == ["a", "b", "d"]
    assert names(store.by_index(LABELS_INDEX, "ng=x")) == ["a", "d"]
    assert names(store.by_index(LABELS_INDEX, "ng=y")) == ["b"]
    assert store.index_values(LABELS_INDEX) == ["ng=x", "ng=y"]

    assert store.replace([]).deleted == (a1, b2, d1)
    assert store.index_values(LABELS_INDEX) == []


def test_replace_without_resource_versions_compares_content() -> None:
    store = Store()
    store.replace([{"metadata": {"name": "a"}, "spec": 1}])
    diff = store.replace([{"metadata": {"name": "a"}, "spec": 1}])
    assert diff.updated == ()
    diff = store.replace([{"metadata": {"name": "a"}, "spec": 2}])
    assert len(diff.updated) == 1


def test_attached_nodes_index_follows_status() -> None:
    store = Store({ATTACHED_NODES_INDEX: nodeeni_attached_nodes_index})
    store.put(nodeeni("eni-a", "1", "n1", "n2"))
    store.put(nodeeni("eni-b", "1", "n2"))
    assert names(store.by_index(ATTACHED_NODES_INDEX, "n2")) == ["eni-a", "eni-b"]
    store.put(nodeeni("eni-a", "2", "n1"))
    assert names(store.by_index(ATTACHED_NODES_INDEX, "n2")) == ["eni-b"]
    assert names(store.by_index(ATTACHED_NODES_INDEX, "n1")) == ["eni-a"]


def test_indexers_tolerate_junk() -> None:
    assert node_labels_index({}) == []
    assert node_labels_index({"metadata": {"labels": None}}) == []
    assert node_labels_index(node("a", ng="multus", zone="z")) == ["ng=multus", "zone=z"]
    assert nodeeni_attached_nodes_index({}) == []
    assert nodeeni_attached_nodes_index({"status": {"attachments": "nope"}}) == []
    junk = {"status": {"attachments": [None, {"nodeID": 3}, {"nodeID": ""}, {"eniID": "e"}]}}
    assert nodeeni_attached_nodes_index(junk) == []
    # two ENIs on one node (multi-subnet) file the NodeENI once
    assert nodeeni_attached_nodes_index(nodeeni("x", "1", "n1", "n1", "n2")) == ["n1", "n2"]


def test_failing_indexer_keeps_the_object_unindexed() -> None:
    def broken(obj: dict[str, Any]) -> list[str]:
        raise RuntimeError("boom")

    store = Store({"broken": broken, LABELS_INDEX: node_labels_index})
    store.put(node("a", ng="multus"))
    assert store.get("a") is not None
    assert store.index_values("broken") == []
    assert names(store.by_index(LABELS_INDEX, "ng=multus")) == ["a"]
    store.delete("a")
    assert store.index_values(LABELS_INDEX) == []


def test_unknown_index_and_nameless_objects_are_errors(store: Store) -> None:
    with pytest.raises(KeyError):
        store.by_index("nope", "x")
    with pytest.raises(ValueError, match=r"metadata\.name"):
        store.put({"metadata": {}})
    with pytest.raises(ValueError, match=r"metadata\.name"):
        store.replace([{"kind": "Node"}])

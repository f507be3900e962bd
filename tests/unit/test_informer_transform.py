"""Informer transforms and the update rule: what is kept of a Node and a NodeENI,
that every reader of a Node reads the same from the kept part as from the
whole object, and that an update equal but for its resourceVersion (a kubelet
heartbeat, once transformed) reaches no handler while the store still holds
the newest version. The informer runs here against a scripted list/watch
(`FakeResourceAPI`); tests/integration/test_informer.py has the same against
the real API server."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from bench.eks_nodes import eks_node_body, eks_node_status, heartbeat
from eni_controller.kube.informer import (
    LABELS_INDEX,
    NODE_METADATA_KEPT,
    Informer,
    node_labels_index,
    node_transform,
    without_managed_fields,
)
from eni_controller.kube.resources import ResourceAPI
from eni_controller.kube.store import Store, same_but_version
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.sweep import node_instance_ids

Obj = dict[str, Any]
INSTANCE = "i-0123456789abcdef0"
WITHIN = 5.0


def eks_node(name: str = "n1", rv: str = "1", *, index: int = 1, **labels: str) -> Obj:
    """A whole Node as the server sends it: EKS-shaped, with managedFields."""
    body = eks_node_body(
        name=name, index=index, instance_id=INSTANCE, az="us-east-1a", extra_labels=labels
    )
    node: Obj = {**body, **eks_node_status(name=name, index=index)}
    node["metadata"] |= {
        "uid": f"uid-{name}",
        "resourceVersion": rv,
        "creationTimestamp": "2026-11-01T08:00:00Z",
        "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsV1": {}}],
    }
    return node


def beat(node: Obj, rv: str, at: str) -> Obj:
    """`node` after a kubelet heartbeat at `at`: new conditions, new version."""
    new = copy.deepcopy(node)
    new["status"]["conditions"] = heartbeat(at)["status"]["conditions"]
    new["metadata"]["resourceVersion"] = rv
    return new


def relabelled(node: Obj, rv: str, **labels: str) -> Obj:
    new = copy.deepcopy(node)
    new["metadata"]["labels"] |= labels
    new["metadata"]["resourceVersion"] = rv
    return new


# -- what is kept --------------------------------------------------------------


def test_node_transform_keeps_what_the_controller_reads_and_nothing_else() -> None:
    whole = eks_node(ng="multus")
    whole["metadata"]["deletionTimestamp"] = "2026-11-02T00:00:00Z"
    before = copy.deepcopy(whole)
    kept = node_transform(whole)
    assert whole == before  # the argument is not changed
    assert kept == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "n1",
            "uid": "uid-n1",
            "resourceVersion": "1",
            "labels": whole["metadata"]["labels"],
            "deletionTimestamp": "2026-11-02T00:00:00Z",
        },
        "spec": {"providerID": f"aws:///us-east-1a/{INSTANCE}"},
    }
    assert set(kept["metadata"]) == set(NODE_METADATA_KEPT)


def test_every_node_reader_reads_the_same_from_the_kept_part() -> None:
    whole = eks_node(ng="multus")
    kept = node_transform(whole)
    assert NodeView.from_api(kept) == NodeView.from_api(whole)
    assert NodeView.from_api(kept).instance_id == INSTANCE
    assert node_instance_ids([kept]) == node_instance_ids([whole]) == {INSTANCE}
    assert node_labels_index(kept) == node_labels_index(whole)


def test_node_transform_tolerates_odd_objects() -> None:
    assert node_transform({}) == {"apiVersion": None, "kind": None, "metadata": {}}
    assert node_transform({"metadata": "x", "spec": None})["metadata"] == {}
    kept = node_transform({"metadata": {"name": "a"}, "spec": {"unschedulable": True}})
    assert "spec" not in kept  # no providerID: nothing of the spec is read


def test_without_managed_fields_drops_only_managed_fields() -> None:
    nodeeni: Obj = {
        "apiVersion": "networking.k8s.aws/v1alpha1",
        "kind": "NodeENI",
        "metadata": {
            "name": "a",
            "uid": "u",
            "resourceVersion": "3",
            "generation": 2,
            "finalizers": ["f"],
            "annotations": {"k": "v"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"subnetID": "subnet-1"},
        "status": {"attachments": [{"nodeID": "n1"}]},
    }
    before = copy.deepcopy(nodeeni)
    kept = without_managed_fields(nodeeni)
    assert nodeeni == before
    expected = copy.deepcopy(nodeeni)
    del expected["metadata"]["managedFields"]
    assert kept == expected
    plain = copy.deepcopy(expected)
    assert without_managed_fields(plain) is plain  # nothing to drop: nothing copied
    assert without_managed_fields({"metadata": None}) == {"metadata": None}


# -- the update rule -----------------------------------------------------------


def test_same_but_version() -> None:
    a = node_transform(eks_node(rv="1"))
    assert same_but_version(a, node_transform(beat(eks_node(rv="1"), "2", "later")))
    assert not same_but_version(a, node_transform(relabelled(eks_node(), "2", ng="x")))
    assert not same_but_version(a, {**a, "extra": 1})
    gone = copy.deepcopy(a)
    del gone["spec"]
    assert not same_but_version(a, gone)
    marked = copy.deepcopy(a)
    marked["metadata"]["deletionTimestamp"] = "2026-11-02T00:00:00Z"
    assert not same_but_version(a, marked)
    assert same_but_version({"metadata": None}, {"metadata": None})
    assert not same_but_version({"metadata": None}, {"metadata": {}})


def test_store_put_keeps_a_heartbeat_without_calling_it_a_change() -> None:
    store = Store({LABELS_INDEX: node_labels_index})
    first = node_transform(eks_node(rv="1", ng="multus"))
    assert store.put(first) == (None, True)
    second = node_transform(beat(eks_node(rv="1", ng="multus"), "2", "later"))
    assert store.put(second) == (first, False)
    assert store.get("n1") is second  # the newest version is what a write would carry
    assert [
        n["metadata"]["resourceVersion"] for n in store.by_index(LABELS_INDEX, "ng=multus")
    ] == ["2"]
    # the same version again is no change either
    assert store.put(copy.deepcopy(second)) == (second, False)


def test_store_put_label_change_undo_redo() -> None:
    store = Store({LABELS_INDEX: node_labels_index})
    base = eks_node(rv="1", ng="multus")
    store.put(node_transform(base))
    moved = node_transform(relabelled(base, "2", ng="other"))
    old, changed = store.put(moved)
    assert changed
    assert old is not None
    assert old["metadata"]["labels"]["ng"] == "multus"
    assert store.by_index(LABELS_INDEX, "ng=multus") == []
    back = node_transform(relabelled(base, "3", ng="multus"))
    assert store.put(back) == (moved, True)
    assert [n["metadata"]["name"] for n in store.by_index(LABELS_INDEX, "ng=multus")] == ["n1"]
    assert store.by_index(LABELS_INDEX, "ng=other") == []
    again = node_transform(relabelled(base, "4", ng="other"))
    assert store.put(again) == (back, True)
    assert store.index_values(LABELS_INDEX).count("ng=other") == 1


def test_replace_does_not_report_heartbeats_as_updates() -> None:
    store = Store({LABELS_INDEX: node_labels_index})
    a, b = eks_node("a", "1", index=1), eks_node("b", "1", index=2)
    store.replace([node_transform(a), node_transform(b)])
    diff = store.replace(
        [node_transform(beat(a, "5", "later")), node_transform(relabelled(b, "6", ng="x"))]
    )
    assert [new["metadata"]["name"] for _, new in diff.updated] == ["b"]
    assert diff.added == diff.deleted == ()
    stored_a = store.get("a")
    assert stored_a is not None
    assert stored_a["metadata"]["resourceVersion"] == "5"


# -- the informer --------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Obj | None, Obj]] = []

    def on_add(self, obj: Obj) -> None:
        self.events.append(("add", None, obj))

    def on_update(self, old: Obj, new: Obj) -> None:
        self.events.append(("update", old, new))

    def on_delete(self, obj: Obj) -> None:
        self.events.append(("delete", None, obj))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


class FakeResourceAPI(ResourceAPI):
    """A list answered from `items`, then one watch yielding what is put on
    `events` (a BOOKMARK marks a point the test waits for)."""

    def __init__(self, items: list[Obj], *, list_rv: str = "1") -> None:
        super().__init__(kind="Node", api_version="v1", list_call=_unused)
        self.items = items
        self.list_rv = list_rv
        self.events: asyncio.Queue[Obj] = asyncio.Queue()
        self.bookmarks: asyncio.Queue[str] = asyncio.Queue()

    async def list(
        self, *, limit: int = 500, transform: Callable[[Obj], Obj] | None = None
    ) -> tuple[list[Obj], str]:
        items = [copy.deepcopy(i) for i in self.items]
        return [transform(i) if transform else i for i in items], self.list_rv

    async def watch(
        self, *, resource_version: str, timeout_seconds: int, metadata_only: bool = False
    ) -> AsyncGenerator[Obj, None]:
        while True:
            event = await self.events.get()
            yield event
            if event["type"] == "BOOKMARK":
                self.bookmarks.put_nowait(event["object"]["metadata"]["resourceVersion"])

    async def through(self, rv: str) -> None:
        """Send a bookmark at `rv` and wait until the informer has taken it."""
        self.events.put_nowait(
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": rv}}}
        )
        async with asyncio.timeout(WITHIN):
            while await self.bookmarks.get() != rv:
                pass


async def _unused(**kwargs: Any) -> Any:
    raise AssertionError("FakeResourceAPI answers itself")


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[None]:
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(WITHIN):
            await informer.wait_synced()
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def node_informer(api: FakeResourceAPI, recorder: Recorder) -> Informer:
    return Informer(
        name="nodes",
        api=api,
        handler=recorder,
        indexers={LABELS_INDEX: node_labels_index},
        transform=node_transform,
    )


async def test_heartbeats_reach_no_handler_and_label_changes_do() -> None:
    base = eks_node("n1", "1", ng="multus")
    api = FakeResourceAPI([base])
    recorder = Recorder()
    informer = node_informer(api, recorder)
    async with running(informer):
        assert recorder.kinds() == ["add"]
        assert "status" not in recorder.events[0][2]

        api.events.put_nowait({"type": "MODIFIED", "object": beat(base, "2", "t2")})
        await api.through("3")
        assert recorder.kinds() == ["add"]
        stored = informer.get("n1")
        assert stored is not None
        assert stored["metadata"]["resourceVersion"] == "2"

        # do, undo, redo a label change, heartbeats between them
        for rv, ng in (("4", "other"), ("6", "multus"), ("8", "other")):
            api.events.put_nowait({"type": "MODIFIED", "object": relabelled(base, rv, ng=ng)})
            beaten = beat(relabelled(base, rv, ng=ng), str(int(rv) + 1), f"t{rv}")
            api.events.put_nowait({"type": "MODIFIED", "object": beaten})
        await api.through("10")
        updates = [(old, new) for kind, old, new in recorder.events if kind == "update"]
        assert [
            (old["metadata"]["labels"]["ng"], new["metadata"]["labels"]["ng"])
            for old, new in updates
            if old is not None
        ] == [("multus", "other"), ("other", "multus"), ("multus", "other")]
        assert all(new == node_transform(new) for _, new in updates)  # only kept parts
        assert [n["metadata"]["name"] for n in informer.by_index(LABELS_INDEX, "ng=other")] == [
            "n1"
        ]
        assert informer.resource_version == "10"

        api.events.put_nowait({"type": "DELETED", "object": beat(base, "11", "t11")})
        await api.through("12")
        kind, _, deleted = recorder.events[-1]
        assert kind == "delete"
        assert deleted == node_transform(deleted)
        assert informer.get("n1") is None


async def test_a_failing_transform_keeps_the_object_whole() -> None:
    def picky(obj: Obj) -> Obj:
        if obj["metadata"]["name"] == "odd":
            raise KeyError("something")
        return node_transform(obj)

    api = FakeResourceAPI([eks_node("fine", "1"), eks_node("odd", "1", index=2)])
    recorder = Recorder()
    informer = Informer(name="nodes", api=api, handler=recorder, transform=picky)
    async with running(informer):
        fine, odd = informer.get("fine"), informer.get("odd")
        assert fine is not None
        assert "status" not in fine
        assert odd is not None
        assert "status" in odd
        assert sorted(new["metadata"]["name"] for _, _, new in recorder.events) == ["fine", "odd"]

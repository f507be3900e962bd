"""The informer against a real API server: initial sync, live events with old
and new objects, the label and attached-node indexes, watch resumption after
the server's timeout, relists on 410 (the ERROR event the server sends, and a
plain HTTP 410), backoff after a dropped connection, handler failures and
cancellation.

Faults the server cannot be asked for (an expired watch at a chosen moment, a
connection cut mid-stream) are injected by `ScriptedAPI`, which wraps the real
`ResourceAPI` and replaces chosen watch calls; everything else is the server's
own behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, TypeVar, cast

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bench.eks_nodes import heartbeat
from eni_controller import model
from eni_controller.kube.informer import (
    ATTACHED_NODES_INDEX,
    LABELS_INDEX,
    Informer,
    complete_node,
    node_labels_index,
    node_transform,
    nodeeni_attached_nodes_index,
)
from eni_controller.kube.resources import ResourceAPI
from tests.conftest import NodeENIs
from tests.harness.ec2world import World
from tests.harness.kube import MERGE_PATCH, NodeFactory, merge_patch_nodeeni
from tests.samples import VALID_SPECS

Obj = dict[str, Any]
T = TypeVar("T")
WITHIN = 10.0
SPEC = VALID_SPECS["single-subnet"]
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
ENI_ID = "eni-0123456789abcdef0"


def name_of(obj: Obj) -> str:
    name: str = obj["metadata"]["name"]
    return name


class Recorder:
    """An EventHandler that records what it is told about objects named `prefix*`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events: list[tuple[str, Obj | None, Obj]] = []

    def on_add(self, obj: Obj) -> None:
        self._record("add", None, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._record("update", old, new)

    def on_delete(self, obj: Obj) -> None:
        self._record("delete", None, obj)

    def _record(self, kind: str, old: Obj | None, new: Obj) -> None:
        if name_of(new).startswith(self.prefix):
            self.events.append((kind, old, new))

    def seen(self) -> list[tuple[str, str]]:
        return [(kind, name_of(new)) for kind, _, new in self.events]

    def find(self, kind: str, name: str) -> tuple[Obj | None, Obj] | None:
        for k, old, new in self.events:
            if k == kind and name_of(new) == name:
                return old, new
        return None

    async def wait_for(self, kind: str, name: str) -> tuple[Obj | None, Obj]:
        return await eventually(lambda: self.find(kind, name))


async def eventually(check: Callable[[], T | None]) -> T:
    async with asyncio.timeout(WITHIN):
        while True:
            result = check()
            if result:
                return result
            await asyncio.sleep(0.02)


WatchScript = Callable[[str, int], AsyncGenerator[Obj, None]]


async def _never(**kwargs: Any) -> Any:
    raise AssertionError("ScriptedAPI delegates to its inner ResourceAPI")


class ScriptedAPI(ResourceAPI):
    """The real ResourceAPI, with call records and replaceable watch calls.

    Each entry of `scripts` replaces one watch call, in order; once they are
    used up, watches go to the server as asked.
    """

    def __init__(self, inner: ResourceAPI, *scripts: WatchScript) -> None:
        super().__init__(kind=inner.kind, api_version=inner.api_version, list_call=_never)
        self.inner = inner
        self.scripts = list(scripts)
        self.lists = 0
        self.listed_at: list[float] = []  # time.monotonic() of each list call
        self.watches: list[str] = []
        self.closed = 0

    async def list(
        self, *, limit: int = 500, transform: Callable[[Obj], Obj] | None = None
    ) -> tuple[list[Obj], str]:
        self.lists += 1
        self.listed_at.append(time.monotonic())
        return await self.inner.list(limit=limit, transform=transform)

    async def watch(
        self, *, resource_version: str, timeout_seconds: int, metadata_only: bool = False
    ) -> AsyncGenerator[Obj, None]:
        self.watches.append(resource_version)
        if self.scripts:
            source = self.scripts.pop(0)(resource_version, timeout_seconds)
        else:
            source = self.inner.watch(
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                metadata_only=metadata_only,
            )
        try:
            async with contextlib.aclosing(source):
                async for event in source:
                    yield event
        finally:
            self.closed += 1


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[asyncio.Task[None]]:
    """Run the informer for the block; it must still be running at the end."""
    task = asyncio.create_task(informer.run(), name=f"informer-{informer.name}")
    try:
        yield task
    finally:
        task.cancel()
        async with asyncio.timeout(5):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def node_informer(api: client.ApiClient, handler: Recorder, **kwargs: Any) -> Informer:
    return Informer(
        name="nodes",
        api=ResourceAPI.nodes(api),
        handler=handler,
        indexers={LABELS_INDEX: node_labels_index},
        **kwargs,
    )


class FirstGetsFail(ResourceAPI):
    """Nodes, whose completion GETs fail while `failing` is above 0 (as during an
    API server restart), one fewer each time."""

    failing = 0

    async def get(self, name: str) -> dict[str, Any] | None:
        if self.failing > 0:
            self.failing -= 1
            raise ApiException(status=503, reason="Service Unavailable")
        return await super().get(name)


def nodeeni_informer(api: ResourceAPI, handler: Recorder, **kwargs: Any) -> Informer:
    return Informer(
        name="nodeenis",
        api=api,
        handler=handler,
        indexers={ATTACHED_NODES_INDEX: nodeeni_attached_nodes_index},
        **kwargs,
    )


async def delete_nodeeni(nodeenis: NodeENIs, name: str) -> None:
    await nodeenis.custom.delete_cluster_custom_object(
        model.GROUP, model.VERSION, model.PLURAL, name
    )


async def synced(informer: Informer) -> None:
    async with asyncio.timeout(WITHIN):
        await informer.wait_synced()


# -- ResourceAPI ------------------------------------------------------------


async def test_list_pages_through_everything_as_raw_dicts(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    for suffix in "abc":
        await nodeenis.create(f"{unique}-{suffix}", SPEC)
    items, rv = await ResourceAPI.nodeenis(kube_api).list(limit=1)
    ours = sorted((i for i in items if name_of(i).startswith(unique)), key=name_of)
    assert [name_of(i) for i in ours] == [f"{unique}-a", f"{unique}-b", f"{unique}-c"]
    assert all(i["kind"] == "NodeENI" and i["spec"]["subnetID"] for i in ours)
    assert int(rv) >= max(int(i["metadata"]["resourceVersion"]) for i in ours)


async def test_list_fills_in_kind_of_builtin_items(
    kube_api: client.ApiClient, nodes: NodeFactory, ec2_world: World, unique: str
) -> None:
    await nodes.create(name=unique, instance=ec2_world.instances[0])
    items, _ = await ResourceAPI.nodes(kube_api).list(limit=1)
    (node,) = (i for i in items if name_of(i) == unique)
    assert node["kind"] == "Node"
    assert node["apiVersion"] == "v1"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == unique


async def test_list_transforms_each_item_of_each_page(
    kube_api: client.ApiClient, nodes: NodeFactory, ec2_world: World, unique: str
) -> None:
    for suffix in "ab":
        await nodes.create(name=f"{unique}-{suffix}", instance=ec2_world.instances[0])
    seen: list[str] = []

    def transform(item: Obj) -> Obj:
        seen.append(name_of(item))
        return node_transform(item)

    items, _ = await ResourceAPI.nodes(kube_api).list(limit=1, transform=transform)
    ours = sorted((i for i in items if name_of(i).startswith(unique)), key=name_of)
    assert [name_of(i) for i in ours] == [f"{unique}-a", f"{unique}-b"]
    assert all(i == node_transform(i) and i["kind"] == "Node" for i in ours)
    assert sorted(seen) == sorted(name_of(i) for i in items)  # every item, once


async def test_watch_reads_lines_longer_than_aiohttp_readline_allows(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    api = ResourceAPI.nodeenis(kube_api)
    _, rv = await api.list()
    await nodeenis.create(unique, SPEC)
    big = "x" * 200_000  # one watch line > aiohttp's 128 KiB readline limit
    await merge_patch_nodeeni(
        nodeenis.custom, unique, {"metadata": {"annotations": {"test/big": big}}}
    )
    seen: list[str] = []
    async with asyncio.timeout(WITHIN):
        async for event in api.watch(resource_version=rv, timeout_seconds=5):
            if name_of(event["object"]) != unique:
                continue
            seen.append(event["type"])
            if event["type"] == "MODIFIED":
                assert event["object"]["metadata"]["annotations"]["test/big"] == big
                break
    assert seen == ["ADDED", "MODIFIED"]


# -- sync and live events ---------------------------------------------------


async def test_nodeeni_informer_syncs_then_follows_events(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    a, b = f"{unique}-a", f"{unique}-b"
    created_a = await nodeenis.create(a, SPEC)
    recorder = Recorder(unique)
    informer = nodeeni_informer(ResourceAPI.nodeenis(kube_api), recorder)
    assert not informer.has_synced
    async with running(informer):
        await synced(informer)
        assert informer.has_synced
        assert recorder.seen() == [("add", a)]
        stored = informer.get(a)
        assert stored is not None
        assert stored["metadata"]["uid"] == created_a["metadata"]["uid"]
        assert name_of(stored) in [name_of(o) for o in informer.list()]

        await nodeenis.create(b, SPEC)
        _, added = await recorder.wait_for("add", b)
        assert added["spec"]["subnetID"] == SPEC["subnetID"]

        await merge_patch_nodeeni(nodeenis.custom, a, {"spec": {"mtu": 1500}})
        old, new = await recorder.wait_for("update", a)
        assert old is not None
        assert "mtu" not in old["spec"]
        assert new["spec"]["mtu"] == 1500
        assert informer.get(a) is new

        await delete_nodeeni(nodeenis, b)
        _, deleted = await recorder.wait_for("delete", b)
        assert name_of(deleted) == b
        assert informer.get(b) is None
        assert recorder.seen() == [("add", a), ("add", b), ("update", a), ("delete", b)]


async def test_attached_nodes_index_follows_status_patches(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    node = f"{unique}-node"
    recorder = Recorder(unique)
    informer = nodeeni_informer(ResourceAPI.nodeenis(kube_api), recorder)
    async with running(informer):
        await synced(informer)
        await nodeenis.create(unique, SPEC)
        await recorder.wait_for("add", unique)
        assert informer.by_index(ATTACHED_NODES_INDEX, node) == []

        attachment = {"nodeID": node, "eniID": ENI_ID}
        await merge_patch_nodeeni(
            nodeenis.custom, unique, {"status": {"attachments": [attachment]}}, status=True
        )
        found = await eventually(lambda: informer.by_index(ATTACHED_NODES_INDEX, node))
        assert [name_of(o) for o in found] == [unique]
        assert found[0]["status"]["attachments"] == [attachment]

        await merge_patch_nodeeni(
            nodeenis.custom, unique, {"status": {"attachments": []}}, status=True
        )
        await eventually(lambda: not informer.by_index(ATTACHED_NODES_INDEX, node))
        assert node not in informer.index_values(ATTACHED_NODES_INDEX)


async def test_node_informer_syncs_and_indexes_labels(
    kube_api: client.ApiClient, nodes: NodeFactory, ec2_world: World, unique: str
) -> None:
    core = client.CoreV1Api(kube_api)
    first, second = f"{unique}-1", f"{unique}-2"
    instance = ec2_world.instances[0]
    await nodes.create(name=first, instance=instance, labels={"ng": "multus"})
    recorder = Recorder(unique)
    informer = node_informer(kube_api, recorder)

    def multus() -> list[str]:
        return sorted(
            name_of(n)
            for n in informer.by_index(LABELS_INDEX, "ng=multus")
            if name_of(n).startswith(unique)
        )

    async with running(informer):
        await synced(informer)
        assert recorder.seen() == [("add", first)]
        assert multus() == [first]
        assert [
            name_of(n) for n in informer.by_index(LABELS_INDEX, f"kubernetes.io/hostname={first}")
        ] == [first]

        await nodes.create(name=second, instance=instance, labels={"ng": "multus"})
        await recorder.wait_for("add", second)
        assert multus() == [first, second]

        await core.patch_node(
            first,
            {"metadata": {"labels": {"ng": "other"}}},
            _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit it
        )
        old, new = await recorder.wait_for("update", first)
        assert old is not None
        assert old["metadata"]["labels"]["ng"] == "multus"
        assert new["metadata"]["labels"]["ng"] == "other"
        assert multus() == [second]
        assert [
            name_of(n)
            for n in informer.by_index(LABELS_INDEX, "ng=other")
            if name_of(n).startswith(unique)
        ] == [first]

        await core.delete_node(second)
        await recorder.wait_for("delete", second)
        assert multus() == []
        assert informer.get(second) is None


@pytest.mark.parametrize("watched", ["whole", "metadata"])
async def test_node_heartbeats_reach_no_handler_and_label_changes_do(
    kube_api: client.ApiClient, nodes: NodeFactory, ec2_world: World, unique: str, watched: str
) -> None:
    """With the Node transform, a status-only update (a kubelet heartbeat) is stored
    (its resourceVersion) but calls no handler; each label change calls one. Watched
    as metadata, the same, with the listed providerID kept and no GET made."""
    core = client.CoreV1Api(kube_api)
    instance = ec2_world.instances[0]
    await nodes.create(name=unique, instance=instance, labels={"ng": "multus"})
    recorder = Recorder(unique)
    complete = complete_node if watched == "metadata" else None
    informer = node_informer(kube_api, recorder, transform=node_transform, complete=complete)

    async def beat(at: str) -> str:
        node = await core.patch_node_status(
            unique,
            heartbeat(at),
            _content_type=STRATEGIC_MERGE,  # type: ignore[call-arg]
        )
        assert node.status.conditions[0].last_heartbeat_time is not None
        version: str = node.metadata.resource_version
        return version

    async def holds(version: str) -> None:
        def there() -> bool:
            obj = informer.get(unique)
            return obj is not None and obj["metadata"]["resourceVersion"] == version

        await eventually(there)

    def updates() -> list[tuple[str, str]]:
        return [
            (old["metadata"]["labels"]["ng"], new["metadata"]["labels"]["ng"])
            for kind, old, new in recorder.events
            if kind == "update" and old is not None
        ]

    async with running(informer):
        await synced(informer)
        assert recorder.seen() == [("add", unique)]
        await holds(await beat("2026-11-01T09:00:00Z"))
        assert recorder.seen() == [("add", unique)]
        kept = informer.get(unique)
        assert kept is not None
        assert "status" not in kept

        # do, undo, redo: each label change is one update, each heartbeat none
        expected: list[tuple[str, str]] = []
        for hour, (before, after) in enumerate(
            (("multus", "other"), ("other", "multus"), ("multus", "other")), start=10
        ):
            await core.patch_node(
                unique,
                {"metadata": {"labels": {"ng": after}}},
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit it
            )
            expected.append((before, after))
            await eventually(lambda: updates() == expected)
            await holds(await beat(f"2026-11-01T{hour}:00:00Z"))
            assert updates() == expected
        other = informer.by_index(LABELS_INDEX, "ng=other")
        assert [name_of(n) for n in other if name_of(n).startswith(unique)] == [unique]
        assert recorder.seen() == [("add", unique)] + [("update", unique)] * 3
        for _, _, obj in recorder.events:
            assert obj["kind"] == "Node"
            assert obj["spec"]["providerID"] == instance.provider_id
        assert informer.fetches == 0  # the listed providerID served every event


async def test_a_metadata_watch_reads_a_node_until_it_has_a_provider_id(
    kube_api: client.ApiClient, ec2_world: World, unique: str
) -> None:
    """A Node created after the list is read once (one GET); one registered
    without a providerID (a cloud controller sets it later) is read on its events
    until it has one, then never again; its deletion carries the providerID."""
    core = client.CoreV1Api(kube_api)
    recorder = Recorder(unique)
    informer = node_informer(kube_api, recorder, transform=node_transform, complete=complete_node)
    later = f"{unique}-later"
    provider_id = ec2_world.instances[0].provider_id

    def provider_ids(kind: str) -> list[str | None]:
        return [
            (obj.get("spec") or {}).get("providerID")
            for k, _, obj in recorder.events
            if k == kind and name_of(obj) == later
        ]

    async with running(informer):
        await synced(informer)
        await core.create_node(cast(Any, {"metadata": {"name": later, "labels": {"ng": "multus"}}}))
        try:
            await recorder.wait_for("add", later)
            assert provider_ids("add") == [None]
            assert informer.fetches == 1
            await core.patch_node(
                later,
                {"spec": {"providerID": provider_id}},
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit it
            )
            await eventually(lambda: provider_ids("update") == [provider_id])
            assert informer.fetches == 2
            for hour in (9, 10):  # heartbeats and a label change: no GET any more
                await core.patch_node_status(
                    later,
                    heartbeat(f"2026-11-01T{hour:02}:00:00Z"),
                    _content_type=STRATEGIC_MERGE,  # type: ignore[call-arg]
                )
            await core.patch_node(
                later,
                {"metadata": {"labels": {"ng": "other"}}},
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # stubs omit it
            )
            await eventually(lambda: provider_ids("update") == [provider_id] * 2)
            assert informer.fetches == 2
        finally:
            await core.delete_node(later)
        await recorder.wait_for("delete", later)
        assert provider_ids("delete") == [provider_id]
        assert informer.get(later) is None


# -- watch continuity, expiry and failures ------------------------------------


async def test_watch_resumes_after_server_timeout_without_relist(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    api = ScriptedAPI(ResourceAPI.nodeenis(kube_api))
    recorder = Recorder(unique)
    informer = nodeeni_informer(api, recorder, watch_timeout_seconds=1, backoff_base=30.0)
    async with running(informer):
        await synced(informer)
        await asyncio.sleep(2)
        # the server ends each 1 s watch; each is resumed, none relisted
        await eventually(lambda: len(api.watches) >= 3)
        assert api.lists == 1
        await nodeenis.create(unique, SPEC)
        await recorder.wait_for("add", unique)
        assert api.lists == 1
        assert informer.resource_version is not None


async def test_expired_watch_relists_and_delivers_the_gap(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    """The first watch is held open while objects change, then fails the way an
    expired resourceVersion does on this server: HTTP 200 + ERROR event 410."""
    a, b, c, d = (f"{unique}-{s}" for s in "abcd")
    created_b = await nodeenis.create(b, SPEC)
    await nodeenis.create(a, SPEC)
    await nodeenis.create(d, SPEC)
    inner = ResourceAPI.nodeenis(kube_api)
    first_watch_open = asyncio.Event()
    gap_over = asyncio.Event()
    expiry: list[Obj] = []

    async def expired_after_gap(rv: str, seconds: int) -> AsyncGenerator[Obj, None]:
        first_watch_open.set()
        await gap_over.wait()
        async for event in inner.watch(resource_version="1", timeout_seconds=seconds):
            expiry.append(event)
            yield event

    api = ScriptedAPI(inner, expired_after_gap)
    recorder = Recorder(unique)
    # A backoff would outlast the test: the first expiry must relist at once.
    informer = nodeeni_informer(api, recorder, backoff_base=30.0, backoff_max=30.0)
    async with running(informer):
        await synced(informer)
        async with asyncio.timeout(WITHIN):
            await first_watch_open.wait()
        assert sorted(recorder.seen()) == [("add", a), ("add", b), ("add", d)]
        list_rv = api.watches[0]

        await delete_nodeeni(nodeenis, b)
        await nodeenis.create(c, SPEC)
        await merge_patch_nodeeni(nodeenis.custom, a, {"spec": {"mtu": 1500}})
        gap_over.set()

        _, deleted = await recorder.wait_for("delete", b)
        await recorder.wait_for("add", c)
        old_a, new_a = await recorder.wait_for("update", a)

    assert [e["type"] for e in expiry] == ["ERROR"]
    assert expiry[0]["object"]["code"] == 410
    assert api.lists == 2
    # the deletion nobody watched arrives with the last state the informer had
    assert deleted["metadata"]["resourceVersion"] == created_b["metadata"]["resourceVersion"]
    assert old_a is not None
    assert "mtu" not in old_a["spec"]
    assert new_a["spec"]["mtu"] == 1500
    # the relist reports changes only: nothing for the untouched d
    assert recorder.seen()[3:] == [("delete", b), ("add", c), ("update", a)]
    # and the next watch starts from the relist, not from the stale version
    assert len(api.watches) >= 2
    assert int(api.watches[1]) > int(list_rv)


async def test_http_410_relists_at_once(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    async def http_gone(rv: str, seconds: int) -> AsyncGenerator[Obj, None]:
        raise ApiException(status=410, reason="Gone")
        yield {}  # an async generator, like the real watch

    api = ScriptedAPI(ResourceAPI.nodeenis(kube_api), http_gone)
    recorder = Recorder(unique)
    informer = nodeeni_informer(api, recorder, backoff_base=30.0, backoff_max=30.0)
    async with running(informer):
        await synced(informer)
        await eventually(lambda: api.lists == 2 and len(api.watches) == 2)
        await nodeenis.create(unique, SPEC)
        await recorder.wait_for("add", unique)
    assert api.lists == 2


async def test_the_first_410_after_an_outage_relists_at_once(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    """While the API server is down (a restart) the watch cannot connect and backs
    off, longer each time. The restarted server's watch cache starts after the
    informer's resourceVersion, so its first answer is a 410: that is the server
    answering, not one more failure, and the informer relists at once rather than
    after the backoff the outage grew (chaos case 2a: up to 8 s after a 5 s
    outage, blind to every change meanwhile)."""
    expired_at: list[float] = []

    async def refused(rv: str, seconds: int) -> AsyncGenerator[Obj, None]:
        raise aiohttp.ClientConnectionError("Connect call failed")
        yield {}  # an async generator, like the real watch

    async def expired(rv: str, seconds: int) -> AsyncGenerator[Obj, None]:
        expired_at.append(time.monotonic())
        yield {
            "type": "ERROR",
            "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
        }

    api = ScriptedAPI(ResourceAPI.nodeenis(kube_api), refused, refused, refused, expired)
    recorder = Recorder(unique)
    # backoffs of 0.1-0.2, 0.2-0.4 and 0.4-0.8 s; one more would be 0.8-1.6 s
    informer = nodeeni_informer(api, recorder, backoff_base=0.2, backoff_max=30.0)
    async with running(informer):
        await synced(informer)
        await eventually(lambda: api.lists == 2)
        await nodeenis.create(unique, SPEC)
        await recorder.wait_for("add", unique)
    assert api.listed_at[1] - expired_at[0] < 0.3
    assert api.lists == 2  # one relist, for the one 410


async def test_dropped_connection_backs_off_and_resumes_from_last_event(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    first, second = f"{unique}-1", f"{unique}-2"
    inner = ResourceAPI.nodeenis(kube_api)

    async def cut_after_first_event(rv: str, seconds: int) -> AsyncGenerator[Obj, None]:
        async with contextlib.aclosing(
            inner.watch(resource_version=rv, timeout_seconds=seconds)
        ) as stream:
            async for event in stream:
                yield event
                if name_of(event["object"]) == first:
                    raise aiohttp.ClientPayloadError("Response payload is not completed")

    api = ScriptedAPI(inner, cut_after_first_event)
    recorder = Recorder(unique)
    informer = nodeeni_informer(api, recorder, backoff_base=0.2, backoff_max=0.2)
    async with running(informer):
        await synced(informer)
        await eventually(lambda: api.watches)
        created = await nodeenis.create(first, SPEC)
        await recorder.wait_for("add", first)
        cut_at = time.monotonic()
        await eventually(lambda: len(api.watches) >= 2)
        waited = time.monotonic() - cut_at
        assert waited >= 0.09, "re-watched without backing off"  # jitter: 0.1-0.2 s
        assert api.watches[1] == created["metadata"]["resourceVersion"]
        await nodeenis.create(second, SPEC)
        await recorder.wait_for("add", second)
    assert api.lists == 1
    assert recorder.seen() == [("add", first), ("add", second)]


async def test_failing_handler_does_not_stop_the_informer(
    kube_api: client.ApiClient, nodeenis: NodeENIs, unique: str
) -> None:
    """Handler errors are logged and swallowed: no relist, no reconnect, no replay."""
    listed, bad, good = f"{unique}-bad-listed", f"{unique}-bad", f"{unique}-good"
    await nodeenis.create(listed, SPEC)

    class Grumpy(Recorder):
        def on_add(self, obj: Obj) -> None:
            super().on_add(obj)
            if "-bad" in name_of(obj):
                raise RuntimeError("handler bug")

    api = ScriptedAPI(ResourceAPI.nodeenis(kube_api))
    recorder = Grumpy(unique)
    # A failure in the loop would back off for longer than the test waits.
    informer = nodeeni_informer(api, recorder, backoff_base=30.0, backoff_max=30.0)
    async with running(informer) as task:
        await synced(informer)
        await nodeenis.create(bad, SPEC)
        await recorder.wait_for("add", bad)
        await nodeenis.create(good, SPEC)
        await recorder.wait_for("add", good)
        await merge_patch_nodeeni(nodeenis.custom, bad, {"spec": {"mtu": 1500}})
        await recorder.wait_for("update", bad)
        assert not task.done()
    assert recorder.seen() == [("add", listed), ("add", bad), ("add", good), ("update", bad)]
    assert (api.lists, len(api.watches)) == (1, 1)
    assert informer.get(bad) is not None


async def test_cancel_closes_the_watch_promptly(kube_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_api)
    responses: list[aiohttp.ClientResponse] = []

    async def list_call(**kwargs: Any) -> Any:
        response = await custom.list_cluster_custom_object(
            model.GROUP, model.VERSION, model.PLURAL, **kwargs
        )
        if kwargs.get("watch"):
            responses.append(response)
        return response

    recording = ResourceAPI(
        kind=model.KIND, api_version=f"{model.GROUP}/{model.VERSION}", list_call=list_call
    )
    api = ScriptedAPI(recording)
    informer = nodeeni_informer(api, Recorder("none"), watch_timeout_seconds=300)
    task = asyncio.create_task(informer.run())
    await synced(informer)
    await eventually(lambda: responses)
    assert not responses[0].closed
    task.cancel()
    async with asyncio.timeout(1):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert api.closed == 1
    assert responses[0].closed
    # and it can be started again, resuming the watch without a relist
    async with running(informer):
        await eventually(lambda: len(responses) == 2)
    assert api.lists == 1
    assert all(r.closed for r in responses)


async def test_a_node_whose_completion_get_fails_is_added_whole_by_the_relist(
    kube_api: client.ApiClient, ec2_world: World, unique: str
) -> None:
    """A new Node's GET failing (the server restarting) must not leave it stored
    partial: with its resourceVersion unchanged, the relist's whole copy would be
    no change, and no handler would ever see its providerID."""
    core = client.CoreV1Api(kube_api)
    recorder = Recorder(unique)
    api = FirstGetsFail.nodes(kube_api)
    assert isinstance(api, FirstGetsFail)
    informer = Informer(
        name="nodes",
        api=api,
        handler=recorder,
        indexers={LABELS_INDEX: node_labels_index},
        transform=node_transform,
        complete=complete_node,
    )
    provider_id = ec2_world.instances[0].provider_id
    async with running(informer):
        await synced(informer)
        for round_ in range(2):  # the failure, and its repeat
            name = f"{unique}-new{round_}"
            api.failing = 1
            body = {"metadata": {"name": name}, "spec": {"providerID": provider_id}}
            await core.create_node(cast(Any, body))
            try:
                await recorder.wait_for("add", name)
                adds = [obj for k, _, obj in recorder.events if k == "add" and name_of(obj) == name]
                assert [a["spec"]["providerID"] for a in adds] == [provider_id]
                stored = informer.get(name)
                assert stored is not None
                assert stored["spec"]["providerID"] == provider_id
                assert api.failing == 0
            finally:
                await core.delete_node(name)
            await recorder.wait_for("delete", name)

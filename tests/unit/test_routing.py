"""Unit tests for routing (reconcile/routing.py): which informer events enqueue
which NodeENIs, which nodes they mark for an ENINode spec sync, what they mark
changed in the EC2 view, and the versions they report to the writer's
own-write wait."""

from __future__ import annotations

import builtins
import copy
from typing import Any

from eni_controller.kube.informer import ATTACHED_NODES_INDEX
from eni_controller.model import FINALIZER
from eni_controller.reconcile.routing import (
    ENINODE_SYNC_DELAY_SECONDS,
    ENINodeEvents,
    NodeENIEvents,
    NodeEvents,
)


class Queue:
    def __init__(self) -> None:
        self.added: list[str] = []
        self.delays: list[float] = []  # of each add, 0.0 for `add`

    def add(self, key: str) -> None:
        self.added.append(key)
        self.delays.append(0.0)

    def add_after(self, key: str, delay: float) -> None:
        self.added.append(key)
        self.delays.append(delay)


class View:
    def __init__(self) -> None:
        self.changed_uids: list[str] = []
        self.changed_instances: list[str] = []
        self.forgotten: list[str] = []

    def changed(self, *, uid: str | None = None, instance: str | None = None) -> None:
        if uid:
            self.changed_uids.append(uid)
        if instance:
            self.changed_instances.append(instance)

    def forget(self, *, uid: str | None = None, instance: str | None = None) -> None:
        self.forgotten += [k for k in (uid, instance) if k]


class Writes:
    def __init__(self) -> None:
        self.seen_versions: list[tuple[str, bool]] = []

    def seen(self, obj: dict[str, Any], *, gone: bool = False) -> None:
        self.seen_versions.append((obj["metadata"]["resourceVersion"], gone))


class NodeENIs:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = list(objects)

    def list(self) -> list[dict[str, Any]]:
        return self.objects

    def by_index(self, index_name: str, value: str) -> builtins.list[dict[str, Any]]:
        assert index_name == ATTACHED_NODES_INDEX
        return [
            o
            for o in self.objects
            if any(a["nodeID"] == value for a in o.get("status", {}).get("attachments", []))
        ]


def _nodeeni(name: str, *, rv: str = "1", selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "generation": 1,
            "finalizers": [FINALIZER],
        },
        "spec": {"nodeSelector": selector or {}},
    }


def _node(name: str, *, labels: dict[str, str], instance: str = "i-1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels, "resourceVersion": "1"},
        "spec": {"providerID": f"aws:///us-east-1a/{instance}"},
    }


def _edited(obj: dict[str, Any], rv: str, **metadata: Any) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["metadata"].update(resourceVersion=rv, **metadata)
    return new


def _nodeeni_events() -> tuple[Queue, View, Writes, NodeENIEvents]:
    queue, view, writes = Queue(), View(), Writes()
    return queue, view, writes, NodeENIEvents(queue, view=view, writes=writes, eninodes=Queue())


def test_a_new_nodeeni_is_enqueued_and_described_afresh() -> None:
    queue, view, writes, events = _nodeeni_events()
    events.on_add(_nodeeni("a"))
    assert queue.added == ["a"]
    assert view.changed_uids == ["uid-a"]
    assert writes.seen_versions == [("1", False)]


def test_our_own_writes_enqueue_nothing_but_are_reported_to_the_writer() -> None:
    queue, view, writes, events = _nodeeni_events()
    old = _nodeeni("a")
    status = _edited(old, "2")
    status["status"] = {"attachedCount": 1}
    annotated = _edited(status, "3", annotations={"aws-multi-eni-controller/x": "y"})
    fresh = _edited(old, "4", finalizers=[])
    finalized = _edited(fresh, "5", finalizers=[FINALIZER])  # we add ours
    events.on_update(old, status)
    events.on_update(status, annotated)
    events.on_update(fresh, finalized)
    assert queue.added == []
    assert view.changed_uids == []
    assert writes.seen_versions == [("2", False), ("3", False), ("5", False)]


def test_a_spec_edit_a_deletion_and_our_finalizer_removed_are_enqueued() -> None:
    queue, view, _, events = _nodeeni_events()
    old = _nodeeni("a")
    events.on_update(old, _edited(old, "2", generation=2))
    # the API server bumps the generation as it sets the deletion timestamp
    deleted = _edited(old, "3", deletionTimestamp="2026-12-04T00:00:00Z", generation=2)
    events.on_update(old, deleted)
    events.on_update(old, _edited(old, "4", finalizers=["someone.else/finalizer"]))
    assert queue.added == ["a", "a", "a"]
    # asking for a deletion changes nothing in EC2: the view's answer stands
    assert view.changed_uids == ["uid-a"] * 2


def test_a_deleted_nodeeni_is_enqueued_and_its_wait_ends() -> None:
    queue, _, writes, events = _nodeeni_events()
    events.on_delete(_nodeeni("a", rv="9"))
    assert queue.added == ["a"]
    assert writes.seen_versions == [("9", True)]


def test_a_label_change_enqueues_nodeenis_matching_before_or_after_and_those_attached() -> None:
    blue = _nodeeni("blue", selector={"color": "blue"})
    red = _nodeeni("red", selector={"color": "red"})
    green = _nodeeni("green", selector={"color": "green"})
    holding = _nodeeni("holding", selector={"pool": "x"})
    holding["status"] = {"attachments": [{"nodeID": "n1"}]}
    queue, view = Queue(), View()
    events = NodeEvents(queue, NodeENIs(blue, red, green, holding), view=view)
    events.on_update(_node("n1", labels={"color": "blue"}), _node("n1", labels={"color": "red"}))
    assert queue.added == ["blue", "holding", "red"]
    assert sorted(view.changed_uids) == ["uid-blue", "uid-holding", "uid-red"]


def test_a_heartbeat_enqueues_nothing() -> None:
    queue, view = Queue(), View()
    events = NodeEvents(queue, NodeENIs(_nodeeni("all")), view=view)
    before = _node("n1", labels={"a": "b"})
    after = copy.deepcopy(before)
    after["status"] = {"conditions": [{"type": "Ready"}]}
    after["metadata"]["resourceVersion"] = "2"
    events.on_update(before, after)
    assert queue.added == []
    assert view.changed_uids == []


def test_a_node_that_goes_or_changes_instance_takes_its_instance_facts_with_it() -> None:
    queue, view = Queue(), View()
    events = NodeEvents(queue, NodeENIs(_nodeeni("all")), view=view)
    events.on_delete(_node("n1", labels={}, instance="i-1"))
    events.on_update(_node("n2", labels={}, instance="i-2"), _node("n2", labels={}, instance="i-3"))
    events.on_add(_node("n4", labels={}, instance="i-4"))
    assert view.forgotten == ["i-1", "i-2"]
    assert queue.added == ["all", "all", "all"]


# --- ENINodes ---------------------------------------------------------------------------


def _attachment(node: str, eni: str, *, status: str = "attached", **extra: Any) -> dict[str, Any]:
    return {
        "nodeID": node,
        "eniID": eni,
        "macAddress": f"02:00:00:00:00:{eni[-2:]}",
        "deviceIndex": 1,
        "status": status,
        **extra,
    }


def _holding(name: str, *attachments: dict[str, Any], rv: str = "1") -> dict[str, Any]:
    obj = _nodeeni(name, rv=rv)
    obj["status"] = {"attachments": list(attachments)}
    return obj


def _with_status(obj: dict[str, Any], rv: str, *attachments: dict[str, Any]) -> dict[str, Any]:
    new = _edited(obj, rv)
    new["status"] = {"attachments": list(attachments)}
    return new


def _eninode(
    node: str, *nodeenis: str, rv: str = "1", status: dict[str, Any] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": node, "resourceVersion": rv},
        "spec": {
            "interfaces": [
                {
                    "eniID": f"eni-{i:02d}",
                    "macAddress": "02:00:00:00:00:01",
                    "deviceIndex": 1,
                    "nodeENI": name,
                }
                for i, name in enumerate(nodeenis)
            ]
        },
    }
    if status:
        obj["status"] = status
    return obj


def _eninode_events() -> tuple[Queue, Queue, ENINodeEvents]:
    queue, specs = Queue(), Queue()
    return queue, specs, ENINodeEvents(queue, eninodes=specs)


def test_a_report_change_enqueues_the_nodeenis_its_spec_names_and_nothing_else() -> None:
    queue, specs, events = _eninode_events()
    old = _eninode("n1", "a", "b", "a")
    reported = copy.deepcopy(old)
    reported["metadata"]["resourceVersion"] = "2"
    reported["status"] = {"interfaces": [{"eniID": "eni-00", "interfaceName": "ens6"}]}
    events.on_update(old, reported)
    assert queue.added == ["a", "b"]
    assert specs.added == []


def test_a_spec_change_by_us_enqueues_nothing() -> None:
    queue, specs, events = _eninode_events()
    status = {"interfaces": [{"eniID": "eni-00", "interfaceName": "ens6"}]}
    old = _eninode("n1", "a", status=status)
    new = _eninode("n1", "a", "b", rv="2", status=status)  # the controller added b's ENI
    events.on_update(old, new)
    assert queue.added == []
    assert specs.added == []


def test_a_listed_eninode_enqueues_only_when_it_carries_a_report() -> None:
    queue, _, events = _eninode_events()
    events.on_add(_eninode("n1", "a"))  # just created by us: nothing reported yet
    events.on_add(_eninode("n2", "b", status={"interfaces": [{"eniID": "eni-00"}]}))
    assert queue.added == ["b"]


def test_a_deleted_eninode_has_its_node_synced_again() -> None:
    queue, specs, events = _eninode_events()
    events.on_delete(_eninode("n1", "a", status={"interfaces": [{"eniID": "eni-00"}]}))
    assert specs.added == ["n1"]
    assert queue.added == []


def test_an_attachment_change_marks_exactly_the_nodes_it_concerns() -> None:
    queue, view, writes = Queue(), View(), Writes()
    specs = Queue()
    events = NodeENIEvents(queue, view=view, writes=writes, eninodes=specs)
    old = _holding(
        "a", _attachment("n1", "eni-01"), _attachment("n2", "eni-02", status="attaching")
    )
    events.on_add(old)
    assert specs.added == ["n1", "n2"]
    # a little later, so that the status writes of a rollout coalesce per node
    assert specs.delays == [ENINODE_SYNC_DELAY_SECONDS] * 2
    specs.added.clear()
    attached = _with_status(
        old,
        "2",
        _attachment("n1", "eni-01"),
        _attachment("n2", "eni-02"),
        _attachment("n3", "eni-03", status="attaching"),
    )
    events.on_update(old, attached)
    assert specs.added == ["n2", "n3"]  # n1's share is as it was
    specs.added.clear()
    gone = _with_status(attached, "3", _attachment("n2", "eni-02"))
    events.on_update(attached, gone)
    assert specs.added == ["n1", "n3"]
    specs.added.clear()
    events.on_delete(gone)
    assert specs.added == ["n2"]


def test_folding_the_agents_facts_in_marks_no_node() -> None:
    queue, view, writes = Queue(), View(), Writes()
    specs = Queue()
    events = NodeENIEvents(queue, view=view, writes=writes, eninodes=specs)
    old = _holding("a", _attachment("n1", "eni-01"))
    folded = _with_status(
        old, "2", _attachment("n1", "eni-01", interfaceName="ens6", lastUpdated="later")
    )
    events.on_update(old, folded)
    assert specs.added == []
    assert queue.added == []


def test_a_spec_edit_or_a_deletion_marks_every_node_of_the_nodeeni() -> None:
    queue, view, writes = Queue(), View(), Writes()
    specs = Queue()
    events = NodeENIEvents(queue, view=view, writes=writes, eninodes=specs)
    old = _holding("a", _attachment("n1", "eni-01"), _attachment("n2", "eni-02"))
    events.on_update(old, _edited(old, "2", generation=2))  # e.g. the MTU
    events.on_update(old, _edited(old, "3", deletionTimestamp="2026-12-04T00:00:00Z"))
    assert specs.added == ["n1", "n2", "n1", "n2"]

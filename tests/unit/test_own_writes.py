"""Unit tests for eni_controller.kube.writes.OwnWrites and the NodeENI event filter
that uses it: plain dicts standing in for the API server's objects."""

from __future__ import annotations

import contextlib
from typing import Any

from eni_controller.controller import NodeENIEvents
from eni_controller.kube.workqueue import WorkQueue
from eni_controller.kube.writes import OwnWrites
from eni_controller.metrics import Metrics


def _obj(version: str, *, name: str = "a", **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version, **metadata}}


def _watching() -> tuple[WorkQueue[str], OwnWrites, NodeENIEvents]:
    """A work queue fed by the NodeENI event filter, and the writes it knows as ours."""
    queue: WorkQueue[str] = WorkQueue(name="t", metrics=Metrics())
    own = OwnWrites()
    return queue, own, NodeENIEvents(queue, own=own)


def test_newest_follows_our_writes_from_the_informers_copy() -> None:
    own = OwnWrites()
    own.wrote("a", over="1", result=_obj("2", finalizers=["f"]))
    own.wrote("a", over="2", result=_obj("3", finalizers=["f"], annotations={"k": "v"}))
    assert own.newest(_obj("1"))["metadata"]["resourceVersion"] == "3"
    assert own.newest(_obj("2"))["metadata"]["resourceVersion"] == "3"
    assert own.newest(_obj("1", name="b"))["metadata"]["resourceVersion"] == "1"


def test_the_chain_ends_once_the_informer_caught_up_or_someone_else_wrote() -> None:
    own = OwnWrites()
    own.wrote("a", over="1", result=_obj("2"))
    caught_up = _obj("2")
    assert own.newest(caught_up) is caught_up
    # forgotten: an old copy is no longer mapped forward
    assert own.newest(_obj("1"))["metadata"]["resourceVersion"] == "1"

    own.wrote("a", over="5", result=_obj("6"))
    theirs = _obj("7")
    assert own.newest(theirs) is theirs
    assert not own.is_own(_obj("6"))


def test_is_own_only_for_exactly_what_a_write_returned() -> None:
    own = OwnWrites()
    own.wrote("a", over="1", result=_obj("2"))
    assert own.is_own(_obj("2"))
    assert not own.is_own(_obj("1"))
    assert not own.is_own(_obj("2", name="b"))
    own.forget("a")
    assert not own.is_own(_obj("2"))


async def test_nodeeni_events_skip_our_own_write_and_keep_everyone_elses() -> None:
    queue, own, events = _watching()
    before = _obj("1")
    ours = _obj("2", finalizers=["f"])
    own.wrote("a", over="1", result=ours)
    events.on_update(before, ours)
    assert len(queue) == 0
    theirs = _obj("3", finalizers=["f"], annotations={"user": "x"})
    events.on_update(ours, theirs)
    assert len(queue) == 1
    await queue.shutdown(drain=False)


def test_a_write_the_server_found_nothing_in_adds_no_link_and_newest_returns() -> None:
    # a patch that changes nothing comes back with the version it was made over
    own = OwnWrites()
    own.wrote("a", over="1", result=_obj("2"))
    own.wrote("a", over="2", result=_obj("2"))
    assert own.newest(_obj("1"))["metadata"]["resourceVersion"] == "2"
    assert not own.is_own(_obj("1"))
    own.wrote("a", over="7", result=_obj("7"))
    assert own.newest(_obj("7"))["metadata"]["resourceVersion"] == "7"


async def test_an_event_that_overtakes_our_writes_response_is_held_then_judged() -> None:
    queue, own, events = _watching()
    before = _obj("1")
    ours = _obj("2", finalizers=["f"])
    with own.writing("a"):
        events.on_update(before, ours)  # the watch delivered our write first
        assert len(queue) == 0
        own.wrote("a", over="1", result=ours)
    assert len(queue) == 0  # judged after the response: our own

    theirs = _obj("4", finalizers=["f"], annotations={"user": "x"})
    with own.writing("a"):
        events.on_update(ours, theirs)
        assert len(queue) == 0
        own.wrote("a", over="2", result=_obj("3", finalizers=["f"]))
    assert len(queue) == 1  # someone else's: queued once the write returned
    assert await queue.get() == "a"
    await queue.shutdown(drain=False)


async def test_events_held_by_a_failed_write_are_queued() -> None:
    queue, own, events = _watching()
    with contextlib.suppress(RuntimeError), own.writing("a"):
        with own.writing("a"):  # two writes in flight: held until the last returns
            events.on_update(_obj("1"), _obj("2", annotations={"user": "x"}))
        assert len(queue) == 0
        raise RuntimeError("409")
    assert len(queue) == 1
    await queue.shutdown(drain=False)

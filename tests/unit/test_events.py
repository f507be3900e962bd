"""Unit tests for eni_controller.kube.events: repeats correlate on one Event, a
group's messages past AGGREGATE_AFTER aggregate on one, occurrences raised
while a write is in flight share the next write, and the recorder never raises.

A small fake of CoreV1Api's two Event calls counts the writes.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.kube.events import (
    AGGREGATE_AFTER,
    AGGREGATE_PREFIX,
    AGGREGATE_WINDOW,
    EVENT_MESSAGE_LIMIT,
    EventRecorder,
)
from tests.harness.clock import ManualClock

NODEENI = model.NodeENI(name="multus", uid="uid-1", resource_version="7", spec=None)
OTHER = model.NodeENI(name="other", uid="uid-2", resource_version="3", spec=None)


@dataclass
class FakeResponse:
    """What the recorder reads of an answer it does not parse."""

    status: int
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    async def read(self) -> bytes:
        return b"{}"

    def close(self) -> None:
        pass


class FakeEvents:
    """create/patch_namespaced_event in memory, each taking `latency` seconds and
    answering as the client does with `_preload_content=False`: an unparsed
    response, whatever its status."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.events: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.fail: BaseException | None = None  # while set: every write's answer or error
        self.lost: BaseException | None = None  # while set: raised after the write landed

    async def create_namespaced_event(
        self, namespace: str, body: Any, *, _preload_content: bool
    ) -> Any:
        assert _preload_content is False
        if (failed := await self._write()) is not None:
            return failed
        name = body["metadata"]["name"]
        if name in self.events:
            return FakeResponse(409, "Conflict")
        self.events[name] = {**body, "namespace": namespace}
        return self._answer(FakeResponse(201))

    async def patch_namespaced_event(
        self, name: str, namespace: str, body: Any, *, _content_type: str, _preload_content: bool
    ) -> Any:
        assert _content_type == "application/merge-patch+json"
        assert _preload_content is False
        if (failed := await self._write()) is not None:
            return failed
        if name not in self.events:
            return FakeResponse(404, "Not Found")
        self.events[name].update(body)
        return self._answer(FakeResponse(200))

    def _answer(self, response: FakeResponse) -> FakeResponse:
        if self.lost is not None:
            raise self.lost
        return response

    async def _write(self) -> FakeResponse | None:
        """A failed answer (an HTTP status is answered, any other failure raised)."""
        self.writes += 1
        await asyncio.sleep(self.latency)
        if isinstance(self.fail, ApiException):
            return FakeResponse(self.fail.status, str(self.fail.reason))
        if self.fail is not None:
            raise self.fail
        return None

    def counts(self) -> dict[str, int]:
        """message -> count, over every Event."""
        return {e["message"]: e["count"] for e in self.events.values()}


async def _record(
    recorder: EventRecorder,
    message: str,
    *,
    nodeeni: model.NodeENI = NODEENI,
    reason: str = "ENICreated",
) -> None:
    await recorder.record(nodeeni, type_="Normal", reason=reason, message=message)


async def test_repeats_are_one_event_whose_count_grows() -> None:
    api = FakeEvents()
    recorder = EventRecorder(api)
    for count in (1, 1, 3):
        await recorder.record(
            NODEENI, type_="Warning", reason="ENICreationFailed", message="denied", count=count
        )
    ((name, event),) = api.events.items()
    assert re.fullmatch(r"multus\.[0-9a-f]+", name)  # client-go's: the object, time in ns
    assert (event["count"], event["type"], event["reason"]) == (5, "Warning", "ENICreationFailed")
    assert event["involvedObject"]["uid"] == "uid-1"
    assert event["involvedObject"]["resourceVersion"] == "7"
    assert event["firstTimestamp"] <= event["lastTimestamp"]
    assert api.writes == 3  # a create, then two patches


async def test_an_expired_event_is_created_again_with_the_count_carried_on() -> None:
    api = FakeEvents()
    recorder = EventRecorder(api)
    await _record(recorder, "created eni-1")
    api.events.clear()  # the server's event TTL
    await _record(recorder, "created eni-1")
    ((first, event),) = api.events.items()
    assert event["count"] == 2
    await _record(recorder, "created eni-1")
    assert [(name, e["count"]) for name, e in api.events.items()] == [(first, 3)]


async def test_messages_past_the_first_distinct_ones_aggregate_on_one_event() -> None:
    api = FakeEvents()
    recorder = EventRecorder(api, aggregate_interval=0)
    for n in range(AGGREGATE_AFTER + 5):
        await _record(recorder, f"created eni-{n}")
    await _record(recorder, "created eni-0")  # one of the first: still its own Event
    await _record(recorder, "created eni-12")  # aggregated before: aggregated again
    await _record(recorder, "other", reason="ENIAttached")  # another group
    await _record(recorder, "created eni-13", nodeeni=OTHER)  # another object
    await recorder.flush()
    assert api.counts() == {
        "created eni-0": 2,
        **{f"created eni-{n}": 1 for n in range(1, AGGREGATE_AFTER)},
        f"{AGGREGATE_PREFIX}created eni-12": 6,
        "other": 1,
        "created eni-13": 1,
    }


async def test_a_quiet_group_starts_over_after_the_window(clock: ManualClock) -> None:
    api = FakeEvents()
    recorder = EventRecorder(api, aggregate_interval=0, clock=clock)
    for n in range(AGGREGATE_AFTER + 1):
        clock.advance(AGGREGATE_WINDOW / 2)  # each within the window of the one before
        await _record(recorder, f"created eni-{n}")
    clock.advance(AGGREGATE_WINDOW + 1)
    await _record(recorder, "created eni-late")
    await recorder.flush()
    counts = api.counts()
    assert counts[f"{AGGREGATE_PREFIX}created eni-{AGGREGATE_AFTER}"] == 1
    assert counts["created eni-late"] == 1


async def test_an_aggregate_message_is_cut_at_the_limit() -> None:
    api = FakeEvents()
    recorder = EventRecorder(api, aggregate_interval=0)
    for n in range(AGGREGATE_AFTER + 1):
        await _record(recorder, f"{n} " + "x" * (2 * EVENT_MESSAGE_LIMIT))
    assert all(len(e["message"]) == EVENT_MESSAGE_LIMIT for e in api.events.values())


async def test_occurrences_raised_during_a_write_share_the_next_one() -> None:
    api = FakeEvents(latency=0.01)
    recorder = EventRecorder(api)
    await asyncio.gather(*(_record(recorder, "attached eni-1") for _ in range(100)))
    await recorder.flush()
    assert api.counts() == {"attached eni-1": 100}
    assert api.writes == 2  # the first occurrence's create, then the 99 others' patch


async def test_an_aggregate_event_is_written_at_most_once_per_interval() -> None:
    api = FakeEvents()
    recorder = EventRecorder(api, aggregate_interval=0.05)
    for n in range(AGGREGATE_AFTER):
        await _record(recorder, f"created eni-{n}")
    writes = api.writes
    for n in range(AGGREGATE_AFTER, 200):
        await _record(recorder, f"created eni-{n}")
        await asyncio.sleep(0.001)  # spread out: each would have a write of its own
    await recorder.flush()
    assert api.counts()[f"{AGGREGATE_PREFIX}created eni-199"] == 200 - AGGREGATE_AFTER
    assert api.writes - writes <= 10  # ~0.2 s of occurrences, one write per 0.05 s


async def _rollout(recorder: EventRecorder, *, ec2_seconds: float) -> float:
    """1,000 ENIs' ENICreated and ENIAttached through 16 concurrent emitters; the
    seconds they took."""
    enis = iter(range(1000))

    async def emitter() -> None:
        for n in enis:
            await _record(recorder, f"created eni-{n:017x} for node n{n}")
            await asyncio.sleep(ec2_seconds)  # the attach
            await _record(
                recorder,
                f"attached eni-{n:017x} to node n{n} at device index 1",
                reason="ENIAttached",
            )
            await asyncio.sleep(ec2_seconds)

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(emitter() for _ in range(16)))
    took = loop.time() - started
    await recorder.flush()
    return took


def _assert_every_occurrence_counted(api: FakeEvents) -> None:
    for reason in ("ENICreated", "ENIAttached"):
        of_reason = [e for e in api.events.values() if e["reason"] == reason]
        assert sum(e["count"] for e in of_reason) == 1000
        assert len(of_reason) == AGGREGATE_AFTER + 1


async def test_a_rollouts_events_raised_at_once_cost_a_few_writes() -> None:
    api = FakeEvents(latency=0.002)
    recorder = EventRecorder(api, aggregate_interval=0)  # coalesced while in flight only
    await _rollout(recorder, ec2_seconds=0)
    _assert_every_occurrence_counted(api)
    print(f"rollout of 1,000 ENIs, events raised at once: {api.writes} event writes")
    assert api.writes <= 2 * AGGREGATE_AFTER + 20


async def test_a_paced_rollouts_aggregates_are_written_once_per_interval() -> None:
    api = FakeEvents(latency=0.002)
    interval = 0.02
    recorder = EventRecorder(api, aggregate_interval=interval)
    took = await _rollout(recorder, ec2_seconds=0.002)  # about one API write apart
    _assert_every_occurrence_counted(api)
    print(f"rollout of 1,000 ENIs over {took:.2f} s: {api.writes} event writes")
    # each reason: its first messages' Events, then its aggregate once per interval
    assert api.writes <= 2 * (AGGREGATE_AFTER + took / interval + 2)


@pytest.mark.parametrize(
    "failure",
    [ApiException(status=500), TimeoutError(), RuntimeError("a bug")],
    ids=["500", "timeout", "bug"],
)
async def test_a_failed_write_is_never_raised_and_its_count_is_carried_on(
    failure: BaseException,
) -> None:
    api = FakeEvents()
    recorder = EventRecorder(api)
    await _record(recorder, "created eni-1")
    api.fail = failure
    await _record(recorder, "created eni-1")  # logged, not raised
    api.fail = None
    await _record(recorder, "created eni-1")
    assert api.counts() == {"created eni-1": 3}


async def test_a_create_that_timed_out_but_landed_is_patched_not_made_again() -> None:
    api = FakeEvents()
    recorder = EventRecorder(api)
    api.lost = TimeoutError()
    await _record(recorder, "created eni-1")  # created; its answer lost
    api.lost = None
    await _record(recorder, "created eni-1")
    assert [e["count"] for e in api.events.values()] == [2]


async def test_the_caches_are_bounded() -> None:
    api = FakeEvents()
    recorder = EventRecorder(api, cache_size=1, aggregate_interval=0)
    for message in ("x", "y", "x"):
        await _record(recorder, message)
    # "x" was forgotten when "y" came: its repeat is a new Event, as for a restart
    assert sorted((e["message"], e["count"]) for e in api.events.values()) == [
        ("x", 1),
        ("x", 1),
        ("y", 1),
    ]
    # one group remembered: another object's messages never aggregate these
    for n in range(2 * AGGREGATE_AFTER):
        await _record(recorder, f"m{n}", nodeeni=NODEENI if n % 2 else OTHER)
    await recorder.flush()
    assert not any(e["message"].startswith(AGGREGATE_PREFIX) for e in api.events.values())


def test_a_cache_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        EventRecorder(FakeEvents(), cache_size=0)


async def test_record_soon_returns_before_the_write_and_flush_makes_it() -> None:
    api = FakeEvents(latency=0.01)
    recorder = EventRecorder(api)
    for _ in range(3):
        recorder.record_soon(NODEENI, type_="Normal", reason="ENIDeleted", message="deleted eni-1")
    assert api.writes == 0  # nothing awaited: the caller goes on at once
    await recorder.flush()
    assert api.counts() == {"deleted eni-1": 3}
    assert api.writes == 1  # the three occurrences share one write
    recorder.record_soon(NODEENI, type_="Normal", reason="ENIDeleted", message="deleted eni-1")
    await recorder.flush()
    assert api.counts() == {"deleted eni-1": 4}  # the same Event, patched
    assert len(api.events) == 1

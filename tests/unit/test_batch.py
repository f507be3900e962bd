"""Unit tests for aws/batch.py: concurrent lookups become one call, never a stale one."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from eni_controller.aws.batch import ANY_CALL, Batcher
from tests.harness.clock import ManualClock


class Source:
    """Answers key → (key, the number of the call that answered); calls can be held."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.hold: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def fetch(self, keys: Sequence[str]) -> Mapping[str, tuple[str, int]]:
        self.calls.append(list(keys))
        number = len(self.calls)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        return {k: (k, number) for k in keys if not k.startswith("missing")}


async def test_askers_of_the_same_moment_share_one_call_for_the_union() -> None:
    source = Source()
    batcher = Batcher(source.fetch, max_keys=200)
    results = await asyncio.gather(
        batcher.get(["a", "b"]), batcher.get(["b", "c"]), batcher.get(["missing-1"])
    )
    assert source.calls == [["a", "b", "c", "missing-1"]]
    assert list(results) == [{"a": ("a", 1), "b": ("b", 1)}, {"b": ("b", 1), "c": ("c", 1)}, {}]


async def test_an_asker_during_a_call_gets_the_next_call_never_the_running_one() -> None:
    source = Source()
    source.hold = asyncio.Event()
    batcher = Batcher(source.fetch, max_keys=200)
    first = asyncio.create_task(batcher.get(["a"]))
    await asyncio.sleep(0.01)  # the first call is running
    later = [asyncio.create_task(batcher.get([k])) for k in ("a", "b")]
    await asyncio.sleep(0.01)
    source.hold.set()
    assert await first == {"a": ("a", 1)}
    assert [await t for t in later] == [{"a": ("a", 2)}, {"b": ("b", 2)}]
    assert source.calls == [["a"], ["a", "b"]]  # both late askers in one call


async def test_keys_beyond_the_limit_go_in_further_calls_and_errors_reach_every_asker() -> None:
    source = Source()
    batcher = Batcher(source.fetch, max_keys=2)
    found = await batcher.get(["a", "b", "c"])
    assert source.calls == [["a", "b"], ["c"]]
    assert sorted(found) == ["a", "b", "c"]
    source.fail = RuntimeError("throttled")
    outcomes = await asyncio.gather(batcher.get(["x"]), batcher.get(["y"]), return_exceptions=True)
    assert [str(o) for o in outcomes] == ["throttled", "throttled"]
    source.fail = None
    assert source.calls[2] == ["x", "y"]  # one failed call for both
    assert await batcher.get(["x"]) == {"x": ("x", 4)}  # a failure is not remembered
    assert await batcher.get([]) == {}


async def test_a_cancelled_asker_leaves_the_others_their_answer() -> None:
    source = Source()
    source.hold = asyncio.Event()
    batcher = Batcher(source.fetch, max_keys=200)
    leaving = asyncio.create_task(batcher.get(["a"]))
    staying = asyncio.create_task(batcher.get(["b"]))
    await asyncio.sleep(0.01)
    leaving.cancel()
    source.hold.set()
    assert await staying == {"b": ("b", 1)}
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_an_asker_any_call_will_do_for_shares_the_one_in_flight_holding_its_keys() -> None:
    source = Source()
    source.hold = asyncio.Event()
    batcher = Batcher(source.fetch, max_keys=200)
    first = asyncio.create_task(batcher.get(["a", "b"]))
    await asyncio.sleep(0.01)  # the first call is running
    covered = asyncio.create_task(batcher.get(["b"], not_before=ANY_CALL))
    beyond = asyncio.create_task(batcher.get(["b", "c"], not_before=ANY_CALL))
    await asyncio.sleep(0.01)
    source.hold.set()
    assert await first == {"a": ("a", 1), "b": ("b", 1)}
    assert await covered == {"b": ("b", 1)}
    assert await beyond == {"b": ("b", 2), "c": ("c", 2)}
    assert source.calls == [["a", "b"], ["b", "c"]]


async def test_an_asker_shares_a_call_in_flight_only_if_it_started_no_earlier_than_it_says(
    clock: ManualClock,
) -> None:
    source = Source()
    source.hold = asyncio.Event()
    start = clock()
    batcher = Batcher(source.fetch, max_keys=200, clock=clock)
    first = asyncio.create_task(batcher.load(["a", "b"]))
    await asyncio.sleep(0.01)  # the first call started at `start`
    clock.advance(1.0)
    shared = asyncio.create_task(batcher.load(["a"], not_before=start))
    too_late = asyncio.create_task(batcher.load(["b"], not_before=start + 0.5))
    not_held = asyncio.create_task(batcher.load(["c"], not_before=start - 1.0))
    await asyncio.sleep(0.01)
    source.hold.set()
    assert await first == (start, {"a": ("a", 1), "b": ("b", 1)})
    assert await shared == (start, {"a": ("a", 1)})
    # the next call started when the first ended, a second later
    assert await too_late == (start + 1.0, {"b": ("b", 2)})
    assert await not_held == (start + 1.0, {"c": ("c", 2)})
    assert source.calls == [["a", "b"], ["b", "c"]]

"""Unit tests for the floor's waits under EC2 latency (bench/floor.py): one poller
for every waiting ENI, one describe per 200 of them per round; a wait ends when
the describe shows the state, holds no concurrency slot, and a failed describe
fails every wait (the floor retries nothing). A fake describe; no clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench import floor
from bench.floor import _attached, _available, _bounded, _Transitions
from tests.harness.waiting import until


class FakeEC2:
    """DescribeNetworkInterfaces over `states` (ENI id → attachment status)."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.batches: list[int] = []
        self.fail: Exception | None = None

    async def describe(self, *, Filters: list[dict[str, Any]]) -> dict[str, Any]:
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        (ids,) = [f["Values"] for f in Filters if f["Name"] == "network-interface-id"]
        self.batches.append(len(ids))
        return {
            "NetworkInterfaces": [
                {
                    "NetworkInterfaceId": i,
                    "Status": "available" if self.states[i] == "detached" else "in-use",
                    "Attachment": {"Status": self.states[i]},
                }
                for i in ids
            ]
        }


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(floor, "POLL_SECONDS", 0.0)


@contextlib.asynccontextmanager
async def polling(ec2: FakeEC2) -> AsyncIterator[_Transitions]:
    transitions = _Transitions(ec2.describe)
    task = asyncio.create_task(transitions.run())
    try:
        yield transitions
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def test_waits_end_as_the_describe_shows_the_state_and_are_polled_in_batches() -> None:
    ids = [f"eni-{i:03}" for i in range(450)]
    ec2 = FakeEC2(dict.fromkeys(ids, "attaching"))
    async with polling(ec2) as transitions:
        waits = {i: asyncio.create_task(transitions.until(i, _attached)) for i in ids}
        await until(lambda: transitions.polls >= 6, within=5, every=0.001)  # two rounds
        assert ec2.batches[:3] == [200, 200, 50]
        assert not any(w.done() for w in waits.values())
        for i in ids[:300]:
            ec2.states[i] = "attached"
        await until(lambda: all(waits[i].done() for i in ids[:300]), within=5, every=0.001)
        assert not any(waits[i].done() for i in ids[300:])
        for i in ids[300:]:
            ec2.states[i] = "attached"
        await asyncio.wait_for(asyncio.gather(*waits.values()), timeout=5)
        # the other wait, for the same ENI: free after its detach
        polled = transitions.polls
        detached = asyncio.create_task(transitions.until(ids[0], _available))
        await until(lambda: transitions.polls >= polled + 2, within=5, every=0.001)
        assert not detached.done()
        ec2.states[ids[0]] = "detached"
        await asyncio.wait_for(detached, timeout=5)


async def test_a_failed_describe_fails_every_wait_now_and_later() -> None:
    ec2 = FakeEC2({"eni-1": "attaching", "eni-2": "attaching"})
    ec2.fail = RuntimeError("no answer")
    transitions = _Transitions(ec2.describe)
    waits = [asyncio.create_task(transitions.until(e, _attached)) for e in ("eni-1", "eni-2")]
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="no answer"):
        await transitions.run()
    for wait in waits:
        with pytest.raises(RuntimeError, match="no answer"):
            await wait
    with pytest.raises(RuntimeError, match="no answer"):
        await transitions.until("eni-3", _attached)


async def test_a_wait_holds_no_slot() -> None:
    """Concurrency 1: the second item's calls run while the first waits for EC2."""
    calls: list[str] = []
    freed = asyncio.Event()

    async def first(gate: asyncio.Semaphore) -> None:
        async with gate:
            calls.append("first: detach")
        await freed.wait()  # EC2 frees the ENI: no slot held meanwhile
        async with gate:
            calls.append("first: delete")

    async def second(gate: asyncio.Semaphore) -> None:
        async with gate:
            calls.append("second: detach")
            freed.set()

    seconds, failures = await asyncio.wait_for(_bounded([first, second], concurrency=1), 5)
    assert failures == 0
    assert seconds >= 0
    assert calls == ["first: detach", "second: detach", "first: delete"]

"""The one hand-driven clock for unit tests: time moves only when a test says so.

Tests of timeouts, TTLs and backoff call it for the time and `advance` it, so
their outcome never depends on how fast the machine runs. Code that sleeps
through an injected `sleep` gets `ManualClock.sleep`, which moves this clock
instead of waiting.
"""

from __future__ import annotations

import asyncio

START = 1000.0  # a ManualClock's time until it is moved


class ManualClock:
    """A monotonic clock (call it for the time) that `advance` moves."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.slept: list[float] = []  # what each `sleep` was asked for, in order

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Stand-in for asyncio.sleep on this clock: note `seconds` in `slept`, let
        the other ready tasks run once (as a real sleep would, so they can queue up
        behind the sleeper), then move the clock by `seconds` without waiting."""
        self.slept.append(seconds)
        await asyncio.sleep(0)
        self.now += seconds

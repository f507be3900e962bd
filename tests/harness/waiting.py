"""Waiting for a condition in tests: the code under test has no hook to await."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], *, within: float, every: float = 0.2) -> None:
    """Poll `predicate` every `every` seconds; TimeoutError if not true within `within`."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (nothing to wait on but time)
            await asyncio.sleep(every)

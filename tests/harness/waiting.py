"""Waiting for a condition in tests: the code under test has no hook to await."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(predicate: Callable[[], object], *, within: float, every: float = 0.2) -> None:
    """Poll `predicate` every `every` seconds; TimeoutError if not true within `within`."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (nothing to wait on but time)
            await asyncio.sleep(every)


async def until_async(
    predicate: Callable[[], Awaitable[object]], *, within: float, every: float = 0.05
) -> None:
    """Like `until`, for a check that must await (an API read, a netlink dump)."""
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110 (nothing to wait on but time)
            await asyncio.sleep(every)

"""Tell an owner its ENIs left the cleanup pool, without a reconcile per ENI.

A reconcile per deleted ENI would cost more EC2 work than the deletions, so an
owner (a NodeENI) is told at most once per `interval` while more of its ENIs are
pending, and at once with its last one: its finalizer waits on that.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable


class OwnerNotices:
    def __init__(self, on_done: Callable[[str], None], *, interval: float) -> None:
        self._on_done = on_done
        self._interval = interval
        self.pending: Counter[str] = Counter()  # owner -> how many of its ENIs are pending
        self._later: dict[str, asyncio.TimerHandle] = {}

    def left(self, owner: str) -> None:
        """One of `owner`'s ENIs left the pool: tell it now if it was the last, else soon."""
        self.pending[owner] -= 1
        if self.pending[owner] <= 0:
            del self.pending[owner]
            if (later := self._later.get(owner)) is not None:
                later.cancel()
            self._tell(owner)
        elif owner not in self._later:
            self._later[owner] = asyncio.get_running_loop().call_later(
                self._interval, self._tell, owner
            )

    def _tell(self, owner: str) -> None:
        self._later.pop(owner, None)
        self._on_done(owner)

    def clear(self) -> None:
        """Forget every count and cancel every timer."""
        for later in self._later.values():
            later.cancel()
        self._later.clear()
        self.pending.clear()

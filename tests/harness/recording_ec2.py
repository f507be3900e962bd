"""A raw EC2 client (the aiobotocore surface EC2Client calls) that records every
request's parameters, for tests that compare what two code paths send.

It answers from `inner` (e.g. memory_ec2.MemoryEC2) when given, else with
an empty response to anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


class RecordingRaw:
    def __init__(self, inner: Any = None) -> None:
        self._inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def params_of(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call to `method` (snake_case, as botocore names it)."""
        return [params for name, params in self.calls if name == method]

    def __getattr__(self, method: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        if method.startswith("_"):
            raise AttributeError(method)
        answer = getattr(self._inner, method) if self._inner is not None else None

        async def call(**params: Any) -> dict[str, Any]:
            self.calls.append((method, params))
            if answer is None:
                return {}
            response: dict[str, Any] = await answer(**params)
            return response

        return call

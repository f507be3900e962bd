"""A raw EC2 client (the aiobotocore surface EC2Client calls) that records every
request's parameters, for tests that compare what two code paths send.

It answers from `inner` (e.g. memory_ec2.MemoryEC2) when given, else with
an empty response to anything. `filters` reads a describe's Filters back as
the mapping EC2Client was given, so a test can compare what was asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any


def filters(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """A describe request's Filters as a mapping: name -> values."""
    return {f["Name"]: list(f["Values"]) for f in params.get("Filters") or ()}


class RecordingRaw:
    def __init__(self, inner: Any = None) -> None:
        self._inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def params_of(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call to `method` (snake_case, as botocore names it)."""
        return [params for name, params in self.calls if name == method]

    def filters_of(self, method: str) -> list[dict[str, list[str]]]:
        """The Filters of every call to the describe `method`, as mappings."""
        return [filters(params) for params in self.params_of(method)]

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

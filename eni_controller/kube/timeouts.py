"""A time limit on every Kubernetes request the controller makes.

kubernetes_asyncio sends requests with no timeout unless the call passes
``_request_timeout``: one PATCH never answered would pin its NodeENI key for good.
So the limit is applied where every generated method passes, ``ApiClient.request``:

* a request without its own ``_request_timeout`` is bounded by ``seconds`` in
  total; one with its own keeps it (watches);
* running out of time raises ``KubeRequestTimeout`` (a ``TimeoutError``);
  cancellation, also by an enclosing ``asyncio.timeout``, passes through;
* the returned client shares the caller's connection pool and configuration;
  the original is not changed and is still the one to close.
"""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
from kubernetes_asyncio import client


class KubeRequestTimeout(TimeoutError):
    """No (complete) answer within the time limit; a write may still have landed."""


def with_request_timeout(api: client.ApiClient, *, seconds: float) -> client.ApiClient:
    """A client like `api` whose requests without their own timeout end after `seconds`;
    wrapping a wrapped client replaces the limit rather than stacking it."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    default = aiohttp.ClientTimeout(total=seconds)
    bounded = copy.copy(api)

    async def request(method: str, url: str, **kwargs: Any) -> Any:
        explicit = kwargs.get("_request_timeout") is not None
        if not explicit:
            kwargs["_request_timeout"] = default
        try:
            return await client.ApiClient.request(bounded, method, url, **kwargs)
        except TimeoutError as err:  # aiohttp's timeout classes all derive from it
            within = "" if explicit else f" within {seconds:g}s"
            raise KubeRequestTimeout(f"{method} {url} got no answer{within}") from err

    bounded.request = request  # type: ignore[method-assign, assignment]
    return bounded

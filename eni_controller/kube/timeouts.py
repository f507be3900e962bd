"""A time limit on every Kubernetes request the controller makes.

kubernetes_asyncio sends a request with no timeout unless the call passes
``_request_timeout``, and aiohttp's default is to wait forever. One PATCH the
API server (or a proxy, or a half-dead connection) never answers would then
pin its NodeENI key for good: the work queue never hands a key to two workers,
so the key is never reconciled again. Remembering ``_request_timeout`` at every
call site is how that bug comes back, so the limit is applied at the one place
every generated API method passes through: the ApiClient's REST client.

Invariants:

* ``with_request_timeout(api, seconds=…)`` returns a client whose every
  request without an explicit ``_request_timeout`` is bounded by ``seconds``
  in total (connect, send, headers and, for preloaded bodies, the body). A
  call that passes its own timeout keeps it: watches pass a read timeout a
  little above their server-side ``timeoutSeconds``, and no total.
* A request that runs out of time raises ``KubeRequestTimeout`` (a
  ``TimeoutError``), whatever aiohttp's own exception class for it was, so
  callers classify it by class: the reconcile workers retry its key with the
  queue's backoff, the informers back off and re-watch, the leader elector
  counts a failed attempt. Cancellation (``CancelledError``, including an
  enclosing ``asyncio.timeout``) passes through untouched.
* The returned client shares the caller's connection pool and configuration;
  the caller still owns and closes the original. The original is not changed.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client import rest

__all__ = ["KubeRequestTimeout", "with_request_timeout"]

# The REST client's per-verb entry points; ApiClient.request calls exactly these.
_VERBS: Final = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})


class KubeRequestTimeout(TimeoutError):
    """A Kubernetes API request got no (complete) answer within its time limit.

    The request may still have been applied by the server: a write that timed
    out is retried from a fresh read, never assumed lost.
    """

    def __init__(self, *, method: str, url: str, seconds: float | None) -> None:
        self.method = method
        self.url = url
        self.seconds = seconds
        within = "" if seconds is None else f" within {seconds:g}s"
        super().__init__(f"{method} {url} got no answer{within}")


class _BoundedRESTClient:
    """The REST client of an ApiClient, with a default timeout on every verb.

    Everything but the verbs is the wrapped client's own (``close``, the
    session, the proxy settings), so the wrapper is a drop-in for it.
    """

    def __init__(self, inner: Any, *, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds
        self._default = aiohttp.ClientTimeout(total=seconds)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in _VERBS:
            return attr
        return self._bounded(name, attr)

    def _bounded(
        self, verb: str, call: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(call)
        async def bounded(url: str, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
            explicit = _request_timeout is not None
            timeout = _request_timeout if explicit else self._default
            try:
                return await call(url, *args, _request_timeout=timeout, **kwargs)
            except TimeoutError as err:  # aiohttp's timeout classes all derive from it
                if isinstance(err, KubeRequestTimeout):
                    raise
                seconds = None if explicit else self._seconds
                raise KubeRequestTimeout(
                    method=verb, url=_without_query(url), seconds=seconds
                ) from err

        return bounded


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def with_request_timeout(api: client.ApiClient, *, seconds: float) -> client.ApiClient:
    """A client like `api` whose requests without their own timeout end after `seconds`.

    Shares `api`'s connection pool and configuration; `api` itself is left as
    it was and stays the one to close. Wrapping an already wrapped client
    replaces the limit rather than stacking it.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    inner = api.rest_client
    if isinstance(inner, _BoundedRESTClient):
        inner = inner._inner
    bounded = copy.copy(api)
    # a stand-in for the REST client: the same interface, by delegation
    bounded.rest_client = cast(rest.RESTClientObject, _BoundedRESTClient(inner, seconds=seconds))
    return bounded

"""A fault-injecting reverse proxy in front of the test API server.

Some failures of the Kubernetes API cannot be provoked on a healthy API
server: a request that is never answered, an answer that comes late, a 429 or
500, a watch connection that drops. The controller must survive all of them,
so the tests put this proxy between the controller and the API server and tell
it what to break, while the test itself keeps reading the API server directly.

Shape:

* ``KubeFaultProxy`` is an aiohttp server on 127.0.0.1 (a port the OS picks)
  that speaks plain HTTP to its clients and forwards every request, streamed
  both ways (watches included), to the API server named by a kubeconfig, over
  HTTPS with that kubeconfig's CA and client certificate if it has one. The
  client's own ``Authorization`` header (the bearer token) is passed through.
* ``proxy.api_client()`` gives a kubernetes_asyncio ``ApiClient`` with the
  kubeconfig's credentials that talks to the proxy: hand it to the code under
  test.
* A fault is a ``Fault`` subclass: which requests it applies to (method, a
  path substring, watch or not) and what it does with them. ``proxy.add(fault)``
  turns it on and ``proxy.remove(fault)`` off; faults are consulted in the
  order added and the first that matches handles the request. The kinds:

  - ``Hold``: no answer at all until ``release()``; then the requests (and any
    later ones) go on upstream as if the network had been slow.
    ``proxy.hold(method=..., path_contains=...)`` adds one.
  - ``Delay``: a seeded fraction of requests waits a seeded time, then goes on.
  - ``WatchCuts``: every watch is cut (its connection closed mid-stream, as a
    load balancer or a restarting API server does) after a seeded time; a
    seeded fraction of watches is answered instead with the ``ERROR`` event of
    code 410 the server sends for an expired resourceVersion (as after an etcd
    compaction), which the client must answer with a relist.
  - ``Flaky``: a seeded fraction of selected requests is answered 429 (with
    Retry-After) or 500 without reaching the server, or hangs past the
    client's timeout and then reaches the server late.

  Faults draw from a ``random.Random`` the test seeds, so a run replays its
  sequence of decisions (not the order requests arrive in).
* ``proxy.traffic`` counts what went through per resource the way Kubernetes
  names requests (list, watch, get, create, update, patch, delete) and every
  410 Gone answer, HTTP status or watch ``ERROR`` event: a test bounds relists
  by it.

Invariants: the proxy never changes a request or an answer it does not hold;
``stop()`` (or leaving ``running_kube_proxy``) ends every request still in the
proxy, held or streaming, so nothing outlives the test. Errors are told apart
by status code (and a watch event's ``code``), never by message text.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import copy
import json
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client, config
from yarl import URL

from tests.harness.procs import LOOPBACK

__all__ = [
    "Delay",
    "Fault",
    "Flaky",
    "Forward",
    "Hold",
    "KubeFaultProxy",
    "RequestInfo",
    "Traffic",
    "WatchCuts",
    "request_info",
    "running_kube_proxy",
]

Forward = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""Sends a request on to the API server and streams its answer back."""

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the HTTP layers set themselves.
_REQUEST_SKIP: Final = frozenset(
    {"host", "connection", "keep-alive", "proxy-connection", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length"}
)  # fmt: skip
_RESPONSE_SKIP: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade"}
)  # fmt: skip
_MAX_BODY: Final = 64 * 2**20  # aiohttp's default (1 MiB) is below a big list or patch
_BAD_GATEWAY: Final = 502
_UNAVAILABLE: Final = 503
# Set on a request by a fault: close the client's connection this many seconds
# into the answer (`WatchCuts`); the proxy sets _WAS_CUT when it did.
_CUT_AFTER: Final = web.RequestKey("kubeproxy.cut_after", float)
_WAS_CUT: Final = web.RequestKey("kubeproxy.was_cut", bool)
_WRITE_VERBS: Final = frozenset({"create", "update", "patch"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """A request named as the API server's RequestInfo names it.

    `verb`: list, watch, get, create, update, patch, delete (or the lower-case
    method for anything else); `resource` is the plural (``nodes``,
    ``nodeenis``, ``events``), empty for non-resource paths (``/readyz``).
    """

    verb: str
    resource: str
    name: str = ""
    subresource: str = ""
    namespace: str = ""
    first_page: bool = True  # a list without `continue`

    @property
    def is_write(self) -> bool:
        return self.verb in _WRITE_VERBS


def request_info(method: str, path: str, query: Any) -> RequestInfo:
    """Name a request (`query`: a mapping of its query parameters)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        rest = parts[3:]
    else:
        return RequestInfo(verb=method.lower(), resource="")
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    watch = str(query.get("watch", "")).lower() in ("true", "1")
    verb = {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }.get(method.upper(), method.lower())
    if method.upper() == "GET":
        verb = "watch" if watch else ("get" if name else "list")
    return RequestInfo(
        verb=verb,
        resource=resource,
        name=name,
        subresource=subresource,
        namespace=namespace,
        first_page=not query.get("continue"),
    )


def _info(request: web.Request) -> RequestInfo:
    return request_info(request.method, request.path, request.query)


@dataclass
class ResourceTraffic:
    """Requests of one resource seen by the proxy, and what they got.

    `lists` counts list requests that start a list (no `continue`): one per
    (re)list however many pages it takes; `gone` counts 410 answers, HTTP status
    or watch ``ERROR`` event; `cut` the watches the proxy cut mid-stream."""

    verbs: collections.Counter[str] = field(default_factory=collections.Counter)
    lists: int = 0
    gone: int = 0
    cut: int = 0

    @property
    def watches(self) -> int:
        return self.verbs["watch"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lists": self.lists,
            "watches": self.watches,
            "gone": self.gone,
            "cut": self.cut,
            "verbs": dict(sorted(self.verbs.items())),
        }


class Traffic:
    """`ResourceTraffic` by resource plural; missing ones read as all zero."""

    def __init__(self) -> None:
        self._by_resource: dict[str, ResourceTraffic] = {}

    def of(self, resource: str) -> ResourceTraffic:
        return self._by_resource.setdefault(resource, ResourceTraffic())

    def record(self, info: RequestInfo) -> None:
        counts = self.of(info.resource)
        counts.verbs[info.verb] += 1
        if info.verb == "list" and info.first_page:
            counts.lists += 1

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: t.as_dict() for name, t in sorted(self._by_resource.items())}


class _WatchScanner:
    """Finds ``ERROR`` events of code 410 in a watch body fed chunk by chunk.
    Only lines naming an ERROR type are decoded: a Node watch is megabytes."""

    def __init__(self) -> None:
        self._pending = b""
        self.gone = 0

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._line(line)

    def close(self) -> None:
        self._line(self._pending)
        self._pending = b""

    def _line(self, line: bytes) -> None:
        if b"ERROR" not in line:
            return
        try:
            event = json.loads(line)
        except ValueError:
            return
        obj = event.get("object") if isinstance(event, dict) else None
        if (
            event.get("type") == "ERROR"
            and isinstance(obj, dict)
            and obj.get("code") == HTTPStatus.GONE
        ):
            self.gone += 1


class Fault(abc.ABC):
    """One fault rule: the requests it applies to, and what it does with them.

    `method` None matches every method; `path_contains` is a substring of the
    request path (query excluded), e.g. ``/nodeenis/web/status``; `watch` True
    matches only watches, False only other requests, None both.
    """

    def __init__(
        self, *, method: str | None, path_contains: str, watch: bool | None = None
    ) -> None:
        self.method = None if method is None else method.upper()
        self.path_contains = path_contains
        self.watch = watch
        self.seen = 0  # matching requests so far
        self._seen_changed = asyncio.Condition()

    def matches(self, request: web.Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if self.watch is not None and (_info(request).verb == "watch") != self.watch:
            return False
        return self.path_contains in request.path

    async def handle(self, request: web.Request, forward: Forward) -> web.StreamResponse:
        """Count the request, then apply the fault (`apply`)."""
        async with self._seen_changed:
            self.seen += 1
            self._seen_changed.notify_all()
        return await self.apply(request, forward)

    @abc.abstractmethod
    async def apply(self, request: web.Request, forward: Forward) -> web.StreamResponse:
        """What happens to a matching request: forward it or not, early, late or changed."""

    async def wait_seen(self, count: int, *, within: float) -> None:
        """Until `count` matching requests have arrived; TimeoutError after `within` s."""
        async with asyncio.timeout(within), self._seen_changed:
            await self._seen_changed.wait_for(lambda: self.seen >= count)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.method or '*'} *{self.path_contains}*)"


class Hold(Fault):
    """Matching requests get no answer at all until `release()`, then go on upstream.

    The client sees a request that hangs: only its own timeout ends it. Held
    requests whose client gave up still reach the API server on release, as a
    late packet would; a write carrying a stale resourceVersion then gets 409
    there, which nobody reads.
    """

    def __init__(self, *, method: str | None, path_contains: str) -> None:
        super().__init__(method=method, path_contains=path_contains)
        self._released = asyncio.Event()
        self.held = 0  # requests waiting right now

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        """Let held and later matching requests through."""
        self._released.set()

    async def apply(self, request: web.Request, forward: Forward) -> web.StreamResponse:
        self.held += 1
        try:
            await self._released.wait()
        finally:
            self.held -= 1
        return await forward(request)


class Delay(Fault):
    """A `probability` of matching requests waits `uniform(*seconds)` (seeded by
    `rng`), then goes on upstream; the others go on at once."""

    def __init__(
        self,
        *,
        method: str | None,
        path_contains: str,
        watch: bool | None = None,
        rng: random.Random,
        probability: float,
        seconds: tuple[float, float],
    ) -> None:
        super().__init__(method=method, path_contains=path_contains, watch=watch)
        self._rng = rng
        self.probability = probability
        self.seconds = seconds
        self.delayed = 0

    async def apply(self, request: web.Request, forward: Forward) -> web.StreamResponse:
        if self._rng.random() < self.probability:
            self.delayed += 1
            await asyncio.sleep(self._rng.uniform(*self.seconds))
        return await forward(request)


class WatchCuts(Fault):
    """Watches whose path contains `path_contains` are cut `uniform(*after)`
    seconds in (seeded by `rng`): the proxy closes the client's connection in the
    middle of the stream. A watch the server ends sooner is not cut.

    With `expire_probability`, that fraction of watches is answered at once with
    the ``ERROR`` event (code 410, reason Expired) the API server sends for a
    resourceVersion etcd has compacted, without reaching the server: the client
    must relist. `cuts` and `expired` count what was done.
    """

    def __init__(
        self,
        *,
        path_contains: str,
        rng: random.Random,
        after: tuple[float, float],
        expire_probability: float = 0.0,
    ) -> None:
        super().__init__(method="GET", path_contains=path_contains, watch=True)
        self._rng = rng
        self.after = after
        self.expire_probability = expire_probability
        self.cuts = 0
        self.expired = 0

    async def apply(self, request: web.Request, forward: Forward) -> web.StreamResponse:
        if self._rng.random() < self.expire_probability:
            self.expired += 1
            return expired_watch_answer(request.query.get("resourceVersion", ""))
        request[_CUT_AFTER] = self._rng.uniform(*self.after)
        response = await forward(request)
        if request.get(_WAS_CUT):
            self.cuts += 1
        return response


def expired_watch_answer(resource_version: str) -> web.Response:
    """What the API server answers a watch from a compacted resourceVersion:
    200 and one ERROR event carrying a Status of code 410."""
    event = {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {resource_version}",
            "reason": "Expired",
            "code": HTTPStatus.GONE,
        },
    }
    return web.Response(
        status=200, body=json.dumps(event).encode() + b"\n", content_type="application/json"
    )


ANSWER_429: Final = "429"
ANSWER_500: Final = "500"
HANG: Final = "hang"
PASSED: Final = "passed"  # in Flaky.log: a selected write let through
FLAKY_OUTCOMES: Final = (ANSWER_429, ANSWER_500, HANG)

Selector = Callable[[web.Request, RequestInfo], Awaitable[bool]]


async def _every_request(_request: web.Request, _info: RequestInfo) -> bool:
    return True


class Flaky(Fault):
    """A `rate` of the write requests (create, update, patch) that `select`
    picks fails, each in one of `outcomes` drawn by `rng`:

    - ``ANSWER_429``: 429 Too Many Requests with ``Retry-After:
      <retry_after>``, as the API server's max-in-flight limit answers;
    - ``ANSWER_500``: 500 Internal Server Error (a Status body);
    - ``HANG``: no answer for `hang_seconds` (longer than the client's request
      timeout), then the request goes on upstream: a write the client gave up
      on may still land, as it can on a real network.

    The 429 and 500 never reach the API server. `select` may read the body
    (``await request.read()``; the proxy forwards it unchanged). `outcomes_seen`
    counts the failures by outcome, `passed` the selected writes let through;
    `log` has every selected write as (time.monotonic(), what it was, outcome
    or ``PASSED``), in arrival order.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        rate: float,
        outcomes: Sequence[str] = FLAKY_OUTCOMES,
        hang_seconds: float,
        retry_after: int = 1,
        select: Selector = _every_request,
    ) -> None:
        super().__init__(method=None, path_contains="/", watch=False)
        unknown = set(outcomes) - set(FLAKY_OUTCOMES)
        if unknown or not outcomes:
            raise ValueError(f"outcomes must be some of {FLAKY_OUTCOMES}, got {outcomes}")
        self._rng = rng
        self.rate = rate
        self.outcomes = tuple(outcomes)
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after
        self._select = select
        self.outcomes_seen: collections.Counter[str] = collections.Counter()
        self.passed = 0
        self.log: list[tuple[float, RequestInfo, str]] = []

    def matches(self, request: web.Request) -> bool:
        return _info(request).is_write

    async def apply(self, request: web.Request, forward: Forward) -> web.StreamResponse:
        info = _info(request)
        if not await self._select(request, info):
            return await forward(request)
        if self._rng.random() >= self.rate:
            self.passed += 1
            self.log.append((time.monotonic(), info, PASSED))
            return await forward(request)
        outcome = self._rng.choice(self.outcomes)
        self.outcomes_seen[outcome] += 1
        self.log.append((time.monotonic(), info, outcome))
        if outcome == ANSWER_429:
            return _status_answer(
                HTTPStatus.TOO_MANY_REQUESTS,
                "TooManyRequests",
                headers={"Retry-After": str(self.retry_after)},
            )
        if outcome == ANSWER_500:
            return _status_answer(HTTPStatus.INTERNAL_SERVER_ERROR, "InternalError")
        await asyncio.sleep(self.hang_seconds)
        return await forward(request)


def _status_answer(
    code: int, reason: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """An error answer shaped like the API server's: a Status object."""
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"injected by the test proxy: {reason}",
        "reason": reason,
        "code": code,
    }
    return web.Response(
        status=code,
        body=json.dumps(status).encode(),
        content_type="application/json",
        headers=headers,
    )


class KubeFaultProxy:
    """A reverse proxy to the API server of `kubeconfig` that applies faults.

    Use `running_kube_proxy` (starts and stops it), or `start()` / `stop()`.
    """

    def __init__(self, upstream: client.Configuration) -> None:
        self._upstream = upstream
        self._base = URL(str(upstream.host).rstrip("/"))
        self._faults: list[Fault] = []
        self._in_flight: set[asyncio.Task[object]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""  # http://127.0.0.1:<port> once started
        self.traffic = Traffic()

    @classmethod
    async def from_kubeconfig(cls, kubeconfig: Path) -> KubeFaultProxy:
        upstream = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=upstream)
        return cls(upstream)

    # -- faults ----------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with contextlib.suppress(ValueError):
            self._faults.remove(fault)

    def hold(self, *, method: str | None, path_contains: str) -> Hold:
        """Add a `Hold` for requests of `method` whose path contains `path_contains`."""
        hold = Hold(method=method, path_contains=path_contains)
        self.add(hold)
        return hold

    # -- clients ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def api_client(self) -> AsyncIterator[client.ApiClient]:
        """An ApiClient with the kubeconfig's credentials that goes through the proxy."""
        if not self.url:
            raise RuntimeError("the proxy is not running")
        configuration = copy.deepcopy(self._upstream)
        configuration.host = self.url
        api = client.ApiClient(configuration)
        try:
            yield api
        finally:
            await api.close()

    # -- life cycle ------------------------------------------------------------

    async def start(self) -> str:
        """Listen on 127.0.0.1 (a free port); returns the proxy's URL."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl_context(), limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,  # bytes pass through as the server encoded them
        )
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        """End every request still in the proxy, stop listening, close upstream."""
        for task in list(self._in_flight):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl_context(self) -> ssl.SSLContext:
        upstream = self._upstream
        context = ssl.create_default_context(cafile=upstream.ssl_ca_cert)
        if upstream.cert_file:
            context.load_cert_chain(upstream.cert_file, keyfile=upstream.key_file)
        if not upstream.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    # -- requests --------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        info = _info(request)
        self.traffic.record(info)
        try:
            fault = next((f for f in self._faults if f.matches(request)), None)
            if fault is None:
                response = await self._forward(request)
            else:
                response = await fault.handle(request, self._forward)
        finally:
            self._in_flight.discard(task)
        counts = self.traffic.of(info.resource)
        if response.status == HTTPStatus.GONE:
            counts.gone += 1
        elif info.verb == "watch" and isinstance(response, web.Response) and response.body:
            # an answer made here (a fault's), not streamed through _forward
            scanner = _WatchScanner()
            scanner.feed(bytes(response.body))  # type: ignore[arg-type]  # bytes made above
            scanner.close()
            counts.gone += scanner.gone
        if request.get(_WAS_CUT):
            counts.cut += 1
        return response

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            return web.Response(status=_UNAVAILABLE, text="proxy stopped")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _REQUEST_SKIP]
        body = await request.read()
        url = URL(f"{self._base}{request.rel_url}", encoded=True)
        try:
            upstream = await self._session.request(
                request.method,
                url,
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except aiohttp.ClientError as err:
            return web.Response(status=_BAD_GATEWAY, text=f"upstream: {err!r}")
        info = _info(request)
        scanner = _WatchScanner() if info.verb == "watch" else None
        cut = asyncio.timeout(request.get(_CUT_AFTER))  # None: never
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _RESPONSE_SKIP:
                    response.headers.add(key, value)
            try:
                await response.prepare(request)
                async with cut:
                    async for chunk in upstream.content.iter_any():
                        if scanner is not None:
                            scanner.feed(chunk)
                        await response.write(chunk)
                await response.write_eof()
            except TimeoutError:
                if not cut.expired():
                    raise
                # a fault's cut: drop the connection mid-answer, as a load balancer does
                request[_WAS_CUT] = True
                if request.transport is not None:
                    request.transport.close()
            except (ConnectionResetError, aiohttp.ClientError):
                # the client gave up (its timeout, a closed watch) or the server went away
                # mid-answer: nobody is left to tell
                if request.transport is not None:
                    request.transport.close()
        if scanner is not None:
            scanner.close()
            self.traffic.of(info.resource).gone += scanner.gone
        return response


@contextlib.asynccontextmanager
async def running_kube_proxy(kubeconfig: Path) -> AsyncIterator[KubeFaultProxy]:
    """A started `KubeFaultProxy` for the API server of `kubeconfig`, stopped on exit."""
    proxy = await KubeFaultProxy.from_kubeconfig(kubeconfig)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()

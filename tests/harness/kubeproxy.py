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
* A fault is a ``Fault`` subclass: which requests it applies to (method and
  a path substring) and what it does with them. ``proxy.add(fault)`` turns it
  on and ``proxy.remove(fault)`` off; faults are consulted in the order added
  and the first that matches handles the request. Only ``Hold`` exists today;
  delays, error answers and dropped watches are further subclasses of the same
  two methods.
* ``proxy.hold(method=..., path_contains=...)`` adds a ``Hold``: matching
  requests are never answered until ``release()``; then they (and any later
  ones) go on upstream as if the network had been slow.

Invariants: the proxy never changes a request or an answer it does not hold;
``stop()`` (or leaving ``running_kube_proxy``) ends every request still in the
proxy, held or streaming, so nothing outlives the test.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import copy
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client, config
from yarl import URL

from tests.harness.procs import LOOPBACK

__all__ = ["Fault", "Forward", "Hold", "KubeFaultProxy", "running_kube_proxy"]

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


class Fault(abc.ABC):
    """One fault rule: the requests it applies to, and what it does with them.

    `method` None matches every method; `path_contains` is a substring of the
    request path (query excluded), e.g. ``/nodeenis/web/status``.
    """

    def __init__(self, *, method: str | None, path_contains: str) -> None:
        self.method = None if method is None else method.upper()
        self.path_contains = path_contains
        self.seen = 0  # matching requests so far
        self._seen_changed = asyncio.Condition()

    def matches(self, request: web.Request) -> bool:
        if self.method is not None and request.method != self.method:
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
        try:
            fault = next((f for f in self._faults if f.matches(request)), None)
            if fault is None:
                return await self._forward(request)
            return await fault.handle(request, self._forward)
        finally:
            self._in_flight.discard(task)

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
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _RESPONSE_SKIP:
                    response.headers.add(key, value)
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                # the client gave up (its timeout, a closed watch) or the server went away
                # mid-answer: nobody is left to tell
                if request.transport is not None:
                    request.transport.close()
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

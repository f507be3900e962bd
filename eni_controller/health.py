"""HTTP endpoints for Kubernetes probes and Prometheus, served off the event loop.

A liveness probe answered by the event loop it judges cannot say the loop is
stuck: the request just hangs. So the endpoints are served by the stdlib's
ThreadingHTTPServer on daemon threads, and the loop's health is judged from a
heartbeat the loop writes (LoopHeartbeat) and the server threads only read;
WorkerActivity likewise names a worker stuck on one key while the loop is fine.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = structlog.get_logger(__name__)

Check = Callable[[], tuple[bool, str]]
"""A probe check: returns (healthy, reason). Called from a server thread."""

_Response = tuple[HTTPStatus, str, bytes]
_Route = Callable[[], _Response]

_TEXT = "text/plain; charset=utf-8"
_REQUEST_TIMEOUT = 10.0  # seconds a handler thread waits on a slow client socket
_POLL_INTERVAL = 0.1  # serve_forever's shutdown poll; bounds how long stop() waits


class LoopHeartbeat:
    """Proof of life from an asyncio event loop, readable from any thread: `lag()`
    grows while a coroutine blocks the loop `run()` ticks on. Construction counts as
    the first tick, so a probe asked before `run()` starts is not failed for it."""

    def __init__(self) -> None:
        self._last = time.monotonic()  # one float, written and read atomically

    def beat(self) -> None:
        self._last = time.monotonic()

    async def run(self, *, interval: float = 0.5) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        while True:
            self.beat()
            await asyncio.sleep(interval)

    def lag(self) -> float:
        """Seconds since the last tick."""
        return max(0.0, time.monotonic() - self._last)

    def alive(self, *, stale_after: float) -> bool:
        return self.lag() <= stale_after


@dataclass(frozen=True, slots=True)
class Busy:
    worker: int
    key: Hashable
    seconds: float

    def __str__(self) -> str:
        return f"worker {self.worker} stuck on {self.key} for {self.seconds:.1f}s"


class WorkerActivity:
    """Which key each worker is processing and since when: workers call `started`
    and `finished` on the loop, probe threads `busy` and `stuck`. `clock` is monotonic."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._since: dict[int, tuple[Hashable, float]] = {}

    def started(self, worker: int, key: Hashable) -> None:
        with self._lock:
            self._since[worker] = (key, self._clock())

    def finished(self, worker: int) -> None:
        with self._lock:
            self._since.pop(worker, None)

    def busy(self) -> list[Busy]:
        """Every busy worker, longest busy first."""
        now = self._clock()
        with self._lock:
            since = list(self._since.items())
        found = [Busy(worker, key, max(0.0, now - at)) for worker, (key, at) in since]
        return sorted(found, key=lambda b: (-b.seconds, b.worker))

    def stuck(self, *, longer_than: float) -> list[Busy]:
        return [b for b in self.busy() if b.seconds > longer_than]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], routes: dict[str, _Route]) -> None:
        self.routes = routes
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    timeout = _REQUEST_TIMEOUT
    server_version = "eni-controller"
    sys_version = ""

    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        route = self.server.routes.get(self.path.split("?", 1)[0])
        status, content_type, body = (
            (HTTPStatus.NOT_FOUND, _TEXT, b"not found\n") if route is None else route()
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # a line per probe on stderr would drown the JSON logs


def _probe_route(name: str, check: Check) -> _Route:
    def route() -> _Response:
        try:
            ok, reason = check()
        except Exception as exc:  # a broken check is a failed probe, not a 500
            log.warning("probe check raised", probe=name, error=repr(exc))
            return HTTPStatus.SERVICE_UNAVAILABLE, _TEXT, type(exc).__name__.encode()
        if ok:
            return HTTPStatus.OK, _TEXT, b"ok"
        return HTTPStatus.SERVICE_UNAVAILABLE, _TEXT, (reason or name + " failed").encode()

    return route


class HealthServer:
    """`/metrics` on the metrics port, `/healthz` and `/readyz` on the probe port
    (equal non-zero ports share one listener, as in controller-runtime). A port of
    0 binds a free port; `metrics_port` and `probe_port` are the bound ports once
    started. The checks must only read thread-safe state, never asyncio objects."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        liveness: Check,
        readiness: Check,
        host: str = "0.0.0.0",
        metrics_port: int = 8080,
        probe_port: int = 8081,
    ) -> None:
        self._registry = registry
        self._host = host
        self.metrics_port = metrics_port
        self.probe_port = probe_port
        self._probe_routes: dict[str, _Route] = {
            "/healthz": _probe_route("liveness", liveness),
            "/readyz": _probe_route("readiness", readiness),
        }
        self._servers: list[_Server] = []

    def _metrics(self) -> _Response:
        return HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    def start(self) -> None:
        """Bind the listeners and serve them on daemon threads. Raises OSError if a
        port is taken (nothing is left listening in that case)."""
        if self._servers:
            raise RuntimeError("HealthServer already started")
        metrics: dict[str, _Route] = {"/metrics": self._metrics}
        if self.metrics_port == self.probe_port != 0:
            plan = [(self.metrics_port, {**metrics, **self._probe_routes})]
        else:
            plan = [(self.metrics_port, metrics), (self.probe_port, self._probe_routes)]
        servers: list[_Server] = []
        try:
            for port, routes in plan:
                servers.append(_Server((self._host, port), routes))
        except BaseException:
            for s in servers:
                s.server_close()
            raise
        self.metrics_port = servers[0].server_address[1]
        self.probe_port = servers[-1].server_address[1]
        for s in servers:
            threading.Thread(
                target=s.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"health-http-{s.server_address[1]}",
                daemon=True,
            ).start()
        self._servers = servers
        log.info(
            "health endpoints listening",
            host=self._host,
            metrics_port=self.metrics_port,
            probe_port=self.probe_port,
        )

    def stop(self) -> None:
        """Stop serving and close the sockets; idempotent."""
        servers, self._servers = self._servers, []
        for s in servers:
            s.shutdown()
            s.server_close()

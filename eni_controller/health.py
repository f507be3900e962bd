"""HTTP endpoints for Kubernetes probes and Prometheus, served off the event loop.

The controller does all of its work on one asyncio event loop. A liveness probe
answered by that same loop cannot say the loop is stuck: when a coroutine blocks
it, the probe request simply hangs, and the kubelet sees a timeout rather than a
reason. So the endpoints here are served by the stdlib's ThreadingHTTPServer on
daemon threads, and the loop's health is judged from a heartbeat the loop writes
(LoopHeartbeat) and the server threads only read. The probes must not depend on
the loop they judge.

The loop can also be healthy while the work is not: a reconcile worker stuck
on one key (a cancellation swallowed, an await that ignores its deadline)
starves that NodeENI and a worker's share of the queue. WorkerActivity records
which key each worker is on since when, written by the workers and read by the
probe threads, so liveness can name the worker, the key and the time.

Like controller-runtime, metrics and probes listen on two ports (8080 and 8081
by default); when both ports are the same, one listener serves every path.
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

__all__ = ["Busy", "Check", "HealthServer", "LoopHeartbeat", "WorkerActivity"]

log = structlog.get_logger(__name__)

Check = Callable[[], tuple[bool, str]]
"""A probe check: returns (healthy, reason). Called from a server thread."""

_Response = tuple[HTTPStatus, str, bytes]
_Route = Callable[[], _Response]

_TEXT = "text/plain; charset=utf-8"
_REQUEST_TIMEOUT = 10.0  # seconds a handler thread waits on a slow client socket
_POLL_INTERVAL = 0.1  # serve_forever's shutdown poll; bounds how long stop() waits


class LoopHeartbeat:
    """Proof of life from an asyncio event loop, readable from any thread.

    `run()` is a task on the loop being watched; it records `time.monotonic()` on
    every tick. When a coroutine blocks the loop, the ticks stop and `lag()`
    grows, which a probe on another thread can see. Construction counts as the
    first tick, so a probe asked before `run()` starts is not failed for it; if
    the loop never ticks, the heartbeat goes stale like any other.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def beat(self) -> None:
        """Record a tick now. `run()` calls this; exposed for tests and manual use."""
        now = time.monotonic()
        with self._lock:
            self._last = now

    async def run(self, *, interval: float = 0.5) -> None:
        """Tick every `interval` seconds until cancelled."""
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        while True:
            self.beat()
            await asyncio.sleep(interval)

    def lag(self) -> float:
        """Seconds since the last tick."""
        with self._lock:
            last = self._last
        return max(0.0, time.monotonic() - last)

    def alive(self, *, stale_after: float) -> bool:
        """True when the last tick is at most `stale_after` seconds old."""
        return self.lag() <= stale_after


@dataclass(frozen=True, slots=True)
class Busy:
    """One worker busy on one key for `seconds` so far."""

    worker: int
    key: Hashable
    seconds: float

    def __str__(self) -> str:
        return f"worker {self.worker} stuck on {self.key} for {self.seconds:.1f}s"


class WorkerActivity:
    """Which key each worker is processing and since when, readable from any thread.

    The workers call `started` and `finished` on the event loop; probe threads
    call `busy` and `stuck`. All state is behind one lock and read as a copy, so
    a probe never sees a half-written entry. `clock` must be monotonic (tests
    pass a fake one).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._since: dict[int, tuple[Hashable, float]] = {}

    def started(self, worker: int, key: Hashable) -> None:
        now = self._clock()
        with self._lock:
            self._since[worker] = (key, now)

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
        """The workers busy on their key for more than `longer_than` seconds."""
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
        path = self.path.split("?", 1)[0]
        route = self.server.routes.get(path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, _TEXT, b"not found\n")
            return
        status, content_type, body = route()
        self._send(status, content_type, body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Probes arrive every few seconds; the stdlib's per-request line on
        # stderr would drown the JSON logs.
        return


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
    """`/metrics` on the metrics port, `/healthz` and `/readyz` on the probe port.

    Each listener is a ThreadingHTTPServer on its own daemon thread, so requests
    are answered even while the controller's event loop is blocked.

    Thread safety: `liveness` and `readiness` are called from server threads,
    concurrently with the event loop and with each other. They must only read
    state that is safe to read from another thread (a LoopHeartbeat, a plain
    bool or float set by the loop, a threading.Event) and must never touch
    asyncio objects or await anything. The registry is read with
    `generate_latest`, which prometheus_client makes thread-safe.

    A port of 0 binds a free port; the `metrics_port` / `probe_port` properties
    give the bound ports once started. Equal non-zero ports share one listener
    that serves all three paths; 0 for both still gives two listeners, each on
    a free port of its own.
    """

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
        self._metrics_port = metrics_port
        self._probe_port = probe_port
        self._metrics_routes: dict[str, _Route] = {"/metrics": self._metrics}
        self._probe_routes: dict[str, _Route] = {
            "/healthz": _probe_route("liveness", liveness),
            "/readyz": _probe_route("readiness", readiness),
        }
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def metrics_port(self) -> int:
        """The bound metrics port once started, else the configured one."""
        return self._metrics_port

    @property
    def probe_port(self) -> int:
        """The bound probe port once started, else the configured one."""
        return self._probe_port

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def _metrics(self) -> _Response:
        return HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    def start(self) -> None:
        """Bind the listeners and serve them on daemon threads. Raises OSError if a
        port is taken (nothing is left listening in that case)."""
        with self._lock:
            if self._servers:
                raise RuntimeError("HealthServer already started")
            servers: list[_Server] = []
            try:
                if self._metrics_port == self._probe_port != 0:
                    server = _Server(
                        (self._host, self._metrics_port),
                        {**self._metrics_routes, **self._probe_routes},
                    )
                    servers.append(server)
                    metrics_server = probe_server = server
                else:
                    metrics_server = _Server((self._host, self._metrics_port), self._metrics_routes)
                    servers.append(metrics_server)
                    probe_server = _Server((self._host, self._probe_port), self._probe_routes)
                    servers.append(probe_server)
            except BaseException:
                for s in servers:
                    s.server_close()
                raise
            self._metrics_port = metrics_server.server_address[1]
            self._probe_port = probe_server.server_address[1]
            for s in servers:
                thread = threading.Thread(
                    target=s.serve_forever,
                    kwargs={"poll_interval": _POLL_INTERVAL},
                    name=f"health-http-{s.server_address[1]}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
            self._servers = servers
        log.info(
            "health endpoints listening",
            host=self._host,
            metrics_port=self._metrics_port,
            probe_port=self._probe_port,
        )

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop serving, close the sockets and join the threads. Idempotent; a no-op
        when never started."""
        with self._lock:
            servers, self._servers = self._servers, []
            threads, self._threads = self._threads, []
            for s in servers:
                s.shutdown()
                s.server_close()
            for t in threads:
                t.join(timeout)

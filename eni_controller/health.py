"""The controller's HTTP endpoints: /metrics, /healthz, /readyz.

They are served from a thread of their own with the standard library's HTTP
server, not from the controller's event loop: a probe must still answer when
the loop it judges is blocked, and say so. The loop proves it is alive by
ticking a heartbeat; the liveness probe reads the tick's age.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

Check = Callable[[], tuple[bool, str]]


class LoopHeartbeat:
    """Ticks on the controller's loop; read from the probe thread."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    async def run(self, *, interval: float = 0.5) -> None:
        while True:
            self._last = time.monotonic()  # a float store: atomic for the reader thread
            await asyncio.sleep(interval)

    def lag(self) -> float:
        return time.monotonic() - self._last

    def alive(self, *, stale_after: float) -> bool:
        return self.lag() < stale_after


class HealthServer:
    """Metrics on one port, probes on another (as controller-runtime does).

    `liveness` and `readiness` are called from the server's threads: they must
    only read state that is safe to read across threads.
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
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
        }
        probes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/healthz": lambda: _probe(liveness),
            "/readyz": lambda: _probe(readiness),
        }
        if metrics_port == probe_port and metrics_port != 0:
            self._servers = [_server(host, metrics_port, routes | probes)]
        else:
            self._servers = [_server(host, metrics_port, routes), _server(host, probe_port, probes)]
        self._threads: list[threading.Thread] = []

    @property
    def metrics_port(self) -> int:
        return int(self._servers[0].server_address[1])

    @property
    def probe_port(self) -> int:
        return int(self._servers[-1].server_address[1])

    def start(self) -> None:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, name="health", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)


def _probe(check: Check) -> tuple[int, str, bytes]:
    try:
        ok, reason = check()
    except Exception as err:
        ok, reason = False, type(err).__name__
    return (200, "text/plain", b"ok") if ok else (503, "text/plain", reason.encode())


def _server(
    host: str, port: int, routes: dict[str, Callable[[], tuple[int, str, bytes]]]
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            status, content_type, body = route() if route else (404, "text/plain", b"not found")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the controller's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server

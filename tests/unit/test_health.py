"""The HTTP endpoints, on real sockets (127.0.0.1, port 0): metrics and probes on
their own ports, and probes that answer, with a reason, while the event loop they
judge is blocked."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from eni_controller.health import Check, HealthServer, LoopHeartbeat

WAIT = 5.0  # bound on anything that should complete; a failure never hangs

pytestmark = pytest.mark.timeout(30)


def _get(port: int, path: str, *, timeout: float = WAIT) -> tuple[int, str]:
    status, body, _ = _get_full(port, path, timeout=timeout)
    return status, body


def _get_full(port: int, path: str, *, timeout: float = WAIT) -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers["Content-Type"]


def _wait_for(predicate: Callable[[], bool], *, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Flags:
    """Probe state set by the test thread, read by the server threads."""

    def __init__(self) -> None:
        self.live: tuple[bool, str] = (True, "")
        self.ready: tuple[bool, str] = (False, "informers not synced")
        self.raise_live = False
        self.raise_ready = False

    def liveness(self) -> tuple[bool, str]:
        if self.raise_live:
            raise RuntimeError("boom")
        return self.live

    def readiness(self) -> tuple[bool, str]:
        if self.raise_ready:
            raise KeyError("missing")
        return self.ready


def _health(
    flags: Flags | None = None,
    *,
    registry: CollectorRegistry | None = None,
    metrics_port: int = 0,
    probe_port: int = 0,
    liveness: Check | None = None,
) -> HealthServer:
    f = flags if flags is not None else Flags()
    return HealthServer(
        registry=registry if registry is not None else CollectorRegistry(),
        liveness=liveness if liveness is not None else f.liveness,
        readiness=f.readiness,
        host="127.0.0.1",
        metrics_port=metrics_port,
        probe_port=probe_port,
    )


@pytest.fixture
def flags() -> Flags:
    return Flags()


@pytest.fixture
def server(flags: Flags) -> Iterator[HealthServer]:
    registry = CollectorRegistry()
    Counter("demo_requests", "a counter", registry=registry).inc(3)
    health = _health(flags, registry=registry)
    health.start()
    try:
        yield health
    finally:
        health.stop()


# --- /metrics -------------------------------------------------------------------------


def test_metrics_exposes_the_registry(server: HealthServer) -> None:
    status, body, content_type = _get_full(server.metrics_port, "/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    assert "# TYPE demo_requests_total counter" in body
    assert "demo_requests_total 3.0" in body


def test_metrics_are_read_at_each_scrape() -> None:
    registry = CollectorRegistry()
    counter = Counter("scrapes", "a counter", registry=registry)
    health = _health(registry=registry)
    health.start()
    try:
        assert "scrapes_total 0.0" in _get(health.metrics_port, "/metrics")[1]
        counter.inc(5)
        assert "scrapes_total 5.0" in _get(health.metrics_port, "/metrics")[1]
    finally:
        health.stop()


# --- /healthz and /readyz -------------------------------------------------------------


def test_healthz_follows_liveness(server: HealthServer, flags: Flags) -> None:
    assert _get(server.probe_port, "/healthz") == (200, "ok")
    flags.live = (False, "an informer stopped")
    assert _get(server.probe_port, "/healthz") == (503, "an informer stopped")
    flags.live = (True, "")
    assert _get(server.probe_port, "/healthz") == (200, "ok")


def test_readyz_follows_readiness(server: HealthServer, flags: Flags) -> None:
    assert _get(server.probe_port, "/readyz") == (503, "informers not synced")
    flags.ready = (True, "")
    assert _get(server.probe_port, "/readyz") == (200, "ok")
    # the two probes are independent
    flags.live = (False, "stalled")
    assert _get(server.probe_port, "/readyz") == (200, "ok")
    assert _get(server.probe_port, "/healthz") == (503, "stalled")


def test_a_check_that_raises_is_a_503_with_its_type(server: HealthServer, flags: Flags) -> None:
    flags.raise_live = True
    flags.raise_ready = True
    assert _get(server.probe_port, "/healthz") == (503, "RuntimeError")
    assert _get(server.probe_port, "/readyz") == (503, "KeyError")
    # and the server thread survived it
    flags.raise_live = False
    assert _get(server.probe_port, "/healthz") == (200, "ok")


def test_query_strings_are_ignored(server: HealthServer) -> None:
    assert _get(server.probe_port, "/healthz?verbose") == (200, "ok")


def test_unknown_paths_are_404(server: HealthServer) -> None:
    assert _get(server.probe_port, "/")[0] == 404
    assert _get(server.probe_port, "/livez")[0] == 404
    assert _get(server.metrics_port, "/metrics/extra")[0] == 404


def test_separate_ports_each_serve_only_their_paths(server: HealthServer) -> None:
    assert server.metrics_port != server.probe_port
    assert server.metrics_port > 0
    assert server.probe_port > 0
    assert _get(server.metrics_port, "/metrics")[0] == 200
    assert _get(server.metrics_port, "/healthz")[0] == 404
    assert _get(server.metrics_port, "/readyz")[0] == 404
    assert _get(server.probe_port, "/healthz")[0] == 200
    assert _get(server.probe_port, "/readyz")[0] == 503
    assert _get(server.probe_port, "/metrics")[0] == 404


def test_one_port_serves_everything(flags: Flags) -> None:
    port = _free_port()
    registry = CollectorRegistry()
    Counter("together", "a counter", registry=registry).inc()
    health = _health(flags, registry=registry, metrics_port=port, probe_port=port)
    health.start()
    try:
        assert health.metrics_port == health.probe_port == port
        assert _get(port, "/healthz") == (200, "ok")
        assert _get(port, "/readyz") == (503, "informers not synced")
        status, body = _get(port, "/metrics")
        assert status == 200
        assert "together_total 1.0" in body
        assert _get(port, "/nope")[0] == 404
    finally:
        health.stop()


def test_requests_are_not_logged_to_stderr(
    server: HealthServer, capfd: pytest.CaptureFixture[str]
) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/nope"):
        _get(server.probe_port, path)
        _get(server.metrics_port, path)
    assert capfd.readouterr().err == ""


# --- lifecycle ------------------------------------------------------------------------


def test_stop_frees_the_ports() -> None:
    health = _health()
    health.start()
    metrics_port, probe_port = health.metrics_port, health.probe_port
    assert _get(probe_port, "/healthz") == (200, "ok")
    health.stop()
    assert _refused(metrics_port)
    assert _refused(probe_port)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{probe_port}/healthz", timeout=1)
    # the same ports can be bound again at once
    again = _health(metrics_port=metrics_port, probe_port=probe_port)
    again.start()
    try:
        assert _get(probe_port, "/healthz") == (200, "ok")
        assert _get(metrics_port, "/metrics")[0] == 200
    finally:
        again.stop()


def test_stop_joins_the_server_threads() -> None:
    before = set(threading.enumerate())
    health = _health()
    health.start()
    assert len(set(threading.enumerate()) - before) >= 2
    _get(health.probe_port, "/healthz")
    started = time.monotonic()
    health.stop()
    assert time.monotonic() - started < WAIT
    assert _wait_for(lambda: not (set(threading.enumerate()) - before), timeout=WAIT)


def test_stop_is_idempotent_and_start_twice_refused() -> None:
    health = _health()
    health.stop()  # never started: nothing to do
    health.start()
    try:
        assert _get(health.probe_port, "/healthz")[0] == 200
        with pytest.raises(RuntimeError):
            health.start()
    finally:
        health.stop()
    assert _refused(health.probe_port)
    health.stop()


def test_a_taken_port_fails_start_and_leaves_nothing_listening() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        metrics_port = _free_port()
        health = _health(metrics_port=metrics_port, probe_port=port)
        with pytest.raises(OSError, match="in use"):
            health.start()
        assert _refused(metrics_port)


# --- LoopHeartbeat --------------------------------------------------------------------


async def test_heartbeat_is_alive_while_the_loop_ticks() -> None:
    heartbeat = LoopHeartbeat()
    task = asyncio.create_task(heartbeat.run(interval=0.01))
    try:
        await asyncio.sleep(0.2)
        assert heartbeat.alive(stale_after=0.1)
        assert 0.0 <= heartbeat.lag() < 0.1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_heartbeat_goes_stale_without_ticks() -> None:
    heartbeat = LoopHeartbeat()
    heartbeat.beat()
    assert heartbeat.alive(stale_after=1.0)
    time.sleep(0.15)
    assert heartbeat.lag() >= 0.15
    assert not heartbeat.alive(stale_after=0.1)
    heartbeat.beat()
    assert heartbeat.alive(stale_after=0.1)


async def test_heartbeat_rejects_a_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        await LoopHeartbeat().run(interval=0)


def test_liveness_fails_while_the_loop_is_blocked_and_recovers() -> None:
    heartbeat = LoopHeartbeat()
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, name="watched-loop", daemon=True)
    loop_thread.start()
    blocked = threading.Event()

    async def block() -> None:
        blocked.set()
        time.sleep(1.0)  # noqa: ASYNC251 - the bug liveness must catch: a blocked loop

    liveness: Check = lambda: (  # noqa: E731
        heartbeat.alive(stale_after=0.3),
        f"event loop stalled {heartbeat.lag():.1f}s",
    )

    async def start_beat() -> asyncio.Task[None]:
        return asyncio.create_task(heartbeat.run(interval=0.05))

    async def stop_beat(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    health = _health(liveness=liveness)
    health.start()
    beat = asyncio.run_coroutine_threadsafe(start_beat(), loop).result(timeout=WAIT)
    try:
        assert _wait_for(lambda: _get(health.probe_port, "/healthz") == (200, "ok"))

        blocking = asyncio.run_coroutine_threadsafe(block(), loop)
        assert blocked.wait(timeout=WAIT)
        answers: list[tuple[int, str]] = []

        def stalled_answer() -> bool:
            started = time.monotonic()
            answer = _get(health.probe_port, "/healthz", timeout=1.0)
            # answered by the server's own thread while the loop cannot run anything
            assert time.monotonic() - started < 0.5
            answers.append(answer)
            return answer[0] == 503

        assert _wait_for(stalled_answer, timeout=0.9), answers
        assert not blocking.done(), "the 503 must come while the loop is still blocked"
        status, body = answers[-1]
        assert status == 503
        assert body.startswith("event loop stalled ")
        assert body.endswith("s")

        blocking.result(timeout=WAIT)
        assert _wait_for(lambda: _get(health.probe_port, "/healthz") == (200, "ok"), timeout=2.0)
    finally:
        health.stop()
        asyncio.run_coroutine_threadsafe(stop_beat(beat), loop).result(timeout=WAIT)
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(timeout=WAIT)
        if not loop_thread.is_alive():
            loop.close()
    assert not loop_thread.is_alive()

"""The HTTP endpoints, on real sockets: probes answer even while the event
loop they judge is blocked."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from eni_controller.health import Check, HealthServer, LoopHeartbeat


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class Flags:
    def __init__(self) -> None:
        self.live: tuple[bool, str] = (True, "")
        self.ready: tuple[bool, str] = (False, "informers not synced")


@pytest.fixture
def flags() -> Flags:
    return Flags()


@pytest.fixture
def server(flags: Flags) -> Iterator[HealthServer]:
    registry = CollectorRegistry()
    Counter("demo_total", "a counter", registry=registry).inc(3)
    health = HealthServer(
        registry=registry,
        liveness=lambda: flags.live,
        readiness=lambda: flags.ready,
        host="127.0.0.1",
        metrics_port=0,
        probe_port=0,
    )
    health.start()
    yield health
    health.stop()


def test_metrics_and_probes_on_their_own_ports(server: HealthServer, flags: Flags) -> None:
    status, body = _get(server.metrics_port, "/metrics")
    assert status == 200
    assert "demo_total 3.0" in body
    assert _get(server.probe_port, "/healthz") == (200, "ok")
    assert _get(server.probe_port, "/readyz") == (503, "informers not synced")
    flags.ready = (True, "")
    assert _get(server.probe_port, "/readyz") == (200, "ok")
    assert _get(server.probe_port, "/metrics")[0] == 404
    assert _get(server.metrics_port, "/healthz")[0] == 404


def test_a_check_that_raises_is_a_failure() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    bad = HealthServer(
        registry=CollectorRegistry(),
        liveness=broken,
        readiness=broken,
        host="127.0.0.1",
        metrics_port=0,
        probe_port=0,
    )
    bad.start()
    try:
        assert _get(bad.probe_port, "/healthz") == (503, "RuntimeError")
    finally:
        bad.stop()


def test_one_port_serves_everything() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    health = HealthServer(
        registry=CollectorRegistry(),
        liveness=lambda: (True, ""),
        readiness=lambda: (True, ""),
        host="127.0.0.1",
        metrics_port=port,
        probe_port=port,
    )
    health.start()
    try:
        assert _get(port, "/healthz") == (200, "ok")
        assert _get(port, "/metrics")[0] == 200
    finally:
        health.stop()


def test_liveness_fails_while_the_loop_is_blocked_and_recovers() -> None:
    heartbeat = LoopHeartbeat()
    loop = asyncio.new_event_loop()
    blocked = threading.Event()

    async def main() -> None:
        beat = asyncio.create_task(heartbeat.run(interval=0.05))
        await asyncio.sleep(0.3)
        blocked.set()
        time.sleep(1.0)  # noqa: ASYNC251 - the bug liveness must catch: a blocked loop
        blocked.clear()
        await asyncio.sleep(0.3)
        beat.cancel()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    liveness: Check = lambda: (  # noqa: E731
        heartbeat.alive(stale_after=0.3),
        f"event loop stalled {heartbeat.lag():.1f}s",
    )
    health = HealthServer(
        registry=CollectorRegistry(),
        liveness=liveness,
        readiness=liveness,
        host="127.0.0.1",
        metrics_port=0,
        probe_port=0,
    )
    health.start()
    thread.start()
    try:
        assert blocked.wait(timeout=5)
        time.sleep(0.5)
        started = time.monotonic()
        status, body = _get(health.probe_port, "/healthz")
        assert time.monotonic() - started < 0.5  # answered by its own thread
        assert status == 503
        assert body.startswith("event loop stalled")
        thread.join(timeout=5)
        loop.close()
    finally:
        health.stop()
    # after the loop ran again its last tick is fresh
    assert heartbeat.lag() < 1.0


def test_stop_frees_the_ports() -> None:
    health = HealthServer(
        registry=CollectorRegistry(),
        liveness=lambda: (True, ""),
        readiness=lambda: (True, ""),
        host="127.0.0.1",
        metrics_port=0,
        probe_port=0,
    )
    health.start()
    port = health.probe_port
    assert _get(port, "/healthz") == (200, "ok")
    health.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)

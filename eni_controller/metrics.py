"""Prometheus metrics, held by one object that is passed to whoever records.

Nothing is registered on prometheus_client's global default registry, so the
controller, its tests and a second controller in one process never collide.

Invariants:

* each Metrics registers everything on its own registry exactly once, the
  process, platform and GC collectors included (or `process_*` / `python_*`
  would go missing);
* per-NodeENI series exist only for NodeENIs this process reconciles now:
  removed when the NodeENI is gone, all of them when a leadership term ends;
* scrape-time callbacks (cleanup pool, EC2 pacing) only read plain values:
  scrapes run on the HTTP server's threads (health.py), not the event loop.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterator
from functools import partial

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from eni_controller import package_version

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_NAMESPACE = "eni_controller"


def add_runtime_collectors(registry: CollectorRegistry) -> None:
    """process_*, python_info and python_gc_* on `registry`, as on the default one."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Registers everything on `registry`, which must hold none of it yet."""
        self.registry = r = registry if registry is not None else CollectorRegistry()
        add_runtime_collectors(r)
        counter = partial(Counter, namespace=_NAMESPACE, registry=r)
        gauge = partial(Gauge, namespace=_NAMESPACE, registry=r)
        histogram = partial(Histogram, namespace=_NAMESPACE, registry=r, buckets=_LATENCY_BUCKETS)
        self.build_info = gauge(
            "build_info",
            "Always 1; the labels say which version runs on which Python",
            ["version", "python_version"],
        )
        self.build_info.labels(package_version(), platform.python_version()).set(1)
        self.aws_api_calls = counter(
            "aws_api_calls_total",
            "EC2 API calls by action and result (success or error), after retries",
            ["action", "result"],
        )
        self.aws_api_errors = counter(
            "aws_api_errors_total",
            "EC2 API attempt failures by action and error class",
            ["action", "error_class"],
        )
        self.aws_api_throttles = counter(
            "aws_api_throttles_total", "EC2 API attempts refused with a throttling code", ["action"]
        )
        self.aws_api_retries = counter(
            "aws_api_retries_total",
            "EC2 API attempts repeated after a retryable failure",
            ["action"],
        )
        self.aws_api_latency = histogram(
            "aws_api_call_duration_seconds", "Duration of one EC2 API attempt", ["action"]
        )
        self.aws_rate_limiter_wait = histogram(
            "aws_rate_limiter_wait_seconds",
            "Time a call waited for a client-side token, by action class",
            ["action_class"],
        )
        self.aws_rate_limiter_fill_rate = gauge(
            "aws_rate_limiter_fill_rate",
            "Fill rate of the client-side token bucket now, in requests per second, by action"
            " class: lowered x0.7 by a throttled answer, raised back step by step to the share",
            ["action_class"],
        )
        self.aws_rate_limiter_fill_rate_ceiling = gauge(
            "aws_rate_limiter_fill_rate_ceiling",
            "Fill rate the client-side token bucket returns to, in requests per second, by"
            " action class: the configured rate times EC2_BUDGET_SHARE",
            ["action_class"],
        )
        self.circuit_breaker_state = gauge(
            "circuit_breaker_state", "EC2 circuit breaker state: 0 closed, 1 half-open, 2 open"
        )
        self.circuit_breaker_transitions = counter(
            "circuit_breaker_transitions_total",
            "EC2 circuit breaker state changes, by the state entered",
            ["state"],
        )
        # Work queue, named as controller-runtime names them so existing dashboards work.
        self.workqueue_depth = gauge(
            "workqueue_depth", "Current depth of the work queue", ["name"], namespace=""
        )
        self.workqueue_adds = counter(
            "workqueue_adds_total", "Adds handled by the work queue", ["name"], namespace=""
        )
        self.workqueue_queue_duration = histogram(
            "workqueue_queue_duration_seconds",
            "How long an item stays in the work queue before being processed",
            ["name"],
            namespace="",
        )
        self.workqueue_work_duration = histogram(
            "workqueue_work_duration_seconds",
            "How long processing an item from the work queue takes",
            ["name"],
            namespace="",
        )
        self.workqueue_retries = counter(
            "workqueue_retries_total",
            "Retries (rate-limited re-adds) handled by the work queue",
            ["name"],
            namespace="",
        )
        self.orphan_sweeps = counter("orphan_sweeps_total", "Orphan sweeps run")
        self.orphans_reclaimed = counter(
            "orphan_enis_reclaimed_total",
            "ENIs carrying our tags that no NodeENI claimed, handed to cleanup",
        )
        self.eni_operations = counter(
            "eni_operations_total",
            "ENI operations by operation (create, attach, adopt, detach, delete, ...) and result",
            ["operation", "result"],
        )
        self.eni_operation_duration = histogram(
            "eni_operation_duration_seconds",
            "Duration of ENI operations, EC2 retries and pacing included",
            ["operation"],
        )
        self.reconciles = counter(
            "reconcile_total", "NodeENI reconciles by result (success, requeue, error)", ["result"]
        )
        self.reconcile_errors = counter(
            "reconcile_errors_total", "NodeENI reconciles that failed, by error class", ["error"]
        )
        self.reconcile_duration = histogram(
            "reconcile_duration_seconds", "Duration of one NodeENI reconcile"
        )
        self.cleanups = counter(
            "eni_cleanup_total",
            "ENI cleanups (detach, wait, delete) by result (success, retry)",
            ["result"],
        )
        self.cleanup_duration = histogram(
            "eni_cleanup_duration_seconds",
            "Duration of one ENI cleanup attempt, waiting for detachment included",
        )
        self.cleanup_pending = gauge(
            "eni_cleanup_pending",
            "ENIs in the cleanup pool: queued, waiting for detachment or being cleaned",
        )
        self.cleanup_in_flight = gauge(
            "eni_cleanup_in_flight",
            "Cleanup workers making an EC2 call (detach, describe, delete) right now",
        )
        self.cleanup_oldest_pending = gauge(
            "eni_cleanup_oldest_pending_seconds",
            "Age of the ENI longest in the cleanup pool (0: the pool is empty)",
        )
        self.nodeeni_wanted = gauge(
            "nodeeni_wanted_enis",
            "ENIs a NodeENI wants (its status desiredCount), as last written",
            ["nodeeni"],
        )
        self.nodeeni_attached = gauge(
            "nodeeni_attached_enis",
            "ENIs of a NodeENI attached (its status attachedCount), as last written",
            ["nodeeni"],
        )
        self.nodeeni_ready = gauge(
            "nodeeni_ready",
            "1 while a NodeENI's Ready condition is True, else 0, as last written",
            ["nodeeni"],
        )
        self._nodeeni_gauges = (self.nodeeni_wanted, self.nodeeni_attached, self.nodeeni_ready)
        self.forced_detaches = counter(
            "eni_forced_detaches_total",
            "Detaches sent with Force because the ENI was not free within DETACHMENT_TIMEOUT",
        )
        self.leader = gauge(
            "leader",
            "1 while this process holds the leader Lease (or runs without leader election)",
        )
        self.cluster_identity_known = gauge(
            "cluster_identity_known",
            "1 once the cluster name is known (CLUSTER_NAME or discovered from the nodes'"
            " instances); 0: ENIs get no cluster tag and the orphan sweep reclaims nothing",
        )

    def watch_cleanup_pool(
        self,
        *,
        pending: Callable[[], float],
        in_flight: Callable[[], float],
        oldest_pending_seconds: Callable[[], float],
    ) -> None:
        """Read the cleanup pool's gauges at each scrape (on a scrape thread: the
        callbacks must only read, and never raise)."""
        self.cleanup_pending.set_function(pending)
        self.cleanup_in_flight.set_function(in_flight)
        self.cleanup_oldest_pending.set_function(oldest_pending_seconds)

    def nodeeni_status(self, name: str, *, wanted: int | None, attached: int, ready: bool) -> None:
        """The NodeENI's series from its new status; `wanted` None (no plan yet)
        leaves no wanted series."""
        if wanted is None:
            self.nodeeni_wanted.remove(name)
        else:
            self.nodeeni_wanted.labels(name).set(wanted)
        self.nodeeni_attached.labels(name).set(attached)
        self.nodeeni_ready.labels(name).set(1 if ready else 0)

    def forget_nodeeni(self, name: str) -> None:
        """The NodeENI is gone: its series go too (none left for an alert to see)."""
        for gauge in self._nodeeni_gauges:
            gauge.remove(name)

    def forget_nodeenis(self) -> None:
        """The leadership term ended: this process no longer speaks for any NodeENI."""
        for gauge in self._nodeeni_gauges:
            gauge.clear()

    @contextlib.contextmanager
    def eni_operation(self, operation: str) -> Iterator[None]:
        """Count (success or error) and time one ENI operation around the block."""
        start = time.perf_counter()
        result = "error"
        try:
            yield
            result = "success"
        finally:
            self.eni_operations.labels(operation, result).inc()
            self.eni_operation_duration.labels(operation).observe(time.perf_counter() - start)

"""Prometheus metrics, held by one object that is passed to whoever records.

Why one object: the controller, its tests and a second controller in the same
process each need their own series; prometheus_client's default registry is a
module global, so two of anything registered on it collide. Here nothing is
registered globally.

Invariants:

* No module-level collectors: each Metrics owns its CollectorRegistry (or is
  handed one), and registers everything it exports on it exactly once, the
  process, platform and GC collectors included (the default registry would
  have had those; a fresh one must add them or `process_*` / `python_*` go
  missing).
* `eni_controller_build_info` is always 1, its labels say what runs.
* Per-NodeENI series exist only for NodeENIs this process reconciles now: set
  from the status the reconciler writes, removed when the NodeENI is gone and
  all of them when a leadership term ends, so a standby or a deleted NodeENI
  leaves no stale series for an alert to fire on.
* Values read at scrape time (the cleanup pool's gauges, the EC2 client's
  pacing) are computed by callbacks that only read plain ints, floats and
  dicts: scrapes run on the HTTP server's threads (health.py), never on the
  event loop.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterator, Mapping

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
        """Everything is registered on `registry`, which must hold nothing of it yet
        (prometheus_client's default REGISTRY has the process collectors: not that)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        add_runtime_collectors(r)
        self.build_info = Gauge(
            "build_info",
            "Always 1; the labels say which version runs on which Python",
            ["version", "python_version"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.build_info.labels(package_version(), platform.python_version()).set(1)
        self.aws_api_calls = Counter(
            "aws_api_calls_total",
            "EC2 API calls by action and result (success or error), after retries",
            ["action", "result"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.aws_api_errors = Counter(
            "aws_api_errors_total",
            "EC2 API attempt failures by action and error class",
            ["action", "error_class"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.aws_api_throttles = Counter(
            "aws_api_throttles_total",
            "EC2 API attempts refused with a throttling code",
            ["action"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.aws_api_retries = Counter(
            "aws_api_retries_total",
            "EC2 API attempts repeated after a retryable failure",
            ["action"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.aws_api_latency = Histogram(
            "aws_api_call_duration_seconds",
            "Duration of one EC2 API attempt",
            ["action"],
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.aws_rate_limiter_wait = Histogram(
            "aws_rate_limiter_wait_seconds",
            "Time a call waited for a client-side token, by action class",
            ["action_class"],
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.aws_rate_limiter_fill_rate = Gauge(
            "aws_rate_limiter_fill_rate",
            "Fill rate of the client-side token bucket now, in requests per second, by action"
            " class: lowered x0.7 by a throttled answer, raised back step by step to the share",
            ["action_class"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.aws_rate_limiter_fill_rate_ceiling = Gauge(
            "aws_rate_limiter_fill_rate_ceiling",
            "Fill rate the client-side token bucket returns to, in requests per second, by"
            " action class: the configured rate times EC2_BUDGET_SHARE",
            ["action_class"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.circuit_breaker_state = Gauge(
            "circuit_breaker_state",
            "EC2 circuit breaker state: 0 closed, 1 half-open, 2 open",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.circuit_breaker_transitions = Counter(
            "circuit_breaker_transitions_total",
            "EC2 circuit breaker state changes, by the state entered",
            ["state"],
            namespace=_NAMESPACE,
            registry=r,
        )
        # Work queue, named as controller-runtime names them so existing dashboards work.
        self.workqueue_depth = Gauge(
            "workqueue_depth", "Current depth of the work queue", ["name"], registry=r
        )
        self.workqueue_adds = Counter(
            "workqueue_adds_total", "Adds handled by the work queue", ["name"], registry=r
        )
        self.workqueue_queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long an item stays in the work queue before being processed",
            ["name"],
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.workqueue_work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long processing an item from the work queue takes",
            ["name"],
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.workqueue_retries = Counter(
            "workqueue_retries_total",
            "Retries (rate-limited re-adds) handled by the work queue",
            ["name"],
            registry=r,
        )
        self.orphan_sweeps = Counter(
            "orphan_sweeps_total",
            "Orphan sweeps run",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.orphans_reclaimed = Counter(
            "orphan_enis_reclaimed_total",
            "ENIs carrying our tags that no NodeENI claimed, handed to cleanup",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.eni_operations = Counter(
            "eni_operations_total",
            "ENI operations by operation (create, attach, adopt, detach, delete, ...) and result",
            ["operation", "result"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.eni_operation_duration = Histogram(
            "eni_operation_duration_seconds",
            "Duration of ENI operations, EC2 retries and pacing included",
            ["operation"],
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.reconciles = Counter(
            "reconcile_total",
            "NodeENI reconciles by result (success, requeue, error)",
            ["result"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.reconcile_errors = Counter(
            "reconcile_errors_total",
            "NodeENI reconciles that failed, by error class",
            ["error"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds",
            "Duration of one NodeENI reconcile",
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.cleanups = Counter(
            "eni_cleanup_total",
            "ENI cleanups (detach, wait, delete) by result (success, retry)",
            ["result"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.cleanup_duration = Histogram(
            "eni_cleanup_duration_seconds",
            "Duration of one ENI cleanup attempt, waiting for detachment included",
            namespace=_NAMESPACE,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.cleanup_pending = Gauge(
            "eni_cleanup_pending",
            "ENIs in the cleanup pool: queued, waiting for detachment or being cleaned",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.cleanup_in_flight = Gauge(
            "eni_cleanup_in_flight",
            "Cleanup workers making an EC2 call (detach, describe, delete) right now",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.cleanup_oldest_pending = Gauge(
            "eni_cleanup_oldest_pending_seconds",
            "Age of the ENI longest in the cleanup pool (0: the pool is empty)",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.nodeeni_wanted = Gauge(
            "nodeeni_wanted_enis",
            "ENIs a NodeENI wants (its status desiredCount), as last written",
            ["nodeeni"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.nodeeni_attached = Gauge(
            "nodeeni_attached_enis",
            "ENIs of a NodeENI attached (its status attachedCount), as last written",
            ["nodeeni"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.nodeeni_ready = Gauge(
            "nodeeni_ready",
            "1 while a NodeENI's Ready condition is True, else 0, as last written",
            ["nodeeni"],
            namespace=_NAMESPACE,
            registry=r,
        )
        self.forced_detaches = Counter(
            "eni_forced_detaches_total",
            "Detaches sent with Force because the ENI was not free within DETACHMENT_TIMEOUT",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.leader = Gauge(
            "leader",
            "1 while this process holds the leader Lease (or runs without leader election)",
            namespace=_NAMESPACE,
            registry=r,
        )
        self.cluster_identity_known = Gauge(
            "cluster_identity_known",
            "1 once the cluster name is known (CLUSTER_NAME or discovered from the nodes'"
            " instances); 0: ENIs get no cluster tag and the orphan sweep reclaims nothing",
            namespace=_NAMESPACE,
            registry=r,
        )

    def watch_cleanup_pool(
        self,
        *,
        pending: Callable[[], float],
        in_flight: Callable[[], float],
        oldest_pending_seconds: Callable[[], float],
    ) -> None:
        """Read the cleanup pool's gauges from these callbacks at each scrape. They
        run on a scrape thread: they must only read, and never raise."""
        self.cleanup_pending.set_function(pending)
        self.cleanup_in_flight.set_function(in_flight)
        self.cleanup_oldest_pending.set_function(oldest_pending_seconds)

    def watch_ec2_pacing(
        self, *, rates: Mapping[str, Callable[[], float]], ceilings: Mapping[str, float]
    ) -> None:
        """Read each action class's fill rate from `rates` at each scrape (callbacks
        on a scrape thread: they must only read, and never raise); `ceilings`, the
        rates they return to, do not change."""
        for action_class, rate in rates.items():
            self.aws_rate_limiter_fill_rate.labels(action_class).set_function(rate)
        for action_class, ceiling in ceilings.items():
            self.aws_rate_limiter_fill_rate_ceiling.labels(action_class).set(ceiling)

    def nodeeni_status(self, name: str, *, wanted: int | None, attached: int, ready: bool) -> None:
        """The NodeENI's series, from the status just computed for it; `wanted` None
        (no plan yet: an invalid spec, a failed lookup) leaves no wanted series."""
        if wanted is None:
            self.nodeeni_wanted.remove(name)
        else:
            self.nodeeni_wanted.labels(name).set(wanted)
        self.nodeeni_attached.labels(name).set(attached)
        self.nodeeni_ready.labels(name).set(1 if ready else 0)

    def forget_nodeeni(self, name: str) -> None:
        """The NodeENI is gone: its series go too (none left for an alert to see)."""
        for gauge in (self.nodeeni_wanted, self.nodeeni_attached, self.nodeeni_ready):
            gauge.remove(name)

    def forget_nodeenis(self) -> None:
        """The leadership term ended: this process no longer speaks for any NodeENI."""
        for gauge in (self.nodeeni_wanted, self.nodeeni_attached, self.nodeeni_ready):
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

"""Prometheus metrics, held by one object that is passed to whoever records.

No module-level collectors: each Metrics owns its CollectorRegistry, so tests
and several controllers in one process never collide on registration.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_NAMESPACE = "eni_controller"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
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

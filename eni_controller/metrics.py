"""Prometheus metrics, held by one object that is passed to whoever records.

No module-level collectors: each Metrics owns its CollectorRegistry, so tests
and several controllers in one process never collide on registration.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_NAMESPACE = "eni_controller"

_M = TypeVar("_M", Counter, Gauge, Histogram)


class Children(Generic[_M]):
    """A labelled metric's children, each looked up in prometheus-client once.

    `metric.labels(...)` validates its arguments and takes a lock on every call;
    on the EC2 call path that cost more than the observations themselves. A
    child is still created by the first `labels(...)` for its values (never
    before: an unused series is not exported). The controller never removes
    children, so a cached one stays the metric's.
    """

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric: _M = metric
        self._children: dict[tuple[str, ...], _M] = {}

    def labels(self, *values: str) -> _M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


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
        self._eni_operations = Children(self.eni_operations)
        self._eni_operation_duration = Children(self.eni_operation_duration)
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

    def eni_operation(self, operation: str) -> ENIOperation:
        """Count and time one ENI operation around the block."""
        return ENIOperation(self._eni_operations, self._eni_operation_duration, operation)


class ENIOperation:
    """`Metrics.eni_operation`'s context manager (a class: generator-based ones cost
    more than the two observations they make)."""

    __slots__ = ("_duration", "_operation", "_results", "_start")

    def __init__(
        self, results: Children[Counter], duration: Children[Histogram], operation: str
    ) -> None:
        self._results = results
        self._duration = duration
        self._operation = operation
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        result = "success" if exc_type is None else "error"
        self._results.labels(self._operation, result).inc()
        self._duration.labels(self._operation).observe(time.perf_counter() - self._start)

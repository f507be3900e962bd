"""Unit tests for eni_controller.aws.breaker on a fake clock."""

from __future__ import annotations

import pytest

from eni_controller.aws.breaker import BreakerState, CircuitBreaker
from eni_controller.aws.errors import CircuitOpen
from eni_controller.config import CircuitBreakerConfig
from tests.harness.clock import ManualClock

FAILURES = 3
SUCCESSES = 2
TIMEOUT = 30.0


class Harness:
    def __init__(self, *, enabled: bool = True) -> None:
        self.clock = ManualClock()
        self.changes: list[BreakerState] = []
        self.breaker = CircuitBreaker(
            CircuitBreakerConfig(
                enabled=enabled,
                failure_threshold=FAILURES,
                success_threshold=SUCCESSES,
                timeout_seconds=TIMEOUT,
            ),
            clock=self.clock,
            on_change=self.changes.append,
        )

    def state(self) -> BreakerState:
        # a call, so mypy does not narrow the property between reads
        return self.breaker.state

    def fail(self, times: int = 1) -> None:
        for _ in range(times):
            self.breaker.record_failure()

    def succeed(self, times: int = 1) -> None:
        for _ in range(times):
            self.breaker.record_success()

    def open(self) -> None:
        self.fail(FAILURES)
        assert self.state() is BreakerState.OPEN


def test_state_values_are_the_gauge_values() -> None:
    assert [s.value for s in BreakerState] == [0, 1, 2]
    assert [s.name for s in BreakerState] == ["CLOSED", "HALF_OPEN", "OPEN"]


def test_starts_closed_and_allows_calls() -> None:
    h = Harness()
    assert h.state() is BreakerState.CLOSED
    h.breaker.check("DescribeSubnets")
    assert h.changes == []


def test_threshold_minus_one_failures_stay_closed_and_the_next_opens() -> None:
    h = Harness()
    h.fail(FAILURES - 1)
    assert h.state() is BreakerState.CLOSED
    h.breaker.check("CreateNetworkInterface")
    assert h.changes == []
    h.fail()
    assert h.state() is BreakerState.OPEN
    assert h.changes == [BreakerState.OPEN]


def test_check_raises_circuit_open_while_open() -> None:
    h = Harness()
    h.open()
    with pytest.raises(CircuitOpen) as info:
        h.breaker.check("AttachNetworkInterface")
    assert info.value.action == "AttachNetworkInterface"
    assert info.value.code == "CircuitOpen"
    h.clock.advance(TIMEOUT - 0.001)
    with pytest.raises(CircuitOpen):
        h.breaker.check("AttachNetworkInterface")
    assert h.state() is BreakerState.OPEN


def test_after_timeout_reads_half_open_and_allows_calls() -> None:
    h = Harness()
    h.open()
    h.clock.advance(TIMEOUT)
    assert h.state() is BreakerState.HALF_OPEN
    h.breaker.check("DescribeInstances")
    assert h.changes == [BreakerState.OPEN, BreakerState.HALF_OPEN]


def test_success_threshold_in_half_open_closes() -> None:
    h = Harness()
    h.open()
    h.clock.advance(TIMEOUT)
    h.succeed(SUCCESSES - 1)
    assert h.state() is BreakerState.HALF_OPEN
    h.succeed()
    assert h.state() is BreakerState.CLOSED
    assert h.changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_closed_after_recovery_needs_full_threshold_again() -> None:
    h = Harness()
    h.open()
    h.clock.advance(TIMEOUT)
    h.succeed(SUCCESSES)
    h.fail(FAILURES - 1)
    assert h.state() is BreakerState.CLOSED
    h.fail()
    assert h.state() is BreakerState.OPEN


def test_failure_in_half_open_reopens_and_restarts_timeout() -> None:
    h = Harness()
    h.open()
    h.clock.advance(TIMEOUT + 5)
    assert h.state() is BreakerState.HALF_OPEN
    h.succeed(SUCCESSES - 1)
    h.fail()
    assert h.state() is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        h.breaker.check("DescribeSubnets")
    # the timeout counts from the re-open, not from the first open
    h.clock.advance(TIMEOUT - 1)
    assert h.state() is BreakerState.OPEN
    h.clock.advance(1)
    assert h.state() is BreakerState.HALF_OPEN
    # half-open success count started over
    h.succeed(SUCCESSES - 1)
    assert h.state() is BreakerState.HALF_OPEN
    h.succeed()
    assert h.state() is BreakerState.CLOSED
    assert h.changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_failure_detected_via_timeout_without_reading_state_first() -> None:
    h = Harness()
    h.open()
    h.clock.advance(TIMEOUT)
    h.fail()  # the breaker must notice half-open by itself, then re-open
    assert h.changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN]
    assert h.state() is BreakerState.OPEN


def test_success_in_closed_resets_the_failure_count() -> None:
    h = Harness()
    h.fail(FAILURES - 1)
    h.succeed()
    h.fail(FAILURES - 1)
    assert h.state() is BreakerState.CLOSED
    h.fail()
    assert h.state() is BreakerState.OPEN
    assert h.changes == [BreakerState.OPEN]


def test_successes_in_closed_do_not_emit_changes() -> None:
    h = Harness()
    h.succeed(10)
    assert h.state() is BreakerState.CLOSED
    assert h.changes == []


def test_disabled_breaker_never_opens() -> None:
    h = Harness(enabled=False)
    h.fail(FAILURES * 10)
    assert h.state() is BreakerState.CLOSED
    h.breaker.check("AttachNetworkInterface")
    h.clock.advance(TIMEOUT * 2)
    h.fail(FAILURES)
    assert h.state() is BreakerState.CLOSED
    assert h.changes == []


def test_on_change_sees_every_state_in_order_over_two_cycles() -> None:
    h = Harness()
    for _ in range(2):
        h.open()
        h.clock.advance(TIMEOUT)
        h.breaker.check("DescribeSubnets")
        h.succeed(SUCCESSES)
    assert (
        h.changes
        == [
            BreakerState.OPEN,
            BreakerState.HALF_OPEN,
            BreakerState.CLOSED,
        ]
        * 2
    )

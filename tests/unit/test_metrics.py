"""Unit tests for eni_controller.metrics: ENI operation counting and timing."""

from __future__ import annotations

import pytest

from eni_controller.metrics import Metrics


def _value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_eni_operation_counts_success_and_times_it() -> None:
    m = Metrics()
    with m.eni_operation("attach"):
        pass
    assert _value(m, "eni_controller_eni_operations_total", operation="attach", result="success")
    assert _value(m, "eni_controller_eni_operation_duration_seconds_count", operation="attach") == 1
    assert _value(m, "eni_controller_eni_operations_total", operation="attach", result="error") is (
        None
    )


def test_eni_operation_counts_an_error_and_lets_it_through() -> None:
    m = Metrics()
    with pytest.raises(KeyError), m.eni_operation("delete"):
        raise KeyError("x")
    assert _value(m, "eni_controller_eni_operations_total", operation="delete", result="error") == 1
    assert (
        _value(m, "eni_controller_eni_operations_total", operation="delete", result="success")
        is None
    )
    assert _value(m, "eni_controller_eni_operation_duration_seconds_count", operation="delete") == 1

"""Unit tests for eni_controller.metrics: cached label children and ENI operation timing."""

from __future__ import annotations

import pytest

from eni_controller.metrics import Children, Metrics


def _value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_children_are_the_metrics_own_and_looked_up_once() -> None:
    m = Metrics()
    calls = Children(m.aws_api_calls)
    child = calls.labels("CreateNetworkInterface", "success")
    assert child is m.aws_api_calls.labels("CreateNetworkInterface", "success")
    assert calls.labels("CreateNetworkInterface", "success") is child
    child.inc()
    calls.labels("CreateNetworkInterface", "success").inc()
    total = "eni_controller_aws_api_calls_total"
    assert _value(m, total, action="CreateNetworkInterface", result="success") == 2


def test_children_create_no_series_before_first_use() -> None:
    m = Metrics()
    calls = Children(m.aws_api_calls)
    total = "eni_controller_aws_api_calls_total"
    assert _value(m, total, action="X", result="error") is None
    calls.labels("X", "success")
    assert _value(m, total, action="X", result="success") == 0
    assert _value(m, total, action="X", result="error") is None


def test_children_refuse_wrong_label_counts_like_labels() -> None:
    calls = Children(Metrics().aws_api_calls)
    with pytest.raises(ValueError, match="Incorrect label count"):
        calls.labels("only-one")


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

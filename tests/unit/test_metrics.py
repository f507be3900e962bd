"""Unit tests for eni_controller.metrics: ENI operation counting and timing, the
runtime collectors and build info, and the per-NodeENI series' lifetime."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from eni_controller import package_version
from eni_controller.agent.metrics import AgentMetrics
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


def test_every_metrics_object_has_the_runtime_collectors_and_build_info() -> None:
    # two in one process: each registers on its own registry, nothing collides
    first, second = Metrics(), Metrics()
    for m in (first, second):
        assert _value(m, "process_cpu_seconds_total") is not None
        assert _value(m, "process_resident_memory_bytes")
        assert (
            _value(
                m,
                "python_info",
                implementation=platform.python_implementation(),
                major=str(sys.version_info.major),
                minor=str(sys.version_info.minor),
                patchlevel=str(sys.version_info.micro),
                version=platform.python_version(),
            )
            == 1
        )
        assert _value(m, "python_gc_objects_collected_total", generation="0") is not None
        labels = {"version": package_version(), "python_version": platform.python_version()}
        assert _value(m, "eni_controller_build_info", **labels) == 1


def test_build_info_names_the_installed_version() -> None:
    assert package_version() == importlib.metadata.version("aws-multi-eni-controller")


def test_registering_twice_on_one_registry_is_refused() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics(registry)


def _nodeeni(m: Metrics, name: str) -> tuple[float | None, float | None, float | None]:
    return (
        _value(m, "eni_controller_nodeeni_wanted_enis", nodeeni=name),
        _value(m, "eni_controller_nodeeni_attached_enis", nodeeni=name),
        _value(m, "eni_controller_nodeeni_ready", nodeeni=name),
    )


def test_nodeeni_series_follow_its_status_and_go_with_it() -> None:
    m = Metrics()
    m.nodeeni_status("a", wanted=3, attached=1, ready=False)
    m.nodeeni_status("b", wanted=1, attached=1, ready=True)
    assert _nodeeni(m, "a") == (3, 1, 0)
    m.nodeeni_status("a", wanted=3, attached=3, ready=True)
    assert _nodeeni(m, "a") == (3, 3, 1)
    m.forget_nodeeni("a")  # deleted
    assert _nodeeni(m, "a") == (None, None, None)
    assert _nodeeni(m, "b") == (1, 1, 1)  # others untouched
    m.forget_nodeeni("a")  # twice: nothing to remove, no error
    m.nodeeni_status("a", wanted=2, attached=0, ready=False)  # made again
    assert _nodeeni(m, "a") == (2, 0, 0)
    m.nodeeni_status("a", wanted=None, attached=0, ready=False)  # no plan (invalid spec)
    assert _nodeeni(m, "a") == (None, 0, 0)
    m.forget_nodeenis()  # the term ended
    assert _nodeeni(m, "a") == _nodeeni(m, "b") == (None, None, None)
    assert "nodeeni=" not in generate_latest(m.registry).decode()


def test_the_agents_metrics_have_the_runtime_collectors_too() -> None:
    # a DaemonSet pod per node: its memory and CPU are read from its own scrape
    first, second = AgentMetrics(), AgentMetrics()
    for m in (first, second):
        assert m.registry.get_sample_value("process_cpu_seconds_total") is not None
        assert m.registry.get_sample_value("process_resident_memory_bytes")
        assert m.registry.get_sample_value("python_gc_collections_total", {"generation": "0"})

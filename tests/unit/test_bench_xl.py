"""The XL bench's parts that decide its figures: the EKS-shaped Node (its size is
the point), the heartbeat patch (status only), the shape's limits, the targets
and the generated doc section."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bench.eks_nodes import IMAGE_COUNT, eks_node_body, eks_node_status, heartbeat
from bench.report import XL_MARKER, render
from bench.xl import ENIS_PER_SUBNET, TARGETS, Shape, Storm, Variant, XLResult, _judge
from bench.xl import Setup as XLSetup


def whole_node(index: int = 7) -> dict[str, Any]:
    body = eks_node_body(
        name=f"xl-node-{index}",
        index=index,
        instance_id="i-0123456789abcdef0",
        az="us-east-1a",
        extra_labels={"bench/xl": "true"},
    )
    return {**body, **eks_node_status(name=f"xl-node-{index}", index=index)}


def test_the_node_is_shaped_and_sized_like_an_eks_node() -> None:
    node = whole_node()
    status = node["status"]
    assert len(status["images"]) == IMAGE_COUNT == 40
    assert [c["type"] for c in status["conditions"]] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    assert [a["type"] for a in status["addresses"]] == ["InternalIP", "Hostname", "InternalDNS"]
    assert len(node["metadata"]["labels"]) == 19 + 1
    assert 11_000 <= len(json.dumps(node)) <= 13_000
    assert node["spec"]["providerID"] == "aws:///us-east-1a/i-0123456789abcdef0"
    assert whole_node() == node  # deterministic: baseline and candidate see the same
    assert whole_node(8)["status"]["nodeInfo"] != status["nodeInfo"]


def test_a_heartbeat_changes_only_the_conditions_heartbeat_times() -> None:
    status = whole_node()["status"]
    beaten = copy.deepcopy(status)
    beaten["conditions"] = heartbeat("2026-11-01T09:00:00Z")["status"]["conditions"]
    assert heartbeat("2026-11-01T09:00:00Z").keys() == {"status"}
    for before, after in zip(status["conditions"], beaten["conditions"], strict=True):
        assert after["lastHeartbeatTime"] == "2026-11-01T09:00:00Z"
        assert {**after, "lastHeartbeatTime": None} == {**before, "lastHeartbeatTime": None}


@pytest.mark.parametrize(
    ("nodes", "selected", "nodeenis"),
    [(10, 0, 1), (10, 11, 1), (5000, 2000, 0), (5000, 2000, 11), (5000, 2000, 1)],
)
def test_shapes_the_bench_cannot_build_are_refused(
    nodes: int, selected: int, nodeenis: int
) -> None:
    with pytest.raises(ValueError, match="--"):
        Shape(nodes=nodes, selected=selected, nodeenis=nodeenis)


def test_the_default_shape_fits() -> None:
    shape = Shape()
    assert (shape.nodes, shape.selected, shape.nodeenis) == (5000, 2000, 2)
    assert shape.selected / shape.nodeenis <= ENIS_PER_SUBNET


def _variant(name: str, *, peak: float, cpu_ms: float, synced: float) -> Variant:
    return Variant(
        name=name,
        code=f"{name} code",
        synced_seconds=synced,
        rss_after_sync_mb=peak - 10,
        peak_rss_after_sync_mb=peak - 5,
        peak_rss_mb=peak,
        reconciles_after_start=2,
        storm=Storm(
            updates=5000,
            seconds=25.0,
            cpu_seconds=cpu_ms * 5 / 1000,
            idle_cpu_per_second=0.0,
            net_cpu_seconds=cpu_ms * 5 / 1000,
            cpu_ms_per_1000_updates=cpu_ms,
            reconciles=0,
            ec2_calls=0,
        ),
    )


def _result() -> XLResult:
    result = XLResult(
        shape={"nodes": 5000, "selected": 2000, "nodeenis": 2},
        node_json_bytes=14_400,
        create_nodes_seconds=40.0,
        setup=XLSetup(rollout_seconds=90.0, enis=2000, peak_rss_mb=180.0, controller_cpu_seconds=9),
        candidate=_variant("candidate", peak=180.0, cpu_ms=150.0, synced=4.0),
        baseline=_variant("baseline", peak=400.0, cpu_ms=200.0, synced=8.0),
        load={"start": "1.0 1.0 1.0 1/100 1", "end": "2.0 1.0 1.0 1/100 2"},
    )
    _judge(result)
    return result


def test_targets_and_ratios_are_judged_on_the_candidate() -> None:
    result = _result()
    assert {k: t["met"] for k, t in result.targets.items()} == {
        "peak_rss_mb": True,
        "cpu_ms_per_1000_updates": False,
        "synced_seconds": True,
    }
    assert set(result.targets) == set(TARGETS)
    assert result.ratios == {"peak_rss": 0.45, "cpu_per_update": 0.75, "synced": 0.5}


def test_the_doc_section_shows_both_controllers_the_ratio_and_the_targets() -> None:
    text = render(f"before\n{XL_MARKER}\nafter", {}, xl=_result().to_json())
    lines = text.splitlines()
    assert lines[0] == "before"
    assert lines[-1] == "after"
    assert "| baseline | baseline code | 8.0 s | 390 MB | 400 MB | 200 ms | 0 / 0 |" in lines
    assert "| candidate | candidate code | 4.0 s | 170 MB | 180 MB | 150 ms | 0 / 0 |" in lines
    assert "| candidate / baseline |  | 0.50 |  | 0.45 | 0.75 |  |" in lines
    assert "| CPU ≤ 100 ms per 1,000 Node updates | 150 | **missed** |" in lines
    assert "| peak RSS ≤ 200 MB | 180 | met |" in lines
    assert "`1.0 1.0 1.0 1/100 1`" in text

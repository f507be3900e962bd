"""The performance suite's scenarios in CI, for correctness only.

`make bench` times them; here the same bench code (bench.scenarios) runs the
seed's five scenarios and Enterprise (10 nodes x 10 ENIs, without the floor)
against its own API server and moto, and asserts what must hold on any
machine: every ENI attached, no duplicates, nothing left in EC2 after the
NodeENIs are deleted; bench.xl at 40 Nodes, where a heartbeat of every Node
must cost no reconcile and no EC2 call; and bench.neighbour at 12 ENIs, whose
accounting must keep the neighbour's requests apart from the controller's.
No timing is asserted: CI machines vary.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import neighbour, xl
from bench.scenarios import SEED_SCENARIOS, Settings, run_scenario, scale_scenarios, start_env

pytestmark = pytest.mark.integration

ENTERPRISE = dataclasses.replace(
    scale_scenarios(nodes=10, enis_per_node=10)["enterprise"], floor=False
)


async def test_seed_scenarios_and_enterprise_converge_without_duplicates_or_leaks(
    tmp_path: Path,
) -> None:
    env = await start_env(tmp_path)
    try:
        for scenario in (*SEED_SCENARIOS, ENTERPRISE):
            result = await run_scenario(env, scenario, Settings(timeout_seconds=120))
            first = result.initial.succeeded if result.initial else 0
            assert first + result.create.succeeded == scenario.enis, scenario.name
            assert result.enis_in_ec2_after_create == scenario.enis, scenario.name
            assert result.duplicates == 0, scenario.name
            assert result.leaks == 0, scenario.name
            assert result.correct, scenario.name
    finally:
        await env.close()


async def test_xl_at_small_scale_storm_costs_no_reconcile_and_no_ec2_call(
    tmp_path: Path,
) -> None:
    """bench.xl end to end on 40 EKS-shaped Nodes (the candidate only): the setup
    rollout converges, the measured controller syncs, and a heartbeat of every
    Node makes no reconcile and no EC2 call."""
    shape = xl.Shape(nodes=40, selected=12, nodeenis=2)
    result = await xl.run(shape, state=tmp_path, baseline_ref=None)
    assert result.setup.enis == 12
    assert result.baseline is None
    candidate = result.candidate
    assert candidate.reconciles_after_start >= shape.nodeenis
    assert candidate.storm.updates == 40
    assert candidate.storm.reconciles == 0
    assert candidate.storm.ec2_calls == 0
    assert candidate.synced_seconds > 0
    assert candidate.peak_rss_mb >= candidate.rss_after_sync_mb > 0
    assert result.node_json_bytes > 12_000  # EKS-sized, managedFields included


async def test_neighbour_at_small_scale_shares_the_account_and_is_counted_apart(
    tmp_path: Path,
) -> None:
    """bench.neighbour end to end on 4 nodes x 3 ENIs (36 mutating calls: past the
    share's 22-token burst): the rollout converges under AWS's buckets while the
    neighbour sends, and its CreateTags are not counted as the controller's."""
    scenario = scale_scenarios(nodes=4, enis_per_node=3)["throttled"]
    result = await neighbour.run(scenario, Settings(timeout_seconds=120), state=tmp_path, rate=2.5)
    controller, theirs = result.controller, result.neighbour
    assert controller.succeeded == controller.enis == 12
    assert controller.share_min_seconds > 0
    assert "CreateTags" not in controller.ec2_calls
    assert controller.ec2_calls["CreateNetworkInterface"] >= 12
    assert theirs.sent >= 1
    assert theirs.answered_ok + theirs.throttled + sum(theirs.other_errors.values()) == theirs.sent

"""bench.wide_status at 30 Nodes with the threshold lowered to 10, for correctness
only (no timing asserted): every step converges, the status turns compact past
the threshold, no reconcile fails, and the figures it saves are the served ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import wide_status
from eni_controller.reconcile.status_fit import StatusLimits

pytestmark = pytest.mark.integration


async def test_wide_status_converges_and_measures_each_step(tmp_path: Path) -> None:
    result = await wide_status.run(tmp_path, nodes=30, limits=StatusLimits(compact_above=10))
    assert [s["attachments"] for s in result["steps"]] == [6, 18, 30]
    assert [s["form"] for s in result["steps"]] == ["full", "compact", "compact"]
    assert [s["listed"] for s in result["steps"]] == [6, 18, 30]
    for step in result["steps"]:
        assert 0 < step["status_bytes"] <= step["full_form_bytes"]
    assert result["status_writes_failed_for_size"] == 0
    assert set(result["failed_reconciles"]) <= {"Conflict"}  # a stale read, retried
    assert result["enis_in_ec2"] == 30
    assert result["full_form_write_at_max"] == "accepted"  # 30 entries are small
    assert result["target"]["met"]

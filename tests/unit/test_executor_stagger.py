"""Unit tests for the executor's per-NodeENI rotation of its actions.

Ten NodeENIs reconciled at once over the same nodes queued on the same
per-instance locks when each started at the first node (bench Large)."""

from __future__ import annotations

from eni_controller.reconcile.executor import staggered
from eni_controller.reconcile.planner import Action, CreateAndAttach, Slot
from tests.harness.jobs import JOB_SUBNET


def _actions(count: int) -> list[Action]:
    return [
        CreateAndAttach(
            slot=Slot(node=f"n{i:03}", instance_id=f"i-{i:03}", subnet=JOB_SUBNET, device_index=1)
        )
        for i in range(count)
    ]


def test_rotation_keeps_every_action_once_and_in_cyclic_order() -> None:
    actions = _actions(100)
    rotated = staggered(actions, "multus-3")
    assert sorted(rotated, key=lambda a: a.slot.node) == actions
    start = actions.index(rotated[0])
    assert rotated == actions[start:] + actions[:start]


def test_nodeenis_start_at_different_nodes_and_each_always_at_the_same() -> None:
    actions = _actions(100)
    firsts = {staggered(actions, f"bench-{i}")[0].slot.node for i in range(10)}
    assert len(firsts) > 5
    assert staggered(actions, "bench-1") == staggered(actions, "bench-1")


def test_short_lists_are_left_alone() -> None:
    assert staggered([], "x") == []
    one = _actions(1)
    assert staggered(one, "x") == one

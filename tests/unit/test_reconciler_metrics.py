"""Unit tests for the per-NodeENI gauges the Reconciler sets where it writes
status: they say what the status says, through label off and on, deletion and
re-creation, and an invalid spec; and they go with the NodeENI."""

from __future__ import annotations

from tests.harness.reconciling import ReconcileWorld
from tests.harness.waiting import until

SELECTOR = {"nodeSelector": {"multus": "on"}}


def _series(world: ReconcileWorld, name: str) -> tuple[float | None, ...]:
    """(wanted, attached, ready) of the NodeENI's series; None where there is none."""
    return tuple(
        world.metrics.registry.get_sample_value(f"eni_controller_nodeeni_{kind}", {"nodeeni": name})
        for kind in ("wanted_enis", "attached_enis", "ready")
    )


def _status(world: ReconcileWorld, name: str) -> tuple[float | None, ...]:
    """The same three, as the NodeENI's status says them."""
    status = world.status(name)
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    return (status.get("desiredCount"), status["attachedCount"], 1 if ready else 0)


async def test_the_gauges_follow_status_through_label_off_on_delete_and_recreate() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_node(1, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    world.add_nodeeni("other", **SELECTOR)
    await world.reconcile("multus")
    await world.reconcile("other")
    assert _series(world, "multus") == _status(world, "multus") == (2, 2, 1)

    async with world.cleaning():
        world.label("node-1", multus=None)  # off: one ENI to clean up
        await world.reconcile("multus")
        assert _series(world, "multus") == _status(world, "multus") == (1, 1, 1)
        world.label("node-1", multus="on")  # on again
        world.view.changed(uid="uid-1")
        await world.reconcile("multus")
        assert _series(world, "multus") == _status(world, "multus") == (2, 2, 1)

        world.delete("multus")
        world.view.changed(uid="uid-1")
        await world.reconcile("multus")
        wanted, _attached, _ready = _series(world, "multus")
        assert wanted == 0  # being deleted: it wants none
        await until(lambda: not world.cleanup.pending_for("multus"), within=5.0, every=0.01)
        world.view.changed(uid="uid-1")
        await world.reconcile("multus")
        assert world.nodeenis.get("multus") is None  # finalizer released
        assert _series(world, "multus") == (None, None, None)
        await world.reconcile("multus")  # the delete event's reconcile finds it gone
        assert _series(world, "multus") == (None, None, None)

        world.add_nodeeni("multus", **SELECTOR)  # made again
        await world.reconcile("multus")
        assert _series(world, "multus") == _status(world, "multus") == (2, 2, 1)
    assert _series(world, "other") == (2, 2, 1)  # untouched throughout


async def test_an_invalid_spec_reads_not_ready_with_no_wanted_series() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", deviceIndex=0, **SELECTOR)
    await world.reconcile("multus")
    assert _series(world, "multus") == (None, 0, 0)
    world.edit("multus", deviceIndex=1)  # fixed by the user
    await world.reconcile("multus")
    assert _series(world, "multus") == _status(world, "multus") == (1, 1, 1)


async def test_a_nodeeni_gone_without_our_finalizer_leaves_no_series() -> None:
    world = ReconcileWorld()
    world.add_node(0, multus="on")
    world.add_nodeeni("multus", **SELECTOR)
    await world.reconcile("multus")
    assert _series(world, "multus") == (1, 1, 1)
    world.nodeenis.delete("multus")  # its finalizer removed by hand, then deleted
    await world.reconcile("multus")
    assert _series(world, "multus") == (None, None, None)

"""Unit test for the uids a reconcile's ENI describe also carries (reconciler.py):
the NodeENIs in the work queue, not those being deleted or gone."""

from __future__ import annotations

from typing import Any, cast

from eni_controller.aws.identity import ClusterIdentity
from eni_controller.config import Config
from eni_controller.reconcile.reconciler import Reconciler, Store


class Objects:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self._by_name = {o["metadata"]["name"]: o for o in objects}

    def get(self, name: str) -> dict[str, Any] | None:
        return self._by_name.get(name)


def _nodeeni(name: str, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}", **metadata}}


def test_the_describe_carries_the_queued_nodeenis_but_not_those_being_deleted() -> None:
    store = Objects(
        _nodeeni("a"), _nodeeni("b", deletionTimestamp="2026-11-27T10:00:00Z"), _nodeeni("c")
    )
    unused: Any = None
    reconciler = Reconciler(
        config=Config(vpc_id="vpc-1"),
        nodeenis=cast(Store, store),
        nodes=unused,
        enis=unused,
        instances=unused,
        resolver=unused,
        limits=unused,
        executor=unused,
        cleanup=unused,
        writer=unused,
        events=unused,
        cluster=ClusterIdentity.known(name=None, vpc_id="vpc-1"),
        queued=lambda: ["c", "b", "gone", "a"],
    )
    assert reconciler._queued_uids() == ["uid-c", "uid-a"]

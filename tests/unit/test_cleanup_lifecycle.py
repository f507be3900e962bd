"""Unit tests: the cleanup pool's ENI lifecycle lines and Events.

Each step the pool does is one info line naming the NodeENI, node, instance and
ENI ("ENI detached", "ENI deleted") and one Normal Event on the owner through
`on_event` (ENIDetached, ENIDeleted); an ENI someone else deleted is logged as
such and raises no Event. Run against the in-memory EC2 through the real client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import structlog

from eni_controller.aws.resources import NetworkInterface
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from eni_controller.reconcile.cleanup import CleanupPool
from tests.harness.ec2_errors import client_error
from tests.harness.memory_ec2 import SECURITY_GROUP, SUBNET, MemoryEC2, unpaced_client
from tests.harness.waiting import until

INSTANCE = "i-0a0000000000000001"
LIFECYCLE_FIELDS = ("nodeeni", "node", "instance_id", "eni_id")

Event = tuple[str, str, str]  # owner, reason, message


async def _made(ec2: MemoryEC2, *, attached: bool) -> str:
    """An ENI of NodeENI `multus` for node `n0`, attached to INSTANCE at index 1 or not."""
    created = await ec2.create_network_interface(
        SubnetId=SUBNET["SubnetId"],
        Description="",
        Groups=[SECURITY_GROUP["GroupId"]],
        TagSpecifications=[
            {
                "ResourceType": "network-interface",
                "Tags": [
                    {"Key": k, "Value": v}
                    for k, v in tags.eni_tags(
                        nodeeni="multus",
                        uid="uid-1",
                        node="n0",
                        instance_id=INSTANCE,
                        subnet_id=str(SUBNET["SubnetId"]),
                        cluster_name=None,
                    ).items()
                ],
            }
        ],
    )
    eni_id: str = created["NetworkInterface"]["NetworkInterfaceId"]
    if attached:
        await ec2.attach_network_interface(
            NetworkInterfaceId=eni_id, InstanceId=INSTANCE, DeviceIndex=1
        )
    return eni_id


@contextlib.asynccontextmanager
async def _running(ec2: MemoryEC2, events: list[Event]) -> AsyncIterator[CleanupPool]:
    metrics = Metrics()
    pool = CleanupPool(
        unpaced_client(ec2, metrics=metrics),
        workers=2,
        detach_timeout=5,
        on_done=lambda _owner: None,
        metrics=metrics,
        on_event=lambda owner, reason, message: events.append((owner, reason, message)),
    )
    task = asyncio.create_task(pool.run())
    try:
        yield pool
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _lifecycle(logs: Sequence[Mapping[str, Any]]) -> list[tuple[object, ...]]:
    return [
        (line["event"], *(line.get(f) for f in LIFECYCLE_FIELDS))
        for line in logs
        if str(line["event"]).startswith("ENI ")
    ]


async def _seen(ec2: MemoryEC2, eni_id: str) -> NetworkInterface:
    """The ENI as a submitter's describe shows it."""
    client = unpaced_client(ec2, metrics=Metrics())
    (seen,) = await client.describe_network_interfaces(filters={}, eni_ids=[eni_id])
    return seen


async def _cleaned(
    ec2: MemoryEC2, seen: NetworkInterface
) -> tuple[list[tuple[object, ...]], list[Event]]:
    """The lifecycle lines logged and the Events raised while the pool cleans `seen`."""
    events: list[Event] = []
    with structlog.testing.capture_logs() as logs:
        async with _running(ec2, events) as pool:
            pool.submit(seen, nodeeni="multus")
            await until(lambda: not pool.pending(seen.eni_id), within=5, every=0.01)
    return _lifecycle(logs), events


class _RefusingEC2(MemoryEC2):
    """The in-memory EC2, refusing the next delete while `refuse_next` is set."""

    refuse_next = False

    async def delete_network_interface(self, **params: Any) -> dict[str, Any]:
        if self.refuse_next:
            self.refuse_next = False
            raise client_error("UnauthorizedOperation", action="DeleteNetworkInterface")
        return await super().delete_network_interface(**params)


async def test_an_attached_eni_is_detached_then_deleted_one_line_and_event_each() -> None:
    ec2 = MemoryEC2([INSTANCE])
    eni_id = await _made(ec2, attached=True)
    lines, events = await _cleaned(ec2, await _seen(ec2, eni_id))
    assert eni_id not in ec2.enis
    assert lines == [
        ("ENI detached", "multus", "n0", INSTANCE, eni_id),
        ("ENI deleted", "multus", "n0", INSTANCE, eni_id),
    ]
    assert events == [
        ("multus", "ENIDetached", f"detached {eni_id} from node n0"),
        ("multus", "ENIDeleted", f"deleted {eni_id}"),
    ]


async def test_an_unattached_eni_is_only_deleted() -> None:
    ec2 = MemoryEC2([INSTANCE])
    eni_id = await _made(ec2, attached=False)
    lines, events = await _cleaned(ec2, await _seen(ec2, eni_id))
    # an unattached ENI's instance is its tag's: the one it was made for
    assert lines == [("ENI deleted", "multus", "n0", INSTANCE, eni_id)]
    assert events == [("multus", "ENIDeleted", f"deleted {eni_id}")]


@pytest.mark.parametrize("pool_describes", [True, False], ids=["at-describe", "at-delete"])
async def test_an_eni_someone_else_deleted_is_logged_so_without_an_event(
    pool_describes: bool,
) -> None:
    ec2 = _RefusingEC2([INSTANCE])
    eni_id = await _made(ec2, attached=False)
    seen = await _seen(ec2, eni_id)
    await ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    # refused, the delete is retried after a describe of its own, which finds none
    ec2.refuse_next = pool_describes
    (line,), events = await _cleaned(ec2, seen)
    assert ec2.calls["DescribeNetworkInterfaces"] == (2 if pool_describes else 1)
    assert line[0] == "ENI already deleted"
    assert line[-1] == eni_id
    assert events == []

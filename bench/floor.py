"""The floor: the fewest EC2 calls that give N nodes their ENIs, and nothing else.

A bare aiobotocore script with no Kubernetes, no planning, no describes, no
retries: per ENI CreateNetworkInterface (with the tags the contract requires on
every ENI, the controller's own tag set and description, so both make the same
requests) + AttachNetworkInterface + ModifyNetworkInterfaceAttribute
(DeleteOnTermination), and on teardown DetachNetworkInterface +
DeleteNetworkInterface. It runs at the
controller's concurrency against the same moto server, so the
controller/floor ratio says what the controller costs on top of the EC2 work
itself — the figure a seed-style in-process mock cannot give.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig

from eni_controller.aws.ec2 import eni_tag_specifications
from eni_controller.model import default_eni_description
from eni_controller.reconcile import tags
from tests.harness.ec2world import FAKE_CREDENTIALS

# the floor's ENIs carry the controller's tags under a NodeENI uid no cluster has
FLOOR_NODEENI = "floor"
FLOOR_UID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True, kw_only=True, slots=True)
class FloorSlot:
    instance_id: str
    subnet_id: str
    device_index: int


@dataclass(frozen=True, kw_only=True, slots=True)
class FloorResult:
    enis: int
    create_concurrency: int
    delete_concurrency: int
    create_seconds: float
    delete_seconds: float
    errors: int

    @property
    def enis_per_second(self) -> float:
        return self.enis / self.create_seconds if self.create_seconds else 0.0


async def _bounded(
    work: Sequence[Callable[[], Awaitable[None]]], *, concurrency: int
) -> tuple[float, int]:
    """Run every item with at most `concurrency` in flight; (seconds, failures)."""
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(item: Callable[[], Awaitable[None]]) -> None:
        nonlocal failures
        async with gate:
            try:
                await item()
            except Exception:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(item) for item in work))
    return time.perf_counter() - start, failures


async def run_floor(
    *,
    endpoint: str,
    region: str,
    slots: Sequence[FloorSlot],
    security_group_id: str,
    create_concurrency: int,
    delete_concurrency: int,
) -> FloorResult:
    """Create + attach + modify every slot, then detach + delete them all."""
    boto_config = BotoConfig(
        retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=64
    )
    async with get_session().create_client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        config=boto_config,
        **FAKE_CREDENTIALS,
    ) as ec2:
        made: list[tuple[str, str]] = []  # (eni id, attachment id)

        def create(slot: FloorSlot) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                node = f"floor-{slot.instance_id}"
                made_tags = tags.eni_tags(
                    nodeeni=FLOOR_NODEENI,
                    uid=FLOOR_UID,
                    node=node,
                    instance_id=slot.instance_id,
                    subnet_id=slot.subnet_id,
                    cluster_name=None,
                )
                eni: dict[str, Any] = await ec2.create_network_interface(
                    SubnetId=slot.subnet_id,
                    Groups=[security_group_id],
                    Description=default_eni_description(node),
                    TagSpecifications=eni_tag_specifications(made_tags),
                )
                eni_id = eni["NetworkInterface"]["NetworkInterfaceId"]
                attached = await ec2.attach_network_interface(
                    NetworkInterfaceId=eni_id,
                    InstanceId=slot.instance_id,
                    DeviceIndex=slot.device_index,
                )
                await ec2.modify_network_interface_attribute(
                    NetworkInterfaceId=eni_id,
                    Attachment={
                        "AttachmentId": attached["AttachmentId"],
                        "DeleteOnTermination": True,
                    },
                )
                made.append((eni_id, attached["AttachmentId"]))

            return go

        def delete(eni_id: str, attachment_id: str) -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                await ec2.detach_network_interface(AttachmentId=attachment_id, Force=True)
                await ec2.delete_network_interface(NetworkInterfaceId=eni_id)

            return go

        create_seconds, create_errors = await _bounded(
            [create(s) for s in slots], concurrency=create_concurrency
        )
        delete_seconds, delete_errors = await _bounded(
            [delete(e, a) for e, a in made], concurrency=delete_concurrency
        )
    return FloorResult(
        enis=len(made),
        create_concurrency=create_concurrency,
        delete_concurrency=delete_concurrency,
        create_seconds=round(create_seconds, 3),
        delete_seconds=round(delete_seconds, 3),
        errors=create_errors + delete_errors,
    )

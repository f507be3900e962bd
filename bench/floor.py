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

Under EC2's own latencies (`settle=True`) an attachment is `attaching` for a
while and a detached ENI is `in-use` until EC2 frees it (and refuses its
delete until then), so no client is done without asking: the floor then also
waits for each ENI to be `attached` (create) and `available` (before its
delete), with one poller for all of them (`_Transitions`: one describe per
200 waiting ENIs, in parallel, each round as soon as the last one answered and
at most every POLL_SECONDS). A wait holds no concurrency slot, as the
controller's requeue and its cleanup pool's parking hold no worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig

from eni_controller.aws.ec2 import eni_tag_specifications
from eni_controller.reconcile import tags
from eni_controller.spec import default_eni_description
from tests.harness.ec2world import FAKE_CREDENTIALS

# the floor's ENIs carry the controller's tags under a NodeENI uid no cluster has
FLOOR_NODEENI = "floor"
FLOOR_UID = "00000000-0000-4000-8000-000000000000"
POLL_SECONDS = 0.1  # the controller's quickest poll (cleanup's POLL_START_SECONDS)
IDS_PER_DESCRIBE = 200  # EC2's limit on the values of one filter


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
    describes: int = 0  # the waits' polls (settle only)

    @property
    def enis_per_second(self) -> float:
        return self.enis / self.create_seconds if self.create_seconds else 0.0


Work = Callable[[asyncio.Semaphore], Awaitable[None]]


async def _bounded(work: Sequence[Work], *, concurrency: int) -> tuple[float, int]:
    """Run every item, each making its EC2 calls under a gate of `concurrency`
    (a wait for EC2 outside it); (seconds, failures)."""
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(item: Work) -> None:
        nonlocal failures
        try:
            await item(gate)
        except Exception:
            failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(item) for item in work))
    return time.perf_counter() - start, failures


Describe = Callable[..., Awaitable[dict[str, Any]]]


def _attached(eni: dict[str, Any]) -> bool:
    return bool(eni.get("Attachment", {}).get("Status") == "attached")


def _available(eni: dict[str, Any]) -> bool:
    return bool(eni.get("Status") == "available")


class _Transitions:
    """Waits for EC2 to move ENIs: one poller, one describe per IDS_PER_DESCRIBE
    waiting ENIs per round. An ENI is waited for once at a time."""

    def __init__(self, describe: Describe) -> None:
        self._describe = describe
        self._waiting: dict[str, tuple[Callable[[dict[str, Any]], bool], asyncio.Future[None]]]
        self._waiting = {}
        self._wake = asyncio.Event()
        self._failed: Exception | None = None
        self.polls = 0

    async def until(self, eni_id: str, done: Callable[[dict[str, Any]], bool]) -> None:
        if self._failed is not None:
            raise self._failed
        future = asyncio.get_running_loop().create_future()
        self._waiting[eni_id] = (done, future)
        self._wake.set()
        await future

    async def run(self) -> None:
        """Poll until cancelled; a describe that fails fails every wait (the floor
        retries nothing), this one's and those to come."""
        try:
            await self._poll()
        except Exception as err:
            self._failed = err
            for _done, future in self._waiting.values():
                future.set_exception(err)
            self._waiting.clear()
            raise

    async def _poll(self) -> None:
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            ids = sorted(self._waiting)
            chunks = [ids[i : i + IDS_PER_DESCRIBE] for i in range(0, len(ids), IDS_PER_DESCRIBE)]
            started = time.perf_counter()
            pages = await asyncio.gather(
                *(
                    self._describe(Filters=[{"Name": "network-interface-id", "Values": c}])
                    for c in chunks
                )
            )
            self.polls += len(chunks)
            for page in pages:
                for eni in page["NetworkInterfaces"]:
                    entry = self._waiting.get(eni["NetworkInterfaceId"])
                    if entry is not None and entry[0](eni):
                        del self._waiting[eni["NetworkInterfaceId"]]
                        entry[1].set_result(None)
            await asyncio.sleep(max(0.0, POLL_SECONDS - (time.perf_counter() - started)))


async def run_floor(
    *,
    endpoint: str,
    region: str,
    slots: Sequence[FloorSlot],
    security_group_id: str,
    create_concurrency: int,
    delete_concurrency: int,
    settle: bool = False,
) -> FloorResult:
    """Create + attach + modify every slot, then detach + delete them all;
    `settle`: wait for `attached` after each attach, `available` before each delete."""
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
        transitions = _Transitions(ec2.describe_network_interfaces)

        def create(slot: FloorSlot) -> Work:
            async def go(gate: asyncio.Semaphore) -> None:
                node = f"floor-{slot.instance_id}"
                made_tags = tags.eni_tags(
                    nodeeni=FLOOR_NODEENI,
                    uid=FLOOR_UID,
                    node=node,
                    instance_id=slot.instance_id,
                    subnet_id=slot.subnet_id,
                    cluster_name=None,
                )
                async with gate:
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
                if settle:
                    await transitions.until(eni_id, _attached)

            return go

        def delete(eni_id: str, attachment_id: str) -> Work:
            async def go(gate: asyncio.Semaphore) -> None:
                async with gate:
                    await ec2.detach_network_interface(AttachmentId=attachment_id, Force=True)
                if settle:
                    await transitions.until(eni_id, _available)
                async with gate:
                    await ec2.delete_network_interface(NetworkInterfaceId=eni_id)

            return go

        poller = asyncio.create_task(transitions.run())
        try:
            create_seconds, create_errors = await _bounded(
                [create(s) for s in slots], concurrency=create_concurrency
            )
            delete_seconds, delete_errors = await _bounded(
                [delete(e, a) for e, a in made], concurrency=delete_concurrency
            )
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await poller  # a failure of its was each wait's, counted there
    return FloorResult(
        enis=len(made),
        create_concurrency=create_concurrency,
        delete_concurrency=delete_concurrency,
        create_seconds=round(create_seconds, 3),
        delete_seconds=round(delete_seconds, 3),
        errors=create_errors + delete_errors,
        describes=transitions.polls,
    )

"""An in-memory EC2 with the three calls the cleanup pool makes, for its unit tests.

Detaching is asynchronous, as on AWS: a detach marks the attachment
`detaching`, and the next describe of the ENI sees it `available`, unless the
ENI is stuck (never detaches) or stubborn (detaches only when forced). A detach
naming an attachment that is no longer the ENI's answers AttachmentNotFound,
and a delete of an attached ENI answers InUse, as AWS does. `hold` pauses a
call until the test lets it go, `fail_once` makes one call fail. `CleanupCalls`
counts the pool's detach and delete calls in flight at once, in any EC2.

Kept beside memory_ec2.MemoryEC2 because that one detaches at once: the
pool's detach-wait-delete sequence needs EC2's asynchronous detach.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from eni_controller.aws import errors
from eni_controller.aws.resources import ENIAttachment, NetworkInterface
from eni_controller.metrics import Metrics
from tests.harness.resources import network_interface


def attached_eni(
    n: int, *, instance_id: str = "i-1", device_index: int = 1, status: str = "attached"
) -> NetworkInterface:
    """`eni-000n`, attached (attachment `eni-attach-000n`) to `instance_id`."""
    return network_interface(
        f"eni-{n:04d}",
        attachment=ENIAttachment(
            attachment_id=f"eni-attach-{n:04d}",
            instance_id=instance_id,
            device_index=device_index,
            status=status,
            delete_on_termination=True,
        ),
    )


class CleanupCalls:
    """The most detach and delete calls in flight at once, as the pool reports each
    one to `metrics` (so never more than it has workers)."""

    def __init__(self, metrics: Metrics, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = self.most = 0
        operation = metrics.eni_operation

        @contextlib.contextmanager
        def counted(name: str) -> Iterator[None]:
            step = 1 if name in ("detach", "delete") else 0
            with operation(name):
                self.now += step
                self.most = max(self.most, self.now)
                try:
                    yield
                finally:
                    self.now -= step

        monkeypatch.setattr(metrics, "eni_operation", counted)


class CleanupEC2:
    def __init__(
        self,
        enis: Sequence[NetworkInterface],
        *,
        stuck: Sequence[str] = (),
        stubborn: Sequence[str] = (),
    ) -> None:
        self.enis = {e.eni_id: e for e in enis}
        self.stuck = set(stuck)  # never detach
        self.stubborn = set(stubborn)  # detach only when forced
        self.calls: Counter[str] = Counter()
        self.polls = 0  # describes filtered by status: the pool's waits for detachment
        self.describe_sizes: list[int] = []
        self.asked: Counter[str] = Counter()  # describes that named the ENI
        self.detached: Counter[str] = Counter()  # detaches that took effect, by ENI
        self.detaches: list[tuple[str, bool]] = []  # (ENI id, force) of each of them
        self.deletes: list[str] = []  # ENIs deleted (NotFound answers are not listed)
        self.answered = 0  # ENIs in describe answers
        self.held: dict[tuple[str, str], asyncio.Event] = {}
        self.entered: Counter[tuple[str, str]] = Counter()
        self.failing: dict[tuple[str, str], errors.EC2Error] = {}

    def hold(self, action: str, eni_id: str) -> asyncio.Event:
        """Make `action` ("detach" or "delete") on `eni_id` wait until the event is set;
        `entered[(action, eni_id)]` counts the calls that started waiting."""
        gate = self.held[(action, eni_id)] = asyncio.Event()
        return gate

    def fail_once(self, action: str, eni_id: str, error: errors.EC2Error) -> None:
        """The next `action` on `eni_id` (after any hold) raises `error`, with no effect."""
        self.failing[(action, eni_id)] = error

    def attach(self, eni_id: str, *, instance_id: str, attachment_id: str) -> None:
        """Someone else attaches the ENI (a new attachment)."""
        eni = self.enis[eni_id]
        attachment = ENIAttachment(
            attachment_id=attachment_id,
            instance_id=instance_id,
            device_index=1,
            status="attached",
            delete_on_termination=False,
        )
        self.enis[eni_id] = replace(eni, attachment=attachment, status="in-use")

    async def _gate(self, action: str, eni_id: str) -> None:
        gate = self.held.get((action, eni_id))
        if gate is not None:
            self.entered[(action, eni_id)] += 1
            await gate.wait()
        error = self.failing.pop((action, eni_id), None)
        if error is not None:
            raise error

    async def describe_network_interfaces(
        self, *, filters: Any, eni_ids: Sequence[str] = ()
    ) -> list[NetworkInterface]:
        self.calls["describe"] += 1
        self.describe_sizes.append(len(eni_ids))
        self.asked.update(eni_ids)
        for eni_id in eni_ids:  # a detach requested earlier is seen done by the next describe
            eni = self.enis.get(eni_id)
            detaching = eni is not None and eni.attachment and eni.attachment.status == "detaching"
            if eni is not None and detaching and eni_id not in self.stuck | self.stubborn:
                self.enis[eni_id] = replace(eni, attachment=None, status="available")
        statuses = filters.get("status")
        if statuses is not None:
            self.polls += 1
        answer = [
            e
            for i in eni_ids
            if (e := self.enis.get(i)) is not None and (statuses is None or e.status in statuses)
        ]
        self.answered += len(answer)
        return answer

    async def detach_network_interface(self, *, attachment_id: str, force: bool = True) -> None:
        self.calls["detach"] += 1
        await asyncio.sleep(0)
        eni = next(
            (
                e
                for e in self.enis.values()
                if e.attachment and e.attachment.attachment_id == attachment_id
            ),
            None,
        )
        if eni is None or eni.attachment is None:
            raise errors.AttachmentNotFound(
                action="DetachNetworkInterface", code="InvalidAttachmentID.NotFound"
            )
        await self._gate("detach", eni.eni_id)
        self.detached[eni.eni_id] += 1
        self.detaches.append((eni.eni_id, force))
        if force and eni.eni_id in self.stubborn:
            self.stubborn.discard(eni.eni_id)
        self.enis[eni.eni_id] = replace(
            eni, attachment=replace(eni.attachment, status="detaching"), status="detaching"
        )

    async def delete_network_interface(self, *, eni_id: str) -> None:
        self.calls["delete"] += 1
        await asyncio.sleep(0)
        await self._gate("delete", eni_id)
        eni = self.enis.get(eni_id)
        if eni is None:
            raise errors.ENINotFound(
                action="DeleteNetworkInterface", code="InvalidNetworkInterfaceID.NotFound"
            )
        if eni.attachment is not None:
            raise errors.InUse(
                action="DeleteNetworkInterface", code="InvalidNetworkInterface.InUse"
            )
        del self.enis[eni_id]
        self.deletes.append(eni_id)

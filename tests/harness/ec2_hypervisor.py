"""The EC2 hypervisor of an end-to-end node test: what EC2 says is attached to an
instance appears as a link in that node's network namespace.

On a real node an ENI the controller attaches shows up, seconds later, as a new
network device whose MAC is the ENI's; detached, the device goes. Here the
moto server is EC2 and each simulated node is a network namespace with its
``Hypervisor`` (tests/harness/netns.py). ``EC2Hypervisor`` is the glue: its own
loop reads EC2 every ``every`` seconds, as an observer (the realism layer
neither counts nor delays nor hides anything from these reads, so looking
changes no figure), and for each node's instance

* plugs a veth with the ENI's MAC once the ENI's attachment reads ``attached``
  to that instance;
* unplugs it once it no longer does (detaching, detached, deleted, or attached
  elsewhere).

It is the hypervisor's loop, not a test's wait: tests wait on the kernel and on
the API server, never on this object's state. Every plug and unplug is kept in
``events`` so a test can say which ENI came and went where. A failed read or
netlink call ends the loop, and leaving the ``async with`` raises it, so a
broken hypervisor fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.harness.invariants import observer_client
from tests.harness.netns import Hypervisor

POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class Plugged:
    """One change the hypervisor made: ``plugged`` False is an unplug."""

    at: float  # time.monotonic()
    instance_id: str
    eni_id: str
    mac: str
    plugged: bool


def attached_macs(enis: list[dict[str, Any]], instance_id: str) -> dict[str, str]:
    """ENI id -> MAC (lower case) of the ENIs whose attachment to ``instance_id``
    is complete: what a hypervisor would have hot-plugged into it."""
    found = {}
    for eni in enis:
        attachment = eni.get("Attachment") or {}
        if attachment.get("InstanceId") == instance_id and attachment.get("Status") == "attached":
            found[eni["NetworkInterfaceId"]] = eni["MacAddress"].lower()
    return found


@dataclass
class EC2Hypervisor:
    """Mirrors EC2's attachments of ``hosts`` (instance id -> that node's
    ``Hypervisor``) into their namespaces until the ``async with`` ends."""

    endpoint: str
    hosts: Mapping[str, Hypervisor]
    every: float = POLL_SECONDS
    events: list[Plugged] = field(default_factory=list)
    _plugged: dict[str, dict[str, str]] = field(default_factory=dict)  # instance -> eni -> mac
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EC2Hypervisor:
        self._plugged = {instance: {} for instance in self.hosts}
        self._task = asyncio.create_task(self._run(), name="ec2-hypervisor")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task  # a failure of the loop is raised here

    async def _run(self) -> None:
        ec2 = observer_client(self.endpoint)
        while True:
            enis = await asyncio.to_thread(self._describe, ec2)
            for instance_id, hypervisor in self.hosts.items():
                await self._mirror(instance_id, hypervisor, attached_macs(enis, instance_id))
            await asyncio.sleep(self.every)

    def _describe(self, ec2: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": sorted(self.hosts)}]
        )["NetworkInterfaces"]
        return found

    async def _mirror(self, instance_id: str, hypervisor: Hypervisor, now: dict[str, str]) -> None:
        plugged = self._plugged[instance_id]
        for eni_id, mac in list(plugged.items()):
            if now.get(eni_id) != mac:
                await hypervisor.unplug(mac)
                del plugged[eni_id]
                self.events.append(Plugged(time.monotonic(), instance_id, eni_id, mac, False))
        for eni_id, mac in now.items():
            if eni_id not in plugged:
                await hypervisor.plug(mac)
                plugged[eni_id] = mac
                self.events.append(Plugged(time.monotonic(), instance_id, eni_id, mac, True))

    def changes(self, eni_id: str) -> list[bool]:
        """What happened to ``eni_id``, in order: True a plug, False an unplug."""
        return [e.plugged for e in self.events if e.eni_id == eni_id]

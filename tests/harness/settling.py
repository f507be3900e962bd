"""Has a disturbed controller settled? Checks over several NodeENIs at once.

The API-server chaos cases (tests/chaos/test_apiserver.py) run several
NodeENIs through one disturbance and must say, per NodeENI and over the whole
run, that nothing was doubled or leaked and when things came right again.
`DuplicateWatch` (invariants.py) follows one uid and compares the global
CreateNetworkInterface count with the ENIs it saw, which is only exact for one
NodeENI; `FleetWatch` does the same for several uids with one describe per
sample, so sampling cost does not grow with the number of NodeENIs.

`settled` is "converged" for many NodeENIs: the invariants hold with every
wanted slot filled, each NodeENI Ready with all its attachments attached and
its status written for its latest spec (observedGeneration), and no mutating
EC2 call for `hold` seconds after. `torn_down` is the end of a
deletion: the NodeENI is gone from the API server (finalizer released) and no
ENI tagged with its uid is left in EC2.

EC2 is read with boto3 in a worker thread, so an in-process controller on the
same event loop keeps running while we look.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.model import AttachmentState
from eni_controller.reconcile import tags
from tests.harness.controller import condition, is_ready, read_nodeeni
from tests.harness.ec2world import World, ec2_client
from tests.harness.invariants import Slot, create_calls, mutating_calls, state_violations
from tests.harness.realism.control import RealismControl

FleetSlot = tuple[str, str, str]  # (NodeENI uid, node name, subnet id)


def _tags(eni: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}


def enis_of_uids(ec2: Any, uids: Collection[str]) -> list[dict[str, Any]]:
    """Every ENI tagged with one of the NodeENI `uids` (blocking; one describe)."""
    if not uids:
        return []
    found: list[dict[str, Any]] = ec2.describe_network_interfaces(
        Filters=[{"Name": f"tag:{tags.NODEENI_UID_KEY}", "Values": sorted(uids)}]
    )["NetworkInterfaces"]
    return found


def attached_count(obj: Mapping[str, Any]) -> int:
    return sum(
        a.get("status") == AttachmentState.ATTACHED
        for a in (obj.get("status") or {}).get("attachments") or []
    )


@dataclass
class FleetWatch:
    """`DuplicateWatch` over several NodeENIs: sample their ENIs every `every`
    seconds while `run()` is awaited. `coexisting` are ENIs seen in a
    (uid, node, subnet) slot that already held an older one; `unseen_creates`
    are CreateNetworkInterface calls since `start()` whose ENI was never seen
    (made and deleted between two samples, or sent twice). Exact only if no
    other NodeENI creates ENIs meanwhile."""

    world: World
    realism: RealismControl
    uids: tuple[str, ...]
    every: float = 0.25
    seen: set[str] = field(default_factory=set)
    coexisting: set[str] = field(default_factory=set)
    samples: int = 0
    ec2: Any = None
    _initial: set[str] = field(default_factory=set)
    _creates_before: int = 0
    _order: dict[str, int] = field(default_factory=dict)

    async def start(self) -> None:
        self.ec2 = await asyncio.to_thread(ec2_client, self.world.endpoint)
        self._creates_before = await asyncio.to_thread(create_calls, self.realism)
        await self.sample()
        self._initial = set(self.seen)

    async def sample(self) -> None:
        enis = await asyncio.to_thread(enis_of_uids, self.ec2, self.uids)
        self.samples += 1
        slots: dict[FleetSlot, list[str]] = {}
        for eni in enis:
            tagged = _tags(eni)
            key = (
                tagged.get(tags.NODEENI_UID_KEY, ""),
                tagged.get(tags.NODE_KEY, ""),
                eni["SubnetId"],
            )
            slots.setdefault(key, []).append(eni["NetworkInterfaceId"])
        for ids in slots.values():
            for eni_id in ids:
                self._order.setdefault(eni_id, len(self._order))
            self.seen.update(ids)
            if len(ids) > 1:
                first = min(ids, key=self._order.__getitem__)
                self.coexisting.update(i for i in ids if i != first)

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            await self.sample()
            await asyncio.sleep(self.every)

    @property
    def duplicates(self) -> int:
        return len(self.coexisting)

    @property
    def made(self) -> int:
        """ENIs first seen after `start()`."""
        return len(self.seen - self._initial)

    def creates(self) -> int:
        """CreateNetworkInterface calls since `start()` (one loopback round trip)."""
        return create_calls(self.realism) - self._creates_before

    def unseen_creates(self) -> int:
        return max(0, self.creates() - len(self.seen - self._initial))


async def _violations(
    api: client.ApiClient, ec2: Any, wanted: Mapping[str, Collection[Slot]]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Invariant violations of each NodeENI of `wanted` (by name), Ready and attached
    counts included; and the objects read."""
    objs = {name: await read_nodeeni(api, name) for name in wanted}
    uids = [obj["metadata"]["uid"] for obj in objs.values()]
    enis = await asyncio.to_thread(enis_of_uids, ec2, uids)
    problems: list[str] = []
    for name, obj in objs.items():
        uid = obj["metadata"]["uid"]
        mine = [e for e in enis if _tags(e).get(tags.NODEENI_UID_KEY) == uid]
        problems += state_violations(obj, mine, wanted=wanted[name])
        if not is_ready(obj):
            problems.append(f"{name}: not Ready: {condition(obj, 'Ready')}")
        generation = obj["metadata"].get("generation")
        observed = (obj.get("status") or {}).get("observedGeneration")
        if observed != generation:
            problems.append(f"{name}: status observed generation {observed} of {generation}")
        if attached_count(obj) != len(wanted[name]):
            problems.append(
                f"{name}: {attached_count(obj)} of {len(wanted[name])} attachments attached"
            )
    return problems, objs


async def settled(
    api: client.ApiClient,
    realism: RealismControl,
    ec2: Any,
    wanted: Mapping[str, Collection[Slot]],
    *,
    since: float,
    within: float,
    hold: float = 1.0,
) -> tuple[float | None, list[str]]:
    """Seconds from `since` (a time.monotonic()) until every NodeENI of `wanted`
    (name → its wanted (node, subnet id) slots) is converged and stays so, with no
    mutating EC2 call, for `hold` seconds; None and what was still wrong if that
    did not happen by `since + within`."""
    deadline = since + within
    while True:
        problems, objs = await _violations(api, ec2, wanted)
        if not problems:
            converged = time.monotonic() - since
            calls = await asyncio.to_thread(mutating_calls, realism)
            await asyncio.sleep(hold)
            problems, objs = await _violations(api, ec2, wanted)
            if not problems and await asyncio.to_thread(mutating_calls, realism) == calls:
                return converged, []
        if time.monotonic() >= deadline:
            statuses = [f"{name} status: {obj.get('status')}" for name, obj in objs.items()]
            return None, [*problems, *statuses]
        await asyncio.sleep(0.25)


async def _exists(api: client.ApiClient, name: str) -> bool:
    try:
        await client.CustomObjectsApi(api).get_cluster_custom_object(
            model.GROUP, model.VERSION, model.PLURAL, name
        )
    except ApiException as err:
        if err.status == HTTPStatus.NOT_FOUND:
            return False
        raise
    return True


async def torn_down(
    api: client.ApiClient,
    ec2: Any,
    uids: Mapping[str, str],
    *,
    since: float,
    within: float,
) -> tuple[float | None, list[str]]:
    """Seconds from `since` until every NodeENI of `uids` (name → uid) is gone from
    the API server and no ENI tagged with its uid is left; None and what was left
    if that did not happen by `since + within`."""
    deadline = since + within
    while True:
        left = [name for name in uids if await _exists(api, name)]
        enis = await asyncio.to_thread(enis_of_uids, ec2, list(uids.values()))
        if not left and not enis:
            return time.monotonic() - since, []
        if time.monotonic() >= deadline:
            by_uid = {uid: name for name, uid in uids.items()}
            return None, [
                *(f"{name}: still in the API server" for name in left),
                *(
                    f"{by_uid.get(_tags(e).get(tags.NODEENI_UID_KEY, ''), '?')}: "
                    f"{e['NetworkInterfaceId']} left ({e['Status']})"
                    for e in enis
                ),
            ]
        await asyncio.sleep(0.25)

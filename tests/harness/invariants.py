"""The final invariant check of a chaos case: EC2, a NodeENI's status and the
tags agree. Reusable by any test that wants to say "nothing leaked, nothing doubled".

For a NodeENI:

- every status attachment's ENI exists in EC2 and is attached to the status's
  instance at the status's device index;
- every ENI tagged with the NodeENI's uid is listed in its status (a `grace`
  forgives what the controller has not written yet);
- at most one ENI per (node, subnet) slot, attached or not.

`nodeeni_violations` returns human-readable violations, empty when all hold.
`DuplicateWatch` samples EC2 during a run, because a duplicate that was
created and deleted again is gone by the final check: it records ENIs that
shared a slot and compares CreateNetworkInterface calls with the ENIs seen.
`wait_converged` and `wait_torn_down` wait for the end state after the last disturbance.

Beside a NodeENI's own ENIs, a case may plant `Neighbours` (`plant_neighbours`):
an orphan of this cluster, which the orphan sweep must reclaim, and ENIs with
the managed-by tag that are not this cluster's to take (another cluster's, one
without a cluster tag), which must be left alone whatever happens;
`neighbour_violations` says which of those held.

From the realism layer's call journal (every mutating call, its caller and
its ENI): `created_by_slot` (the distinct ENIs creates returned per slot: more
than one is a duplicate even if it was deleted again, a ClientToken replay
that returned the same ENI is not), `create_replays`, and `acted_twice`
(ENIs that got the same action from two controller processes).

EC2 is read with boto3 (`ec2_client`) in a worker thread, so an in-process
controller on the same event loop keeps running while we look, and as an
observer: the realism layer does not count, throttle or fail these reads, nor
hide a new ENI from them, so looking changes no figure a case measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.model import AttachmentState
from eni_controller.reconcile import tags
from eni_controller.reconcile.status_fit import COMPACT_STATUS
from tests.harness.controller import condition, is_ready, read_nodeeni
from tests.harness.ec2world import World, create_tagged_eni, ec2_client
from tests.harness.realism.control import RealismControl

Slot = tuple[str, str]  # (node name, subnet id)


def observer_client(endpoint: str) -> Any:
    """An EC2 client whose reads the realism layer leaves out of every figure."""
    return ec2_client(endpoint, observer=True)


def tagged_enis(ec2: Any, uid: str) -> list[dict[str, Any]]:
    """Every ENI tagged with the NodeENI `uid`, as EC2 has it now (blocking)."""
    found: list[dict[str, Any]] = ec2.describe_network_interfaces(
        Filters=[{"Name": f"tag:{tags.NODEENI_UID_KEY}", "Values": [uid]}]
    )["NetworkInterfaces"]
    return found


def _tags(eni: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}


def slots_of(enis: Sequence[Mapping[str, Any]]) -> dict[Slot, list[str]]:
    """ENI ids by (Node tag, subnet), attached or not."""
    slots: dict[Slot, list[str]] = {}
    for eni in enis:
        node, subnet, _ = _slot_on_instance(eni)
        slots.setdefault((node, subnet), []).append(eni["NetworkInterfaceId"])
    return slots


def _slot_on_instance(eni: Mapping[str, Any]) -> tuple[str, str, str]:
    """(Node tag, subnet, InstanceID tag): a node re-created on a new instance gets
    new ENIs there while its old instance's are cleaned up, and those are not
    duplicates of each other."""
    tagged = _tags(eni)
    return tagged.get(tags.NODE_KEY, ""), eni["SubnetId"], tagged.get(tags.INSTANCE_KEY, "")


def state_violations(
    obj: Mapping[str, Any],
    enis: Sequence[Mapping[str, Any]],
    *,
    wanted: Collection[Slot] | None = None,
) -> list[str]:
    """The violations between one NodeENI `obj` and its tagged `enis` (pure).

    With `wanted`, also: each wanted slot holds an ENI and no other slot does.
    """
    name = obj["metadata"]["name"]
    by_id = {e["NetworkInterfaceId"]: e for e in enis}
    attachments = (obj.get("status") or {}).get("attachments") or []
    # a compact status (reconcile/status_fit.py) names no instance per entry
    compact = condition(dict(obj), COMPACT_STATUS).get("status") == "True"
    listed: set[str] = set()
    problems: list[str] = []
    for item in attachments:
        eni_id = item.get("eniID", "")
        listed.add(eni_id)
        eni = by_id.get(eni_id)
        if eni is None:
            problems.append(f"{name}: status lists {eni_id} on {item.get('nodeID')}, not in EC2")
            continue
        attachment = eni.get("Attachment") or {}
        if not compact and attachment.get("InstanceId") != item.get("instanceID"):
            problems.append(
                f"{name}: {eni_id} attached to {attachment.get('InstanceId')}, "
                f"status says {item.get('instanceID')}"
            )
        elif attachment.get("DeviceIndex") != item.get("deviceIndex"):
            problems.append(
                f"{name}: {eni_id} at device index {attachment.get('DeviceIndex')}, "
                f"status says {item.get('deviceIndex')}"
            )
    for eni_id in sorted(set(by_id) - listed):
        problems.append(f"{name}: {eni_id} is tagged with its uid but not in its status")
    slots = slots_of(enis)
    for (node, subnet), ids in sorted(slots.items()):
        if len(ids) > 1:
            problems.append(f"{name}: {len(ids)} ENIs in slot ({node}, {subnet}): {sorted(ids)}")
    status_slots: dict[Slot, int] = {}
    for item in attachments:
        # a compact entry names no subnet: the ENI's own, as EC2 has it
        in_ec2 = by_id.get(item.get("eniID", "")) or {}
        key = (item.get("nodeID", ""), str(item.get("subnetID") or in_ec2.get("SubnetId", "")))
        status_slots[key] = status_slots.get(key, 0) + 1
    for (node, subnet), count in sorted(status_slots.items()):
        if count > 1:
            problems.append(f"{name}: status lists {count} ENIs for ({node}, {subnet})")
    if wanted is not None:
        for node, subnet in sorted(set(wanted) - set(slots)):
            problems.append(f"{name}: no ENI in wanted slot ({node}, {subnet})")
        for node, subnet in sorted(set(slots) - set(wanted)):
            problems.append(
                f"{name}: ENI(s) {slots[(node, subnet)]} in unwanted slot ({node}, {subnet})"
            )
    return problems


async def nodeeni_violations(
    api: client.ApiClient,
    world: World,
    name: str,
    *,
    grace: float = 0.0,
    wanted: Collection[Slot] | None = None,
    ec2: Any = None,
) -> list[str]:
    """The NodeENI `name`'s violations; [] when EC2, its status and tags agree.

    A violation is one only if it lasts: the check is repeated every 0.5 s for
    up to `grace` seconds and the last answer returned (0: look once).
    """
    ec2 = ec2 if ec2 is not None else await asyncio.to_thread(observer_client, world.endpoint)
    deadline = time.monotonic() + grace
    while True:
        obj = await read_nodeeni(api, name)
        enis = await asyncio.to_thread(tagged_enis, ec2, obj["metadata"]["uid"])
        problems = state_violations(obj, enis, wanted=wanted)
        if not problems or time.monotonic() >= deadline:
            return problems
        await asyncio.sleep(0.5)


def instance_devices(ec2: Any, instance_id: str) -> list[str]:
    """What EC2 says occupies `instance_id`'s device indexes, both ways it can be
    asked (DescribeInstances, DescribeNetworkInterfaces): for a failure message."""
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    (instance,) = reservation["Instances"]
    seen = [
        f"instance view: {n['NetworkInterfaceId']} index {n['Attachment']['DeviceIndex']} "
        f"{n['Attachment'].get('Status')}"
        for n in instance.get("NetworkInterfaces", [])
    ]
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    seen += [
        f"ENI view: {e['NetworkInterfaceId']} index {e['Attachment'].get('DeviceIndex')} "
        f"{e['Attachment'].get('Status')} uid={_tags(e).get(tags.NODEENI_UID_KEY)}"
        for e in enis
    ]
    return seen


def create_calls(realism: RealismControl) -> int:
    """CreateNetworkInterface requests, refused, failed and replayed ones included."""
    return realism.calls().get("CreateNetworkInterface", 0)


def enis_created(realism: RealismControl) -> int:
    """ENIs EC2 really made: a create refused (throttled, 5xx) made none, and one
    replaying its ClientToken (sent again after a lost answer) made none more."""
    return realism.enis_created()


def mutating_calls(realism: RealismControl) -> int:
    """EC2 calls that change something (the realism layer's own split: not Describe*)."""
    return sum(n for action, n in realism.calls().items() if not action.startswith("Describe"))


@dataclass
class DuplicateWatch:
    """Duplicates over a whole run: sample the NodeENI `uid`'s ENIs every `every`
    seconds while `run()` is awaited; `coexisting` are ENIs seen in a slot (a
    node's subnet on one instance) that already held an older one, `seen` every
    ENI id seen. An ENI EC2 made whose id
    was never seen (made and deleted between two samples) shows in
    `unseen_creates`; create requests that made nothing (refused, failed, or a
    ClientToken replay after a lost answer) are not counted as made."""

    world: World
    uid: str
    realism: RealismControl
    every: float = 0.25
    seen: set[str] = field(default_factory=set)
    coexisting: set[str] = field(default_factory=set)
    samples: int = 0
    ec2: Any = None
    _initial: set[str] = field(default_factory=set)
    _created_before: int = 0
    _requests_before: int = 0
    _order: dict[str, int] = field(default_factory=dict)

    async def start(self, *, created_before: int | None = None) -> None:
        """Take the first sample. `created_before`: `enis_created` read before the
        NodeENI was created (so it had no ENIs then); every ENI seen and made since
        counts, also those made before this first sample. Without it, what the
        first sample finds is the baseline. A client may be set in `ec2`
        beforehand (building one takes a while)."""
        if self.ec2 is None:
            self.ec2 = await asyncio.to_thread(observer_client, self.world.endpoint)
        self._created_before = (
            enis_created(self.realism) if created_before is None else created_before
        )
        self._requests_before = create_calls(self.realism)
        await self.sample()
        self._initial = set(self.seen) if created_before is None else set()

    async def sample(self) -> None:
        enis = await asyncio.to_thread(tagged_enis, self.ec2, self.uid)
        self.samples += 1
        by_slot: dict[tuple[str, str, str], list[str]] = {}
        for eni in enis:
            by_slot.setdefault(_slot_on_instance(eni), []).append(eni["NetworkInterfaceId"])
        for ids in by_slot.values():
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
        """ENIs that, at some sample, shared a slot with an older one."""
        return len(self.coexisting)

    @property
    def creates(self) -> int:
        """ENIs EC2 made since `start()` (not create requests: see `enis_created`)."""
        return enis_created(self.realism) - self._created_before

    @property
    def create_requests(self) -> int:
        """CreateNetworkInterface requests since `start()`, refused and replayed ones too."""
        return create_calls(self.realism) - self._requests_before

    @property
    def unseen_creates(self) -> int:
        """ENIs made since `start()` beyond the new ones seen: made and deleted
        between two samples (or of another NodeENI made meanwhile)."""
        return max(0, self.creates - len(self.seen - self._initial))


def attached_count(obj: Mapping[str, Any]) -> int:
    """Status attachments of the NodeENI `obj` that read `attached`."""
    return sum(
        a.get("status") == AttachmentState.ATTACHED
        for a in (obj.get("status") or {}).get("attachments") or []
    )


async def wait_converged(
    api: client.ApiClient,
    world: World,
    name: str,
    *,
    wanted: Collection[Slot],
    realism: RealismControl,
    since: float,
    within: float,
    hold: float,
    ec2: Any = None,
) -> tuple[float | None, list[str]]:
    """Seconds from `since` (monotonic) until the NodeENI `name`'s invariants hold
    with every wanted slot filled, it is Ready with all of them attached, and no
    mutating EC2 call arrives for `hold` seconds after; None and what was still
    wrong if that did not happen within `within` seconds of `since`."""
    ec2 = ec2 if ec2 is not None else await asyncio.to_thread(ec2_client, world.endpoint)
    deadline = since + within
    while True:
        obj = await read_nodeeni(api, name)
        problems = await nodeeni_violations(api, world, name, wanted=wanted, ec2=ec2)
        if not is_ready(obj):
            problems.append(f"not Ready: {condition(obj, 'Ready')}")
        if attached_count(obj) != len(wanted):
            problems.append(f"{attached_count(obj)} of {len(wanted)} attachments attached")
        if not problems:
            seconds = time.monotonic() - since
            calls = await asyncio.to_thread(mutating_calls, realism)
            await asyncio.sleep(hold)
            problems = await nodeeni_violations(api, world, name, wanted=wanted, ec2=ec2)
            if not problems and await asyncio.to_thread(mutating_calls, realism) == calls:
                return seconds, []
        if time.monotonic() >= deadline:
            return None, [*problems, f"status: {obj.get('status')}"]
        await asyncio.sleep(0.25)


async def gone(api: client.ApiClient, name: str) -> bool:
    """True once the NodeENI `name` is gone from the API server."""
    try:
        await read_nodeeni(api, name)
    except ApiException as err:
        if err.status == HTTPStatus.NOT_FOUND:
            return True
        raise
    return False


async def rolled_out(api: client.ApiClient, name: str, *, count: int) -> bool:
    """True once the NodeENI `name` is Ready with `count` attachments attached."""
    obj = await read_nodeeni(api, name)
    return is_ready(obj) and attached_count(obj) == count


async def wait_torn_down(
    api: client.ApiClient,
    name: str,
    *,
    uid: str,
    ec2: Any,
    realism: RealismControl,
    since: float,
    within: float,
    hold: float,
) -> tuple[float | None, list[str]]:
    """Seconds from `since` until the deleted NodeENI `name` is gone from the API
    server (its finalizer released), no ENI carries its `uid` any more, and no
    mutating EC2 call arrives for `hold` seconds after; None and what was left
    if that did not happen within `within` seconds of `since`."""
    deadline = since + within
    while True:
        exists = not await gone(api, name)
        left = await asyncio.to_thread(tagged_enis, ec2, uid)
        problems = [f"{name} still exists"] if exists else []
        problems += [f"{len(left)} ENIs tagged with uid {uid}: {_ids(left)}"] if left else []
        if not problems:
            seconds = time.monotonic() - since
            calls = await asyncio.to_thread(mutating_calls, realism)
            await asyncio.sleep(hold)
            left = await asyncio.to_thread(tagged_enis, ec2, uid)
            if not left and await asyncio.to_thread(mutating_calls, realism) == calls:
                return seconds, []
        if time.monotonic() >= deadline:
            return None, problems
        await asyncio.sleep(0.25)


def _ids(enis: Iterable[Mapping[str, Any]], most: int = 10) -> list[str]:
    return sorted(e["NetworkInterfaceId"] for e in enis)[:most]


Journal = Sequence[Mapping[str, Any]]  # RealismControl.journal()'s entries


def created_by_slot(journal: Journal) -> dict[Slot, list[str]]:
    """The distinct ENIs successful CreateNetworkInterface calls returned, per
    (Node tag, subnet), in order of first return. A ClientToken replay returns an
    ENI already listed and adds nothing; a second ENI in a slot is a duplicate."""
    slots: dict[Slot, list[str]] = {}
    for entry in journal:
        if entry["action"] != "CreateNetworkInterface" or entry["error"] or not entry["eni_id"]:
            continue
        ids = slots.setdefault((entry["node"] or "", entry["subnet_id"] or ""), [])
        if entry["eni_id"] not in ids:
            ids.append(entry["eni_id"])
    return slots


def create_replays(journal: Journal) -> int:
    """Successful creates that returned an ENI an earlier create had returned
    (a ClientToken replay: a restarted controller re-sending a lost create)."""
    seen: set[str] = set()
    replays = 0
    for entry in journal:
        if entry["action"] != "CreateNetworkInterface" or entry["error"] or not entry["eni_id"]:
            continue
        replays += entry["eni_id"] in seen
        seen.add(entry["eni_id"])
    return replays


def acted_twice(
    journal: Journal, *, actions: Collection[str], who: Mapping[str, str]
) -> dict[str, dict[str, list[str]]]:
    """ENIs that got one of `actions` from more than one process: {ENI: {action:
    [process names]}}. `who` maps an access key to a process name; calls signed
    with other keys (the test's own) are left out. Refused calls count: the
    process acted on the ENI either way."""
    by_eni: dict[str, dict[str, list[str]]] = {}
    for entry in journal:
        name = who.get(entry["caller"])
        if entry["action"] not in actions or name is None or not entry["eni_id"]:
            continue
        names = by_eni.setdefault(entry["eni_id"], {}).setdefault(entry["action"], [])
        if name not in names:
            names.append(name)
    return {
        eni: {action: names for action, names in acts.items() if len(names) > 1}
        for eni, acts in by_eni.items()
        if any(len(names) > 1 for names in acts.values())
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class Neighbours:
    """ENIs planted beside a case's own, claimed by no NodeENI of this cluster."""

    orphan: str  # this cluster's tag: the sweep reclaims it after the grace period
    foreign: str  # another cluster's tag: never ours to take
    untagged: str  # no cluster tag (the Go controller's, or one at the default): never


def plant_neighbours(world: World, *, cluster: str, subnet: str, node: str) -> Neighbours:
    """Three unattached ENIs in `subnet`, tagged for a NodeENI that does not exist
    (blocking)."""

    def plant(cluster_name: str | None, label: str) -> str:
        return create_tagged_eni(
            world,
            subnet=subnet,
            nodeeni=f"gone-{label}",
            uid=f"gone-{label}-{cluster}",
            node=node,
            instance_id="i-00000000000000000",
            cluster_name=cluster_name,
        )

    return Neighbours(
        orphan=plant(cluster, "orphan"),
        foreign=plant(f"other-{cluster}", "foreign"),
        untagged=plant(None, "untagged"),
    )


def neighbour_violations(ec2: Any, planted: Neighbours) -> list[str]:
    """What is wrong with the planted ENIs now (blocking): the orphan still there,
    or a neighbour touched (gone, or attached)."""
    ids = [planted.orphan, planted.foreign, planted.untagged]
    found = {
        e["NetworkInterfaceId"]: e
        for e in ec2.describe_network_interfaces(
            Filters=[{"Name": "network-interface-id", "Values": ids}]
        )["NetworkInterfaces"]
    }
    problems = []
    if planted.orphan in found:
        problems.append(f"orphan {planted.orphan} of this cluster not reclaimed")
    for label, eni_id in (("foreign", planted.foreign), ("untagged", planted.untagged)):
        eni = found.get(eni_id)
        if eni is None:
            problems.append(f"{label} neighbour {eni_id} deleted")
        elif eni.get("Attachment"):
            problems.append(f"{label} neighbour {eni_id} attached")
    return problems

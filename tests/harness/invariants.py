"""The final invariant check of a chaos case: EC2, a NodeENI's status and the
tags agree. Reusable by any test that wants to say "nothing leaked, nothing doubled".

For a NodeENI:

- every status attachment's ENI exists in EC2 and is attached to the status's
  instance at the status's device index;
- every ENI tagged with the NodeENI's uid is listed in its status (a `grace`
  forgives what the controller has not written yet);
- at most one ENI per (node, subnet) slot, attached or not.

`nodeeni_violations` returns human-readable violations, empty when all hold.
`DuplicateWatch` watches one or several NodeENIs during a run, because a
duplicate that was created and deleted again is gone by the final check: it
samples EC2 for ENIs that shared a slot, and reads from the call journal the
ENIs made while an older one of their slot was alive (`overlapping`), also
those that lived only between two samples.
`wait_converged` and `wait_torn_down` wait for the end state after the last disturbance.

Beside a NodeENI's own ENIs, a case may plant `Neighbours` (`plant_neighbours`):
an orphan of this cluster, which the orphan sweep must reclaim, and ENIs with
the managed-by tag that are not this cluster's to take (another cluster's, one
without a cluster tag), which must be left alone whatever happens;
`neighbour_violations` says which of those held.

From the realism layer's call journal (every mutating call, its caller and
its ENI): `created_by_slot` (the distinct ENIs creates returned per slot: more
than one is a duplicate even if it was deleted again, a ClientToken replay
that returned the same ENI is not), `create_replays`, `acted_twice`
(ENIs that got the same action from two controller processes), and `lives`
and `overlapping` (each ENI's life from its create's arrival to its delete's
answer; ENIs born while an older one of their slot lived).

EC2 is read with boto3 (`ec2_client`) in a worker thread, so an in-process
controller on the same event loop keeps running while we look, and as an
observer: the realism layer does not count, throttle or fail these reads, nor
hide a new ENI from them, so looking changes no figure a case measures.
"""

from __future__ import annotations

import asyncio
import dataclasses
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


def enis_of_uids(ec2: Any, uids: Collection[str]) -> list[dict[str, Any]]:
    """Every ENI tagged with one of the NodeENI `uids` (blocking; one describe)."""
    if not uids:
        return []
    found: list[dict[str, Any]] = ec2.describe_network_interfaces(
        Filters=[{"Name": f"tag:{tags.NODEENI_UID_KEY}", "Values": sorted(uids)}]
    )["NetworkInterfaces"]
    return found


def tagged_enis(ec2: Any, uid: str) -> list[dict[str, Any]]:
    """Every ENI tagged with the NodeENI `uid`, as EC2 has it now (blocking)."""
    return enis_of_uids(ec2, (uid,))


def eni_tags(eni: Mapping[str, Any]) -> dict[str, str]:
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
    tagged = eni_tags(eni)
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
        f"{e['Attachment'].get('Status')} uid={eni_tags(e).get(tags.NODEENI_UID_KEY)}"
        for e in enis
    ]
    return seen


def mutating_calls(realism: RealismControl) -> int:
    """EC2 calls that change something (the realism layer's own split: not Describe*)."""
    return sum(n for action, n in realism.calls().items() if not action.startswith("Describe"))


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


CREATE = "CreateNetworkInterface"
DELETE = "DeleteNetworkInterface"
GONE = "InvalidNetworkInterfaceID.NotFound"  # a delete answered this: the ENI is gone
JournalSlot = tuple[str, str, str, str]  # (NodeENI uid, Node tag, subnet, InstanceID tag)


@dataclass(frozen=True, slots=True)
class Life:
    """One ENI's life as the journal tells it."""

    eni_id: str
    slot: JournalSlot
    seq: int  # its first successful create's place in the journal
    born: float  # that create's arrival
    died: float | None  # when a delete of it was answered; None: alive at the end


def _slot_of(create: Mapping[str, Any]) -> JournalSlot:
    return (
        create["nodeeni_uid"] or "",
        create["node"] or "",
        create["subnet_id"] or "",
        create["instance_tag"] or "",
    )


def lives(journal: Journal, *, uids: Collection[str]) -> dict[str, Life]:
    """The life of every ENI successful creates for the NodeENIs `uids` made (pure).

    It begins when its first create arrived (a ClientToken replay that returned
    it again is the same ENI; a refused or failed create made nothing) and ends
    when a delete of it was answered: successfully, or `GONE` unless a later call
    on it succeeded (a brand-new ENI inside EC2's consistency window answers
    NotFound too, and lives on). Without such a delete it lives to the journal's end:
    so does one deleted with its instance, or by an observer client (neither is
    journaled).
    """
    born: dict[str, Life] = {}
    for entry in journal:
        eni_id = entry["eni_id"]
        if (
            entry["action"] != CREATE
            or entry["error"]
            or not eni_id
            or entry.get("nodeeni_uid") not in uids
        ):
            continue
        known = born.get(eni_id)
        born[eni_id] = Life(
            eni_id=eni_id,
            slot=_slot_of(entry) if known is None else known.slot,
            seq=entry["seq"] if known is None else min(known.seq, entry["seq"]),
            born=entry["at"] if known is None else min(known.born, entry["at"]),
            died=None,
        )
    deleted: dict[str, float] = {}  # its first successful delete's answer
    gone: dict[str, Mapping[str, Any]] = {}  # its last delete answered GONE
    last_ok: dict[str, int] = {}  # the seq of its last successful call
    for entry in journal:
        eni_id = entry["eni_id"]
        if eni_id not in born:
            continue
        if entry["action"] == DELETE and entry["error"] == GONE:
            if eni_id not in gone or entry["seq"] > gone[eni_id]["seq"]:
                gone[eni_id] = entry
        elif entry["error"] is None:
            last_ok[eni_id] = max(last_ok.get(eni_id, -1), entry["seq"])
            if entry["action"] == DELETE:
                deleted[eni_id] = min(deleted.get(eni_id, entry["answered"]), entry["answered"])
    for eni_id, life in born.items():
        died = deleted.get(eni_id)
        last_gone = gone.get(eni_id)
        if died is None and last_gone is not None and last_ok[eni_id] < last_gone["seq"]:
            died = last_gone["answered"]
        if died is not None:
            born[eni_id] = dataclasses.replace(life, died=died)
    return born


def overlapping(journal: Journal, *, uids: Collection[str], since: int = 0) -> set[str]:
    """ENIs (ids) the NodeENIs `uids` got while an older ENI of the same slot (uid,
    Node tag, subnet, InstanceID tag: see `_slot_on_instance`) was still alive, by
    the `lives` the journal tells (pure): duplicates, however briefly they lived.
    `since`: only ENIs first created at or after that journal position (`seq`)."""
    by_slot: dict[JournalSlot, list[Life]] = {}
    for life in lives(journal, uids=uids).values():
        by_slot.setdefault(life.slot, []).append(life)
    found: set[str] = set()
    for group in by_slot.values():
        group.sort(key=lambda life: (life.born, life.seq))
        for i, life in enumerate(group):
            if life.seq < since:
                continue
            if any(older.died is None or older.died > life.born for older in group[:i]):
                found.add(life.eni_id)
    return found


def journal_position(realism: RealismControl) -> int:
    """The journal's next `seq`: what `DuplicateWatch.start` counts from (blocking)."""
    return len(realism.journal())


@dataclass
class DuplicateWatch:
    """Duplicates over a whole run for the NodeENIs `uids` (one or several).

    Two views, both kept: EC2 sampled every `every` seconds while `run()` is
    awaited (one describe for all uids), where `coexisting` are ENIs seen in a
    slot (uid, node, subnet, instance) that already held an older one and `seen`
    every ENI id seen; and the realism layer's call journal, read by `finish()`,
    where `overlaps` are the ENIs made since `start()` while an older one of
    their slot was alive (`overlapping`: also those made and deleted between two
    samples). `duplicate_enis` is both. `made` counts the ENIs EC2 made for the
    uids since `start()` (distinct ids successful creates returned: a ClientToken
    replay, a refused or failed create makes none), `create_requests` the
    CreateNetworkInterface requests for them, refused and replayed ones too."""

    world: World
    realism: RealismControl
    uids: tuple[str, ...]
    every: float = 0.25
    ec2: Any = None
    seen: set[str] = field(default_factory=set)
    coexisting: set[str] = field(default_factory=set)
    samples: int = 0
    journal: list[dict[str, Any]] | None = None  # read by finish(): all since the last reset
    _since: int = 0  # the journal position start() counts from
    _order: dict[str, int] = field(default_factory=dict)

    async def start(self, *, created_before: int | None = None) -> None:
        """Take the first sample and count from now. `created_before`: the
        `journal_position` read before the NodeENI was created, to count its ENIs
        made before this first sample too. A client may be set in `ec2`
        beforehand (building one takes a while)."""
        if self.ec2 is None:
            self.ec2 = await asyncio.to_thread(observer_client, self.world.endpoint)
        self._since = (
            await asyncio.to_thread(journal_position, self.realism)
            if created_before is None
            else created_before
        )
        await self.sample()

    async def sample(self) -> None:
        enis = await asyncio.to_thread(enis_of_uids, self.ec2, self.uids)
        self.samples += 1
        by_slot: dict[JournalSlot, list[str]] = {}
        for eni in enis:
            uid = eni_tags(eni).get(tags.NODEENI_UID_KEY, "")
            by_slot.setdefault((uid, *_slot_on_instance(eni)), []).append(eni["NetworkInterfaceId"])
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

    async def finish(self) -> None:
        """A last sample, then read the journal; the figures below need it."""
        await self.sample()
        self.journal = await asyncio.to_thread(self.realism.journal)

    def _journal(self) -> list[dict[str, Any]]:
        if self.journal is None:
            raise RuntimeError("DuplicateWatch.finish() reads the journal the figures need")
        return self.journal

    @property
    def overlaps(self) -> set[str]:
        return overlapping(self._journal(), uids=self.uids, since=self._since)

    @property
    def duplicate_enis(self) -> set[str]:
        return self.coexisting | self.overlaps

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_enis)

    @property
    def made(self) -> int:
        made = lives(self._journal(), uids=self.uids).values()
        return sum(life.seq >= self._since for life in made)

    @property
    def create_requests(self) -> int:
        return sum(
            e["action"] == CREATE and e["seq"] >= self._since and e["nodeeni_uid"] in self.uids
            for e in self._journal()
        )

    def overlap_entries(self) -> list[dict[str, Any]]:
        """The journal's entries about the duplicates and the other ENIs of their
        slots: what a failure shows."""
        found = lives(self._journal(), uids=self.uids)
        slots = {found[e].slot for e in self.duplicate_enis if e in found}
        enis = {e for e, life in found.items() if life.slot in slots} | self.duplicate_enis
        keys = ("seq", "at", "answered", "action", "caller", "eni_id", "error")
        return [{k: e.get(k) for k in keys} for e in self._journal() if e["eni_id"] in enis]

    def explain(self) -> str:
        """Why `duplicates` is not 0, for an assertion message."""
        return (
            f"ENIs seen sharing a slot: {sorted(self.coexisting)}; made while an older "
            f"one of their slot lived: {sorted(self.overlaps)}; their journal: "
            f"{self.overlap_entries()}"
        )


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

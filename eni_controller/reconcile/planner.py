"""The decision at the heart of the controller, as a pure function.

From one NodeENI's spec, its subnets, the Nodes, and what EC2 says about their
instances and the NodeENI's ENIs, `plan` answers which ENI fills which slot,
what to do next, what status should say, and which nodes cannot be served and
why. No I/O, no clock, no randomness: every hard case is a table of inputs.

* The guardrails (problems.py) come first: a refused slot gets no action, is
  not desired, and its ENIs are held. A guardrail never mutates EC2.
* Slot identity is (node, instance, subnet). The subnet at position p wants
  device index ``deviceIndex + p``; the executor's per-instance allocator
  settles the final index, as only it sees the other NodeENIs' attaches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from eni_controller.aws.resources import Instance, NetworkInterface, SecurityGroup, Subnet
from eni_controller.model import Attachment, AttachmentState
from eni_controller.reconcile import tags
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.problems import NodeProblem as NodeProblem
from eni_controller.reconcile.problems import ProblemReason as ProblemReason
from eni_controller.reconcile.problems import (
    TagRule,
    az_mismatch,
    guard,
    instance_not_found,
    limit_exceeded,
    not_allowed,
)
from eni_controller.spec import NodeENISpec


@dataclass(frozen=True, kw_only=True, slots=True)
class Slot:
    node: str
    instance_id: str
    subnet: Subnet
    device_index: int  # wanted; the allocator may pick another free one


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateAndAttach:
    slot: Slot


@dataclass(frozen=True, kw_only=True, slots=True)
class Attach:
    """An ENI of ours, not attached (a crash window, a failed attach): not made twice."""

    slot: Slot
    eni_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SetDeleteOnTermination:
    slot: Slot
    eni_id: str
    attachment_id: str
    value: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class SetSecurityGroups:
    slot: Slot
    eni_id: str
    group_ids: tuple[str, ...]


Action = CreateAndAttach | Attach | SetDeleteOnTermination | SetSecurityGroups


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanInput:
    nodeeni: str
    spec: NodeENISpec
    subnets: Sequence[Subnet]
    security_group_ids: Sequence[str]  # resolved from the spec's IDs and names
    nodes: Sequence[NodeView]
    instances: Mapping[str, Instance]
    max_enis: Mapping[str, int]
    enis: Sequence[NetworkInterface]  # every ENI tagged with this NodeENI's uid
    previous: Sequence[Attachment]  # status.attachments as last written
    # Nodes our ENIs' tags name, beyond `nodes`, as the informer has them (absent: deleted)
    known_nodes: Mapping[str, NodeView] = field(default_factory=dict)
    # the resolved groups of security_group_ids, for their VPC and tags (absent: unchecked)
    security_groups: Sequence[SecurityGroup] = ()
    # allow-lists; None: every subnet / group is allowed
    subnet_allow_tag: TagRule | None = None
    security_group_allow_tag: TagRule | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    attachments: tuple[Attachment, ...]  # what status should list, from EC2's facts
    problems: tuple[NodeProblem, ...]
    desired: int  # slots wanted on matching nodes that can have them
    stale: tuple[NetworkInterface, ...] = ()  # ours, no longer wanted: for the cleanup pool
    vanished: tuple[Attachment, ...] = ()  # status entries whose ENI EC2 no longer has
    # instances a status entry puts an ENI on that EC2 no longer shows there (gone by
    # hand, no event): their kept facts still count that device index as taken
    left_instances: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """Every wanted ENI attached, none still to create or attach (an attribute
        change still to make leaves the ENIs usable)."""
        attached = sum(a.status is AttachmentState.ATTACHED for a in self.attachments)
        placing = any(isinstance(a, CreateAndAttach | Attach) for a in self.actions)
        return attached == self.desired and not placing


_SlotKey = tuple[str, str, str]  # (node, instance, subnet)
_EC2_STATES = {"attaching", "attached", "detaching"}  # of an attachment, as in status
# a status entry's facts EC2 does not give: carried through from the entry before,
# the agent's refreshed from its report (eninodes.fold_reports)
_CARRIED = (
    *("dpdk_bound", "dpdk_driver", "dpdk_resource_name", "dpdk_pci_address"),
    *("interface_name", "last_updated"),
)


def plan(data: PlanInput) -> Plan:
    actions: list[Action] = []
    attachments: list[Attachment] = []
    desired = 0
    previous = {a.eni_id: a for a in data.previous}
    # ENIs by the slot their tags name: one pass, so a plan is linear in slots + ENIs
    by_slot: dict[_SlotKey, list[NetworkInterface]] = {}
    for eni in data.enis:
        by_slot.setdefault(_eni_key(eni), []).append(eni)
    used: set[str] = set()
    wanted: set[_SlotKey] = set()
    held: set[_SlotKey] = set()  # refused slots: their ENIs are left alone
    subnet_tags = {s.subnet_id: s.tags for s in data.subnets}
    group_tags = {g.group_id: g.tags for g in data.security_groups}
    refused = not_allowed("subnet", subnet_tags, rule=data.subnet_allow_tag)
    refused |= not_allowed("security group", group_tags, rule=data.security_group_allow_tag)
    problems = list(refused.values())
    for node in sorted(data.nodes, key=lambda n: n.name):
        if node.instance_id is None or not data.spec.matches(node.labels):
            continue  # not on EC2, or not selected
        instance = data.instances.get(node.instance_id)
        if instance is None:
            problems.append(instance_not_found(node.name, node.instance_id))
            continue
        if instance.gone:
            continue  # the node is leaving; cleanup, not creation
        slots = _slots(data, node.name, instance)
        if not slots:
            problems.append(az_mismatch(node.name, instance, data.subnets))
            continue
        passed, refusals = guard(
            node.name,
            instance,
            subnets=[s.subnet for s in slots],
            groups=data.security_groups,
            refused=refused,
        )
        usable = [s for s in slots if s.subnet.subnet_id in passed]
        problems += refusals
        held.update(_slot_key(s) for s in slots if s.subnet.subnet_id not in passed)
        desired += len(usable)
        limit = data.max_enis.get(instance.instance_type)
        # an unknown limit never blocks: AWS still answers AttachmentLimitExceeded
        free = len(usable) if limit is None else limit - len(instance.occupied_device_indexes)
        for slot in usable:
            key = _slot_key(slot)
            wanted.add(key)
            mine = by_slot.get(key, [])
            attached = next((e for e in mine if _attached_to(e, slot.instance_id)), None)
            if attached is not None:
                used.add(attached.eni_id)
                assert attached.attachment is not None
                attachments.append(_status_entry(attached, slot, data.spec, previous))
                if attached.attachment.delete_on_termination != data.spec.delete_on_termination:
                    actions.append(
                        SetDeleteOnTermination(
                            slot=slot,
                            eni_id=attached.eni_id,
                            attachment_id=attached.attachment.attachment_id,
                            value=data.spec.delete_on_termination,
                        )
                    )
                if sorted(attached.security_group_ids) != sorted(data.security_group_ids):
                    actions.append(
                        SetSecurityGroups(
                            slot=slot,
                            eni_id=attached.eni_id,
                            group_ids=tuple(data.security_group_ids),
                        )
                    )
                continue
            if free <= 0:
                problems.append(limit_exceeded(node.name, instance, limit))
                continue
            free -= 1
            available = next((e for e in mine if e.attachment is None), None)
            if available is None:
                actions.append(CreateAndAttach(slot=slot))
            else:
                used.add(available.eni_id)
                actions.append(Attach(slot=slot, eni_id=available.eni_id))
    filled = {_eni_key(e) for e in data.enis if e.eni_id in used}
    existing = {e.eni_id for e in data.enis}
    known = {n.name: n for n in data.nodes} | dict(data.known_nodes)
    return Plan(
        actions=tuple(actions),
        attachments=tuple(attachments),
        problems=tuple(dict.fromkeys(problems)),
        desired=desired,
        stale=tuple(
            e
            for e in data.enis
            if e.eni_id not in used
            and _stale(e, data, known, wanted=wanted, filled=filled, held=held)
        ),
        vanished=tuple(a for a in data.previous if a.eni_id not in existing),
        left_instances=_left_instances(data, known),
    )


def _left_instances(data: PlanInput, known: Mapping[str, NodeView]) -> tuple[str, ...]:
    """The instances of status entries whose ENI EC2 no longer shows attached there
    (a compact entry names no instance: the Node's providerID does)."""
    attached = {(e.eni_id, e.attachment.instance_id) for e in data.enis if e.attachment is not None}
    left: dict[str, None] = {}
    for entry in data.previous:
        node = known.get(entry.node_id)
        instance_id = entry.instance_id or (node.instance_id if node is not None else None)
        if instance_id is not None and (entry.eni_id, instance_id) not in attached:
            left[instance_id] = None
    return tuple(left)


def moved_by_someone_else(eni: NetworkInterface) -> bool:
    """Attached to an instance other than the one it was made for: never ours to touch."""
    made_for = eni.tags.get(tags.INSTANCE_KEY)
    return eni.attachment is not None and eni.attachment.instance_id != made_for


def _slot_key(slot: Slot) -> _SlotKey:
    return (slot.node, slot.instance_id, slot.subnet.subnet_id)


def _eni_key(eni: NetworkInterface) -> _SlotKey:
    return (eni.tags.get(tags.NODE_KEY, ""), eni.tags.get(tags.INSTANCE_KEY, ""), eni.subnet_id)


def _stale(
    eni: NetworkInterface,
    data: PlanInput,
    known: Mapping[str, NodeView],
    *,
    wanted: set[_SlotKey],
    filled: set[_SlotKey],
    held: set[_SlotKey],
) -> bool:
    """Whether an ENI of ours that fills no slot should go: only on evidence (its
    node deleted, unlabelled or another instance now, its instance terminating,
    its slot gone from the spec or filled by another ENI). A held slot, an unknown
    instance, a non-EC2 node or an ENI moved by someone else is never evidence."""
    node_name, instance_id, _subnet = key = _eni_key(eni)
    if moved_by_someone_else(eni):
        return False
    node = known.get(node_name)
    if node is None:
        return True
    if not node.on_ec2:
        return False
    if node.instance_id != instance_id or not data.spec.matches(node.labels):
        return True
    instance = data.instances.get(instance_id)
    if instance is None:
        return False
    if instance.gone:
        return True
    return key not in held and (key not in wanted or key in filled)


def _slots(data: PlanInput, node: str, instance: Instance) -> list[Slot]:
    return [
        Slot(
            node=node,
            instance_id=instance.instance_id,
            subnet=subnet,
            device_index=data.spec.device_index + position,
        )
        for position, subnet in enumerate(data.subnets)
        if subnet.availability_zone == instance.availability_zone
    ]


def _attached_to(eni: NetworkInterface, instance_id: str) -> bool:
    return eni.attachment is not None and eni.attachment.instance_id == instance_id


def _status_entry(
    eni: NetworkInterface, slot: Slot, spec: NodeENISpec, previous: Mapping[str, Attachment]
) -> Attachment:
    assert eni.attachment is not None
    before = previous.get(eni.eni_id)
    status = eni.attachment.status
    return Attachment(
        node_id=slot.node,
        instance_id=slot.instance_id,
        eni_id=eni.eni_id,
        attachment_id=eni.attachment.attachment_id,
        subnet_id=eni.subnet_id,
        subnet_cidr=slot.subnet.cidr,
        mac_address=eni.mac_address,
        private_ip_address=eni.private_ip_address,
        device_index=eni.attachment.device_index,
        mtu=spec.mtu,
        # EC2's "detached" (or anything new) reads as still attaching
        status=AttachmentState(status) if status in _EC2_STATES else AttachmentState.ATTACHING,
        **{name: getattr(before, name) for name in _CARRIED if before is not None},
    )

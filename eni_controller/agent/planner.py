"""What the node agent should do, and what it should report: a pure function.

``plan`` takes the node's ENINode (spec and last status), what the agent
observed of each ENI (the link carrying its MAC, its PCI device's address and
driver) and the actions held after failing, and returns the actions to take
and the status to report. No I/O, no clock: every decision is a unit test.

Invariants:

* Links not in the spec are never touched; an ENI taken out of the spec is left
  as it is; an entry without ``mtu`` leaves the MTU alone. No IP configuration,
  no renaming.
* An MTU above the link's IFLA_MAX_MTU is not attempted: the entry reports
  ``mtu N above max M``, the other ENIs are unaffected.
* A held action is not planned; its error is reported on its ENI until it
  succeeds or is no longer needed.
* DPDK: a device is bound only when not on the driver asked for already, and
  with its PCI address on record (spec or stored status), so a crash right
  after binding loses nothing. It is released only when this agent's status
  says it bound it (``dpdkBound``), the spec no longer asks for it and sysfs
  still shows a DPDK driver; until then its entry stays in the status.
* ``observedAt`` of an entry changes only when the rest of the entry changes,
  so an agent that finds what it reported last time writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from eni_controller.agent.links import LinkEvent, MACLookup, Resync
from eni_controller.eninode import (
    ENINode,
    ENINodeSpec,
    ENINodeStatus,
    InterfaceStatus,
    OperState,
    SpecProblem,
    Summary,
    WantedInterface,
    one_line_error,
)
from eni_controller.spec import DPDK_DRIVERS

NO_PCI: Final = "DPDK asked for, but this agent has no PCI device access"


@dataclass(frozen=True, slots=True, kw_only=True)
class PCIFacts:
    """The ENI's PCI device as sysfs shows it now (both None without PCI access)."""

    address: str | None = None
    driver: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What the agent found for one ENI."""

    lookup: MACLookup = field(default_factory=MACLookup)
    pci: PCIFacts = PCIFacts()


# -- actions: frozen, so that a failed one can be held by value ----------------


@dataclass(frozen=True, slots=True)
class SetMTU:
    eni_id: str
    index: int
    name: str
    mtu: int


@dataclass(frozen=True, slots=True)
class SetUp:
    eni_id: str
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class BindDPDK:
    eni_id: str
    address: str
    driver: str


@dataclass(frozen=True, slots=True)
class ReleaseDPDK:
    eni_id: str
    address: str


Action = SetMTU | SetUp | BindDPDK | ReleaseDPDK


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    actions: tuple[Action, ...]
    status: ENINodeStatus
    # the device plugin's entries: each resource name the spec uses -> the PCI addresses
    # bound for DPDK under it now (empty while none is bound yet)
    device_plugin: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One status entry being built, with whether it counts as ready."""

    status: InterfaceStatus
    ready: bool
    actions: tuple[Action, ...] = ()


def plan(
    *,
    spec: ENINodeSpec,
    spec_problems: Iterable[SpecProblem] = (),
    generation: int | None,
    previous: ENINodeStatus,
    observed: Mapping[str, Observed],
    held: Mapping[Action, str],
    pci_available: bool,
    now: str,
) -> Plan:
    """The actions to take now and the status to report. ``observed``: per ENI of the
    spec or DPDK-bound in ``previous`` (missing: nothing found); ``held``: each
    failed action still in backoff, with its error; ``now`` stamps changed entries."""
    before = previous.by_eni()
    wanted_ids = {w.eni_id for w in spec.interfaces}
    entries: list[_Entry] = []
    device_plugin: dict[str, set[str]] = {}
    for wanted in spec.interfaces:
        seen = observed.get(wanted.eni_id, Observed())
        last = before.get(wanted.eni_id)
        if wanted.dpdk is None:
            entries.append(_kernel(wanted, seen, last=last, held=held))
            continue
        entry = _dpdk(wanted, seen, last=last, held=held, pci_available=pci_available)
        entries.append(entry)
        if wanted.dpdk.resource_name is not None:
            bound = device_plugin.setdefault(wanted.dpdk.resource_name, set())
            if entry.status.dpdk_bound and entry.status.pci_address is not None:
                bound.add(entry.status.pci_address)
    for last in previous.interfaces:
        pci = observed.get(last.eni_id, Observed()).pci
        if last.eni_id not in wanted_ids and last.dpdk_bound and _dpdk_driver(pci):
            # gone from the spec: kept until its device is given back to the kernel
            entries.append(_release(last.eni_id, last.mac_address, pci, held=held))
    invalid = [_invalid(p) for p in spec_problems if p.eni_id and p.eni_id not in wanted_ids]
    entries.extend(invalid)

    interfaces = tuple(_stamp(e.status, before.get(e.status.eni_id), now) for e in entries)
    return Plan(
        actions=tuple(action for entry in entries for action in entry.actions),
        status=ENINodeStatus(
            observed_generation=generation,
            summary=Summary(
                wanted=len(spec.interfaces) + len(invalid),
                ready=sum(1 for e in entries[: len(spec.interfaces)] if e.ready),
            ),
            interfaces=interfaces,
        ),
        device_plugin={name: frozenset(addresses) for name, addresses in device_plugin.items()},
    )


def plan_for(
    node: ENINode | None,
    *,
    remembered: ENINodeStatus,
    observed: Mapping[str, Observed],
    held: Mapping[Action, str],
    pci_available: bool,
    now: str,
) -> Plan:
    """``plan`` for an ENINode as read. While it does not exist (None) nothing is
    wanted, and what ``remembered`` (the status last seen) shows bound is released."""
    return plan(
        spec=ENINodeSpec() if node is None else node.spec,
        spec_problems=() if node is None else node.spec_problems,
        generation=None if node is None else node.generation,
        previous=remembered if node is None else node.status,
        observed=observed,
        held=held,
        pci_available=pci_available,
        now=now,
    )


def _kernel(
    wanted: WantedInterface,
    seen: Observed,
    *,
    last: InterfaceStatus | None,
    held: Mapping[Action, str],
) -> _Entry:
    """An ENI the kernel's driver should keep: up, at the wanted MTU."""
    link = seen.lookup.link
    if last is not None and last.dpdk_bound and _dpdk_driver(seen.pci):
        # DPDK no longer asked for: give the device back to its kernel driver first.
        return _release(wanted.eni_id, wanted.mac_address, seen.pci, held=held)
    if link is None:
        return _Entry(_status(wanted, seen, error=seen.lookup.problem or ""), ready=False)
    errors: list[str] = []
    actions: list[Action] = []
    if wanted.mtu is not None and link.mtu != wanted.mtu:
        if link.max_mtu is not None and wanted.mtu > link.max_mtu:
            errors.append(f"mtu {wanted.mtu} above max {link.max_mtu}")
        else:
            _want(SetMTU(wanted.eni_id, link.index, link.name, wanted.mtu), held, actions, errors)
    if not link.admin_up:
        _want(SetUp(wanted.eni_id, link.index, link.name), held, actions, errors)
    status = _status(wanted, seen, error="; ".join(errors))
    ready = not errors and link.running and wanted.mtu in (None, link.mtu)
    return _Entry(status, ready=ready, actions=tuple(actions))


def _dpdk(
    wanted: WantedInterface,
    seen: Observed,
    *,
    last: InterfaceStatus | None,
    held: Mapping[Action, str],
    pci_available: bool,
) -> _Entry:
    """An ENI whose PCI device should be bound to a DPDK driver. Once bound, no link
    ties the device to the MAC: a newly found address is first reported, and bound
    on the next cycle, when the stored status shows it."""
    assert wanted.dpdk is not None
    pci = seen.pci
    if pci.driver == wanted.dpdk.driver and pci.address is not None:
        return _Entry(_bound(wanted.eni_id, wanted.mac_address, pci), ready=True)
    errors: list[str] = []
    actions: list[Action] = []
    if not pci_available:
        errors.append(NO_PCI)
    elif pci.address is None:
        errors.append(
            seen.lookup.problem
            or f"PCI address unknown: no link has MAC {wanted.mac_address}"
            " and the spec gives no pciAddress"
        )
    elif wanted.dpdk.pci_address == pci.address or (last and last.pci_address == pci.address):
        _want(BindDPDK(wanted.eni_id, pci.address, wanted.dpdk.driver), held, actions, errors)
    status = _status(wanted, seen, error="; ".join(errors))
    return _Entry(status, ready=False, actions=tuple(actions))


def _release(eni_id: str, mac: str, pci: PCIFacts, *, held: Mapping[Action, str]) -> _Entry:
    assert pci.address is not None
    release = ReleaseDPDK(eni_id, pci.address)
    status = _bound(eni_id, mac, pci, error=held.get(release, ""))
    return _Entry(status, ready=False, actions=() if release in held else (release,))


def _invalid(problem: SpecProblem) -> _Entry:
    assert problem.eni_id is not None
    status = InterfaceStatus(
        eni_id=problem.eni_id,
        mac_address=problem.mac_address,
        oper_state=OperState.ABSENT,
        error=f"invalid spec entry: {problem.message}",
    )
    return _Entry(status, ready=False)


def _want(
    action: Action, held: Mapping[Action, str], actions: list[Action], errors: list[str]
) -> None:
    """Plan ``action`` unless it failed recently; then report why it failed."""
    if action in held:
        errors.append(held[action])
    else:
        actions.append(action)


def _status(wanted: WantedInterface, seen: Observed, *, error: str) -> InterfaceStatus:
    """The entry of an ENI on a kernel driver, as its link (or its absence) shows it."""
    link, pci = seen.lookup.link, seen.pci
    absent = InterfaceStatus(
        eni_id=wanted.eni_id,
        mac_address=wanted.mac_address,
        oper_state=OperState.ABSENT,
        pci_address=pci.address,
        driver=pci.driver,
        error=error,
    )
    if link is None:
        return absent
    return replace(
        absent,
        oper_state=OperState.UP if link.running else OperState.DOWN,
        interface_name=link.name,
        pci_address=pci.address or link.pci_address,
        mtu=link.mtu,
    )


def _bound(eni_id: str, mac: str, pci: PCIFacts, *, error: str = "") -> InterfaceStatus:
    """The entry of an ENI whose device is on a DPDK driver."""
    return InterfaceStatus(
        eni_id=eni_id,
        mac_address=mac,
        oper_state=OperState.DPDK,
        pci_address=pci.address,
        driver=pci.driver,
        dpdk_bound=True,
        error=error,
    )


def _dpdk_driver(pci: PCIFacts) -> bool:
    return pci.address is not None and pci.driver in DPDK_DRIVERS


def _stamp(entry: InterfaceStatus, last: InterfaceStatus | None, now: str) -> InterfaceStatus:
    """The entry with its error on one bounded line, stamped only if its facts changed."""
    entry = replace(entry, error=one_line_error(entry.error))
    if last is not None and last.facts() == entry.facts():
        return replace(entry, observed_at=last.observed_at)
    return replace(entry, observed_at=now)


def relevant(event: LinkEvent | Resync, *, macs: frozenset[str], indexes: frozenset[int]) -> bool:
    """Whether a link event can change a decision: a link with a wanted MAC, or one
    found last time (renamed, removed). Other links (pod veths...) are ignored."""
    if isinstance(event, Resync):
        return True
    return event.link.mac in macs or event.link.index in indexes

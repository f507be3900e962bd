"""The agent's planner: actions and the status to report, from what was observed.

Each test drives ``plan`` through a sequence (do, observe the result, plan
again; undo; redo), as the agent's loop does, and checks both the actions and
the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from eni_controller.agent.links import Link, LinkEvent, MACLookup, Resync
from eni_controller.agent.planner import (
    NO_PCI,
    Action,
    BindDPDK,
    Observed,
    PCIFacts,
    Plan,
    ReleaseDPDK,
    SetMTU,
    SetUp,
    plan,
    plan_for,
    relevant,
)
from eni_controller.eninode import (
    ERROR_MAX_LENGTH,
    DPDKRequest,
    ENINode,
    ENINodeSpec,
    ENINodeStatus,
    InterfaceStatus,
    OperState,
    SpecProblem,
    Summary,
    WantedInterface,
    eninode_body,
)

A, B, C = "eni-0a000000000000001", "eni-0b000000000000002", "eni-0c000000000000003"
MAC_A, MAC_B, MAC_C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"
T0, T1, T2 = "2026-12-04T10:00:00Z", "2026-12-04T10:00:01Z", "2026-12-04T10:00:02Z"
PCI_A = "0000:00:06.0"
NO_STATUS = ENINodeStatus()


def wanted(eni: str, mac: str, index: int, **extra: object) -> WantedInterface:
    return WantedInterface(
        eni_id=eni,
        mac_address=mac,
        device_index=index,
        node_eni="multus",
        **extra,  # type: ignore[arg-type]
    )


def link(mac: str, index: int, **extra: object) -> Link:
    fields: dict[str, object] = {
        "index": index,
        "name": f"ens{index}",
        "mac": mac,
        "mtu": 1500,
        "max_mtu": 9216,
        "admin_up": False,
        "oper_state": "down",
        **extra,
    }
    return Link(**fields)  # type: ignore[arg-type]


def found(found_link: Link | None, **pci: str | None) -> Observed:
    return Observed(lookup=MACLookup(link=found_link), pci=PCIFacts(**pci))


def run(
    spec: ENINodeSpec,
    observed: Mapping[str, Observed],
    *,
    previous: ENINodeStatus = NO_STATUS,
    held: Mapping[Action, str] | None = None,
    now: str = T0,
    generation: int = 1,
    pci_available: bool = True,
) -> Plan:
    return plan(
        spec=spec,
        generation=generation,
        previous=previous,
        observed=observed,
        held=held or {},
        pci_available=pci_available,
        now=now,
    )


def applied(before: Link, actions: tuple[Action, ...]) -> Link:
    """The link after the kernel carried out ``actions`` (veth with its peer up)."""
    after = before
    for action in actions:
        if isinstance(action, SetMTU):
            after = replace(after, mtu=action.mtu)
        elif isinstance(action, SetUp):
            after = replace(after, admin_up=True, oper_state="up")
    return after


def test_a_down_link_is_brought_up_at_the_mtu_and_then_reported_ready() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001)])
    down = link(MAC_A, 6)
    first = run(spec, {A: found(down)})
    assert first.actions == (SetMTU(A, 6, "ens6", 9001), SetUp(A, 6, "ens6"))
    assert first.status.summary == Summary(wanted=1, ready=0)

    up = applied(down, first.actions)
    second = run(spec, {A: found(up)}, previous=first.status, now=T1)
    assert second.actions == ()
    (entry,) = second.status.interfaces
    assert entry == InterfaceStatus(
        eni_id=A,
        mac_address=MAC_A,
        oper_state=OperState.UP,
        interface_name="ens6",
        mtu=9001,
        observed_at=T1,
    )
    assert second.status.summary == Summary(wanted=1, ready=1)
    assert second.status.observed_generation == 1

    # nothing changed: the same report, the same timestamp (no write)
    third = run(spec, {A: found(up)}, previous=second.status, now=T2)
    assert third.actions == ()
    assert third.status == second.status


def test_an_mtu_changed_by_hand_is_restored_each_time() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001)])
    good = link(MAC_A, 6, mtu=9001, admin_up=True, oper_state="up")
    settled = run(spec, {A: found(good)})
    for hand_mtu in (1500, 1280):
        changed = run(spec, {A: found(replace(good, mtu=hand_mtu))}, previous=settled.status)
        assert changed.actions == (SetMTU(A, 6, "ens6", 9001),)
        restored = run(spec, {A: found(good)}, previous=changed.status, now=T2)
        assert restored.actions == ()
        assert restored.status.summary.ready == 1


def test_spec_mtu_changes_are_applied_both_ways_and_no_mtu_leaves_it_alone() -> None:
    at_9001 = link(MAC_A, 6, mtu=9001, admin_up=True, oper_state="up")
    for mtu, expected in ((1500, (SetMTU(A, 6, "ens6", 1500),)), (9001, ()), (None, ())):
        spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=mtu)])
        assert run(spec, {A: found(at_9001)}).actions == expected
    # without an MTU in the spec a hand-set MTU is left, and the ENI is ready
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1)])
    result = run(spec, {A: found(replace(at_9001, mtu=1280))})
    assert result.actions == ()
    assert result.status.interfaces[0].mtu == 1280
    assert result.status.summary.ready == 1


def test_an_mtu_above_the_links_max_is_an_error_and_others_are_unaffected() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001), wanted(B, MAC_B, 2, mtu=9001)])
    capped = link(MAC_A, 6, max_mtu=3506)
    other = link(MAC_B, 7)
    result = run(spec, {A: found(capped), B: found(other)})
    assert result.actions == (
        SetUp(A, 6, "ens6"),
        SetMTU(B, 7, "ens7", 9001),
        SetUp(B, 7, "ens7"),
    )
    entry_a = result.status.by_eni()[A]
    assert entry_a.error == "mtu 9001 above max 3506"
    assert entry_a.interface_name == "ens6"  # found, reported, just not at that MTU

    # the spec lowers the MTU under the max: error gone, MTU applied
    lowered = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=3000), wanted(B, MAC_B, 2, mtu=9001)])
    after = run(
        lowered,
        {A: found(applied(capped, (SetUp(A, 6, "ens6"),))), B: found(other)},
        previous=result.status,
    )
    assert SetMTU(A, 6, "ens6", 3000) in after.actions
    assert after.status.by_eni()[A].error == ""


def test_an_absent_link_is_reported_absent_then_configured_when_it_appears() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001)])
    missing = run(spec, {})
    assert missing.actions == ()
    (entry,) = missing.status.interfaces
    assert (entry.oper_state, entry.interface_name, entry.error) == (OperState.ABSENT, None, "")
    appeared = run(spec, {A: found(link(MAC_A, 6))}, previous=missing.status, now=T1)
    assert appeared.actions == (SetMTU(A, 6, "ens6", 9001), SetUp(A, 6, "ens6"))
    assert appeared.status.interfaces[0].observed_at == T1


def test_a_mac_shared_by_links_that_cannot_be_told_apart_is_an_error() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001)])
    ambiguous = Observed(lookup=MACLookup(problem="2 links have MAC ..."))
    result = run(spec, {A: ambiguous})
    assert result.actions == ()
    assert result.status.interfaces[0].error == "2 links have MAC ..."


def test_a_held_action_is_not_repeated_and_its_error_is_reported() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001)])
    down = link(MAC_A, 6)
    failing = SetMTU(A, 6, "ens6", 9001)
    result = run(spec, {A: found(down)}, held={failing: "set mtu 9001 on ens6: Invalid argument"})
    assert result.actions == (SetUp(A, 6, "ens6"),)
    assert result.status.interfaces[0].error == "set mtu 9001 on ens6: Invalid argument"
    # a recreated link is another link: the held failure does not apply to it
    recreated = run(spec, {A: found(replace(down, index=9, name="ens9"))}, held={failing: "x"})
    assert SetMTU(A, 9, "ens9", 9001) in recreated.actions


def test_a_kernel_error_is_reported_on_one_line_within_the_schema() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001)])
    failing = SetMTU(A, 6, "ens6", 9001)
    result = run(spec, {A: found(link(MAC_A, 6))}, held={failing: "line one\nline two " * 200})
    error = result.status.interfaces[0].error
    assert "\n" not in error
    assert len(error) == ERROR_MAX_LENGTH
    assert error.startswith("line one line two")


def test_removed_then_readded_eni_leaves_the_link_alone_in_between() -> None:
    good = link(MAC_A, 6, mtu=9001, admin_up=True, oper_state="up")
    both = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001), wanted(B, MAC_B, 2)])
    only_b = ENINodeSpec.of([wanted(B, MAC_B, 2)])
    other = link(MAC_B, 7, admin_up=True, oper_state="up")
    first = run(both, {A: found(good), B: found(other)})
    removed = run(only_b, {B: found(other)}, previous=first.status, now=T1)
    assert removed.actions == ()
    assert [e.eni_id for e in removed.status.interfaces] == [B]
    assert removed.status.interfaces[0].observed_at == T0  # B did not change
    readded = run(both, {A: found(good), B: found(other)}, previous=removed.status, now=T2)
    assert readded.actions == ()
    assert readded.status.by_eni()[A].observed_at == T2
    assert readded.status.summary == Summary(wanted=2, ready=2)


def test_invalid_spec_entries_with_an_id_are_reported_not_acted_on() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1)])
    problems = (
        SpecProblem(eni_id=B, mac_address=MAC_B, message="spec.interfaces[1].mtu: 10 is out"),
        SpecProblem(eni_id=None, message="spec.interfaces[2]: must be an object"),
        SpecProblem(eni_id=A, mac_address=MAC_A, message="listed twice"),  # A is valid: no entry
    )
    result = plan(
        spec=spec,
        spec_problems=problems,
        generation=4,
        previous=ENINodeStatus(),
        observed={A: found(link(MAC_A, 6, admin_up=True, oper_state="up"))},
        held={},
        pci_available=False,
        now=T0,
    )
    assert [e.eni_id for e in result.status.interfaces] == [A, B]
    assert (
        result.status.by_eni()[B].error == "invalid spec entry: spec.interfaces[1].mtu: 10 is out"
    )
    assert result.status.summary == Summary(wanted=2, ready=1)


# -- DPDK ---------------------------------------------------------------------


def dpdk_spec(driver: str = "vfio-pci") -> ENINodeSpec:
    request = DPDKRequest(driver=driver, resource_name="intel.com/sriov_dpdk")
    return ENINodeSpec.of([wanted(A, MAC_A, 1, dpdk=request)])


def test_dpdk_binds_once_then_reports_bound_and_lists_the_device() -> None:
    ena = link(MAC_A, 6, admin_up=True, oper_state="up")
    # the address is put on record first: once bound, no link ties it to the MAC
    found_it = run(dpdk_spec(), {A: found(ena, address=PCI_A, driver="ena")})
    assert found_it.actions == ()
    assert found_it.status.interfaces[0].pci_address == PCI_A
    assert found_it.status.interfaces[0].error == ""
    first = run(dpdk_spec(), {A: found(ena, address=PCI_A, driver="ena")}, previous=found_it.status)
    assert first.actions == (BindDPDK(A, PCI_A, "vfio-pci"),)
    assert first.device_plugin == {"intel.com/sriov_dpdk": frozenset()}
    # bound: the kernel link is gone, sysfs shows vfio-pci
    bound = run(
        dpdk_spec(), {A: found(None, address=PCI_A, driver="vfio-pci")}, previous=first.status
    )
    assert bound.actions == ()
    (entry,) = bound.status.interfaces
    assert (entry.oper_state, entry.dpdk_bound, entry.driver, entry.interface_name) == (
        OperState.DPDK,
        True,
        "vfio-pci",
        None,
    )
    assert bound.status.summary.ready == 1
    assert bound.device_plugin == {"intel.com/sriov_dpdk": frozenset({PCI_A})}
    # a restart observes the same: nothing bound twice, nothing written
    again = run(
        dpdk_spec(),
        {A: found(None, address=PCI_A, driver="vfio-pci")},
        previous=bound.status,
        now=T2,
    )
    assert again.actions == ()
    assert again.status == bound.status


def test_dpdk_no_longer_wanted_releases_then_configures_the_link() -> None:
    bound_status = ENINodeStatus(
        interfaces=(
            InterfaceStatus(
                eni_id=A,
                mac_address=MAC_A,
                oper_state=OperState.DPDK,
                pci_address=PCI_A,
                driver="vfio-pci",
                dpdk_bound=True,
                observed_at=T0,
            ),
        )
    )
    kernel_spec = ENINodeSpec.of([wanted(A, MAC_A, 1, mtu=9001)])
    release = run(
        kernel_spec, {A: found(None, address=PCI_A, driver="vfio-pci")}, previous=bound_status
    )
    assert release.actions == (ReleaseDPDK(A, PCI_A),)
    assert release.status.interfaces[0].dpdk_bound  # still bound until sysfs says otherwise
    back = run(
        kernel_spec,
        {A: found(link(MAC_A, 6), address=PCI_A, driver="ena")},
        previous=release.status,
    )
    assert back.actions == (SetMTU(A, 6, "ens6", 9001), SetUp(A, 6, "ens6"))
    assert back.status.interfaces[0].dpdk_bound is False
    assert back.status.interfaces[0].driver == "ena"


def test_an_eni_gone_from_the_spec_stays_reported_until_released() -> None:
    bound_status = run(dpdk_spec(), {A: found(None, address=PCI_A, driver="vfio-pci")}).status
    empty = ENINodeSpec()
    held: dict[Action, str] = {ReleaseDPDK(A, PCI_A): "release 0000:00:06.0: Permission denied"}
    stuck = run(
        empty, {A: found(None, address=PCI_A, driver="vfio-pci")}, previous=bound_status, held=held
    )
    assert stuck.actions == ()
    (entry,) = stuck.status.interfaces
    assert entry.error == "release 0000:00:06.0: Permission denied"
    assert stuck.status.summary == Summary(wanted=0, ready=0)
    retry = run(empty, {A: found(None, address=PCI_A, driver="vfio-pci")}, previous=stuck.status)
    assert retry.actions == (ReleaseDPDK(A, PCI_A),)
    released = run(empty, {A: found(None, address=PCI_A, driver="ena")}, previous=retry.status)
    assert released.status.interfaces == ()
    # an ENI detached while bound: its device is gone, nothing to release
    assert run(empty, {}, previous=bound_status).status.interfaces == ()


def test_a_device_this_agent_did_not_bind_is_never_released() -> None:
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1)])
    theirs = run(spec, {A: found(None, address=PCI_A, driver="vfio-pci")})
    assert theirs.actions == ()
    assert theirs.status.interfaces[0].oper_state == OperState.ABSENT


def test_dpdk_without_pci_access_or_address_is_an_error() -> None:
    no_access = run(dpdk_spec(), {A: found(link(MAC_A, 6))}, pci_available=False)
    assert no_access.actions == ()
    assert no_access.status.interfaces[0].error == NO_PCI
    no_address = run(dpdk_spec(), {})
    assert no_address.actions == ()
    assert no_address.status.interfaces[0].error.startswith("PCI address unknown: no link has MAC")


def test_an_address_given_in_the_spec_is_bound_at_once() -> None:
    request = DPDKRequest(driver="vfio-pci", pci_address=PCI_A)
    spec = ENINodeSpec.of([wanted(A, MAC_A, 1, dpdk=request)])
    result = run(spec, {A: found(link(MAC_A, 6), address=PCI_A, driver="ena")})
    assert result.actions == (BindDPDK(A, PCI_A, "vfio-pci"),)


def test_a_missing_driver_is_held_and_reported() -> None:
    bind = BindDPDK(A, PCI_A, "igb_uio")
    held: dict[Action, str] = {bind: "bind 0000:00:06.0 to igb_uio: driver igb_uio not loaded"}
    seen = {A: found(link(MAC_A, 6), address=PCI_A, driver="ena")}
    on_record = run(dpdk_spec("igb_uio"), seen)
    result = run(dpdk_spec("igb_uio"), seen, previous=on_record.status, held=held)
    assert result.actions == ()
    assert result.status.interfaces[0].error == held[bind]
    assert result.status.interfaces[0].interface_name == "ens6"


# -- the object, and which events matter ------------------------------------------


def test_no_object_wants_nothing_and_releases_what_was_remembered_bound() -> None:
    remembered = run(dpdk_spec(), {A: found(None, address=PCI_A, driver="vfio-pci")}).status
    result = plan_for(
        None,
        remembered=remembered,
        observed={A: found(None, address=PCI_A, driver="vfio-pci")},
        held={},
        pci_available=True,
        now=T1,
    )
    assert result.actions == (ReleaseDPDK(A, PCI_A),)
    assert result.status.observed_generation is None


def test_plan_for_an_object_uses_its_generation_and_status() -> None:
    body = eninode_body(node_name="n", node_uid="u", spec=ENINodeSpec.of([wanted(A, MAC_A, 1)]))
    body["metadata"]["generation"] = 7
    first = run(
        ENINodeSpec.of([wanted(A, MAC_A, 1)]),
        {A: found(link(MAC_A, 6, admin_up=True, oper_state="up"))},
    )
    body["status"] = first.status.to_dict()
    result = plan_for(
        ENINode.from_dict(body),
        remembered=ENINodeStatus(),
        observed={A: found(link(MAC_A, 6, admin_up=True, oper_state="up"))},
        held={},
        pci_available=False,
        now=T2,
    )
    assert result.status.observed_generation == 7
    assert result.status.interfaces == first.status.interfaces  # same facts, same stamp


def test_only_events_about_wanted_or_known_links_are_relevant() -> None:
    macs, indexes = frozenset({MAC_A}), frozenset({7})
    assert relevant(LinkEvent("new", link(MAC_A, 6)), macs=macs, indexes=indexes)
    assert relevant(LinkEvent("del", link(MAC_C, 7)), macs=macs, indexes=indexes)
    assert not relevant(LinkEvent("new", link(MAC_C, 40)), macs=macs, indexes=indexes)
    assert relevant(Resync("subscribed"), macs=frozenset(), indexes=frozenset())

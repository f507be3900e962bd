"""Links from netlink messages, and which link carries an ENI's MAC."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from eni_controller.agent.links import Link, MTUAboveMax, find_by_mac, link_from_message

MAC = "02:ab:00:00:00:01"
ENS6 = Link(
    index=3,
    name="ens6",
    mac=MAC,
    mtu=1500,
    max_mtu=9216,
    admin_up=False,
    oper_state="down",
    parent_bus="pci",
    parent_device="0000:00:06.0",
)


def wire(attrs: list[tuple[str, Any]], *, index: int = 3, flags: int = 0) -> Any:
    """A message as the kernel sends it: encoded, then decoded by pyroute2."""
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = flags
    msg["attrs"] = attrs
    msg.encode()
    decoded = ifinfmsg(msg.data)
    decoded.decode()
    return decoded


def test_a_message_reads_into_a_link() -> None:
    msg = wire(
        [
            ("IFLA_IFNAME", "ens6"),
            ("IFLA_ADDRESS", MAC.upper()),
            ("IFLA_MTU", 9001),
            ("IFLA_MAX_MTU", 9216),
            ("IFLA_OPERSTATE", "UP"),
            ("IFLA_PARENT_DEV_NAME", "0000:00:06.0"),
            ("IFLA_PARENT_DEV_BUS_NAME", "pci"),
        ],
        flags=0x1003,
    )
    link = link_from_message(msg)
    assert link == replace(ENS6, mtu=9001, admin_up=True, oper_state="up")
    assert link is not None
    assert link.running
    assert link.pci_address == "0000:00:06.0"


def test_no_max_mtu_reads_as_none_and_kind_is_kept() -> None:
    msg = wire(
        [
            ("IFLA_IFNAME", "veth1"),
            ("IFLA_ADDRESS", MAC),
            ("IFLA_MTU", 1500),
            ("IFLA_MAX_MTU", 0),
            ("IFLA_OPERSTATE", "LOWERLAYERDOWN"),
            ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]}),
        ],
        flags=0x1,
    )
    link = link_from_message(msg)
    assert link is not None
    assert (link.max_mtu, link.kind, link.oper_state) == (None, "veth", "lowerlayerdown")
    assert not link.running  # admin up, but the other end is down
    assert link.pci_address is None


def test_a_message_without_a_name_is_no_link() -> None:
    assert link_from_message(wire([("IFLA_MTU", 1500)])) is None


@pytest.mark.parametrize(
    ("state", "admin_up", "running"),
    [("unknown", True, True), ("unknown", False, False), ("dormant", True, False)],
)
def test_running(state: str, admin_up: bool, running: bool) -> None:
    assert replace(ENS6, oper_state=state, admin_up=admin_up).running is running


def test_find_by_mac_ignores_case_and_absence() -> None:
    other = replace(ENS6, index=2, name="eth0", mac="02:00:00:00:00:99")
    assert find_by_mac([other, ENS6], MAC.upper()).link == ENS6
    assert find_by_mac([other], MAC).link is None
    assert find_by_mac([other], MAC).problem is None


def test_a_vlan_on_the_eni_shares_its_mac_and_the_device_wins() -> None:
    vlan = replace(ENS6, index=9, name="ens6.100", kind="vlan", parent_bus=None, parent_device=None)
    assert find_by_mac([vlan, ENS6], MAC).link == ENS6


def test_without_a_device_the_unstacked_link_wins() -> None:
    plain = replace(ENS6, kind="veth", parent_bus=None, parent_device=None)
    bond = replace(plain, index=9, name="bond0", kind="bond")
    assert find_by_mac([bond, plain], MAC).link == plain


def test_links_that_cannot_be_told_apart_are_a_problem_not_a_guess() -> None:
    a = replace(ENS6, kind="veth", parent_bus=None, parent_device=None)
    b = replace(a, index=9, name="eth9")
    found = find_by_mac([a, b], MAC)
    assert found.link is None
    assert found.problem == f"2 links have MAC {MAC} (ens6, eth9): cannot tell the ENI"


def test_mtu_above_max_names_both() -> None:
    err = MTUAboveMax(link=replace(ENS6, max_mtu=3506), mtu=9001)
    assert str(err) == "set mtu on ens6: mtu 9001 above max 3506"
    assert (err.mtu, err.max_mtu, err.errno) == (9001, 3506, None)

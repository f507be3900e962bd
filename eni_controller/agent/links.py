"""Network links of one network namespace, through netlink (pyroute2).

The agent finds the link carrying an ENI's MAC, brings it up, sets its MTU,
and hears link changes as they happen (RTNLGRP_LINK); nothing of Kubernetes.

* Links are found by MAC, never by a name: kernel names depend on the AMI,
  udev and the instance type; the MAC is what EC2 reports.
* When events may have been lost (buffer overflow, socket reopened) the
  stream yields a ``Resync`` and the consumer reads every link again.
* A socket for another namespace (``AGENT_NETNS``) is made on a short-lived
  thread that enters it with setns(2); pyroute2's own ``netns=`` would fork
  the agent and create a missing namespace, where the agent must fail.
* The MTU is never set above the link's IFLA_MAX_MTU (``MTUAboveMax``);
  kernel refusals are ``LinkError`` with their errno.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Literal

import structlog
from pyroute2 import AsyncIPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK, RTMGRP_LINK
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP

log = structlog.get_logger(__name__)

# Link kinds stacked on another link; they share its MAC and are never the ENI itself.
STACKED_KINDS: Final = frozenset(
    {"vlan", "macvlan", "macvtap", "ipvlan", "ipvtap", "bond", "team", "bridge", "vxlan"}
)
_EVENTS_BACKOFF_BASE: Final = 0.1
_EVENTS_BACKOFF_MAX: Final = 30.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Link:
    """One network link as netlink reports it."""

    index: int
    name: str
    mac: str  # lower-case; "" for a link without an Ethernet address
    mtu: int
    max_mtu: int | None  # IFLA_MAX_MTU; None when the kernel reports none (or 0: no limit)
    admin_up: bool  # IFF_UP: what `ip link set up` sets
    oper_state: str  # IFLA_OPERSTATE, lower-case: up, down, lowerlayerdown, unknown, ...
    kind: str | None = None  # IFLA_INFO_KIND: veth, vlan, ...; None for a plain NIC
    parent_bus: str | None = None  # IFLA_PARENT_DEV_BUS_NAME: "pci" for an ENA device
    parent_device: str | None = None  # IFLA_PARENT_DEV_NAME: the PCI address on that bus

    @property
    def running(self) -> bool:
        """Operstate up, or unknown (no carrier reporting) on an admin-up link."""
        return self.oper_state == "up" or (self.oper_state == "unknown" and self.admin_up)

    @property
    def pci_address(self) -> str | None:
        return self.parent_device if self.parent_bus == "pci" else None


def link_from_message(msg: Any) -> Link | None:
    """A ``Link`` from an RTM_NEWLINK/RTM_DELLINK message, None when it lacks an index or name."""
    index, name = msg.get("index"), msg.get("ifname")
    if not isinstance(index, int) or not isinstance(name, str):
        return None
    mac = msg.get("address")
    max_mtu = msg.get("max_mtu")
    state = msg.get("operstate")
    return Link(
        index=index,
        name=name,
        mac=mac.lower() if isinstance(mac, str) else "",
        mtu=int(msg.get("mtu") or 0),
        max_mtu=max_mtu if isinstance(max_mtu, int) and max_mtu > 0 else None,
        admin_up=bool(int(msg.get("flags") or 0) & IFF_UP),
        oper_state=state.lower() if isinstance(state, str) else "unknown",
        kind=msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
        parent_bus=msg.get("parent_dev_bus_name"),
        parent_device=msg.get("parent_dev_name"),
    )


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A link was created or changed ("new"), or removed ("del")."""

    kind: Literal["new", "del"]
    link: Link


@dataclass(frozen=True, slots=True)
class Resync:
    """Events may have been missed (stream (re)opened, buffer overflow): read every link."""

    reason: str


@dataclass(frozen=True, slots=True)
class MACLookup:
    """The link carrying a MAC: ``link`` when exactly one is found, else ``problem``
    when several are and none can be told apart as the device itself."""

    link: Link | None = None
    problem: str | None = None


def find_by_mac(links: Iterable[Link], mac: str) -> MACLookup:
    """The link whose MAC is ``mac`` (any case). Among several (a VLAN or bond on the
    ENI shares its MAC), the one with a parent device wins, else the one not stacked
    on another link; still several: a problem naming them, and no guess."""
    mac = mac.lower()
    candidates = [link for link in links if link.mac == mac]
    if len(candidates) <= 1:
        return MACLookup(link=candidates[0] if candidates else None)
    for narrowed in (
        [link for link in candidates if link.parent_bus is not None],
        [link for link in candidates if link.kind not in STACKED_KINDS],
    ):
        if len(narrowed) == 1:
            return MACLookup(link=narrowed[0])
    names = ", ".join(sorted(link.name for link in candidates))
    return MACLookup(
        problem=f"{len(candidates)} links have MAC {mac} ({names}): cannot tell the ENI"
    )


class LinkError(Exception):
    """A netlink request about one link failed; ``errno`` as the kernel answered."""

    def __init__(self, *, op: str, link: str, code: int | None, detail: str) -> None:
        self.errno = code
        super().__init__(f"{op} on {link}: {detail}")


class MTUAboveMax(LinkError):
    """The MTU asked for is above what the link allows (IFLA_MAX_MTU)."""

    def __init__(self, *, link: Link, mtu: int) -> None:
        self.mtu = mtu
        self.max_mtu = link.max_mtu
        detail = f"mtu {mtu} above max {link.max_mtu}"
        super().__init__(op="set mtu", link=link.name, code=None, detail=detail)


@contextlib.contextmanager
def _request(op: str, link: str) -> Iterator[None]:
    """Netlink and socket errors inside as ``LinkError``."""
    try:
        yield
    except (NetlinkError, OSError) as err:
        code = err.code if isinstance(err, NetlinkError) else err.errno
        detail = f"{os.strerror(code) if code else str(err)} (errno {code})"
        raise LinkError(op=op, link=link, code=code, detail=detail) from err


class NamespaceMissing(OSError):
    """AGENT_NETNS names a network namespace that does not exist."""


def netlink_socket(netns: str | None) -> socket.socket:
    """A NETLINK_ROUTE socket in namespace ``netns`` (a name under /var/run/netns), or
    in the caller's own namespace when None. Never creates a namespace."""
    if netns is None:
        return _route_socket()

    def enter_and_open() -> socket.socket:
        # setns(2) moves this thread only; it ends at the pool's shutdown, and the
        # socket keeps the namespace it was created in.
        pyroute2_netns.setns(netns, flags=0)
        return _route_socket()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"netns-{netns}") as pool:
        try:
            return pool.submit(enter_and_open).result()
        except FileNotFoundError as err:
            raise NamespaceMissing(errno.ENOENT, f"network namespace {netns!r} not found") from err


def _route_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)


class NetlinkLinks:
    """The links of one namespace, over netlink. Use as an async context manager."""

    def __init__(self, *, netns: str | None = None) -> None:
        self.netns = netns
        self._requests: AsyncIPRoute | None = None

    async def __aenter__(self) -> NetlinkLinks:
        self._requests = self._open(groups=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._requests is not None:
            self._requests.close()
            self._requests = None

    def _open(self, *, groups: int) -> AsyncIPRoute:
        sock = netlink_socket(self.netns)
        return AsyncIPRoute(fileno=sock.detach(), groups=groups)

    @property
    def _ipr(self) -> AsyncIPRoute:
        if self._requests is None:
            raise RuntimeError("NetlinkLinks used outside its context")
        return self._requests

    async def links(self) -> list[Link]:
        """Every link of the namespace (one RTM_GETLINK dump)."""
        with _request("dump links", self.netns or "(own namespace)"):
            found = [link_from_message(msg) async for msg in await self._ipr.get_links()]
        return [link for link in found if link is not None]

    async def set_up(self, link: Link) -> None:
        with _request("set up", link.name):
            await self._ipr.link("set", index=link.index, state="up")

    async def set_mtu(self, link: Link, mtu: int) -> None:
        """Set ``mtu``; ``MTUAboveMax`` without asking the kernel when above the link's max."""
        if link.max_mtu is not None and mtu > link.max_mtu:
            raise MTUAboveMax(link=link, mtu=mtu)
        with _request(f"set mtu {mtu}", link.name):
            await self._ipr.link("set", index=link.index, mtu=mtu)

    async def events(self) -> AsyncGenerator[LinkEvent | Resync, None]:
        """Link events, forever: a ``Resync`` once subscribed and after each reopening
        of the socket (with backoff when failures come in a row)."""
        failures = opens = 0
        while True:
            delivered = False
            try:
                events = self._open(groups=RTMGRP_LINK)
            except OSError as err:
                failures += 1
                log.warning("link events: cannot open", netns=self.netns, error=repr(err))
            else:
                try:
                    await events.bind()
                    opens += 1
                    yield Resync("subscribed" if opens == 1 else "resubscribed")
                    async for event in _read_events(events):
                        delivered = True
                        yield event
                except (NetlinkError, OSError) as err:  # ENOBUFS: the kernel dropped events
                    failures = 0 if delivered else failures + 1
                    log.warning("link events: socket failed", netns=self.netns, error=repr(err))
                finally:
                    events.close()
            if failures:
                delay = min(_EVENTS_BACKOFF_MAX, _EVENTS_BACKOFF_BASE * 2 ** min(failures - 1, 16))
                await asyncio.sleep(delay)


async def _read_events(events: AsyncIPRoute) -> AsyncIterator[LinkEvent]:
    while True:
        got = False
        async for msg in events.get():
            got = True
            kind = msg.get(("header", "type"))
            if kind not in (RTM_NEWLINK, RTM_DELLINK):
                continue
            link = link_from_message(msg)
            if link is not None:
                yield LinkEvent("new" if kind == RTM_NEWLINK else "del", link)
        if not got:  # pyroute2 ends a read with nothing when the socket is closed
            raise ConnectionResetError(errno.ECONNRESET, "netlink event socket closed")

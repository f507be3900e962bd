"""Network namespaces as simulated nodes, and the test playing the EC2 hypervisor.

A node agent test needs real links: the agent speaks netlink to the kernel.
Each simulated node is a network namespace the test creates (and removes, even
when the test fails; removing a namespace removes every link in it). When an
ENI is "attached" to that node, the ``Hypervisor`` creates in its namespace a
veth pair whose node-side end carries the ENI's MAC, admin down at MTU 1500,
as a freshly hot-plugged ENA device appears; the other end (the wire) is
brought up so that the node side reads operstate UP once the agent brings it
up. Detaching removes the pair.

An ENA device reports the largest MTU it allows (IFLA_MAX_MTU, 9216). A veth
allows 65535, so to have a link whose maximum is below 9001 the hypervisor
attaches a trivial XDP program (XDP_PASS) to the wire end: the kernel then caps
the node side's max MTU to what fits a page (3506 on x86-64 with 4 KiB pages),
and reports it like any driver's limit.

Everything here reads and writes links through pyroute2 directly (its own
``netns=`` sockets), never through the agent's code, so the tests observe the
kernel independently of what they test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import os
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import RTMGRP_LINK

IFF_UP: Final = 0x1
RTM_NEWLINK: Final = 16
_NR_BPF: Final = 321  # x86-64
_BPF_PROG_LOAD: Final = 5
_BPF_PROG_TYPE_XDP: Final = 6
_XDP_PASS: Final = 2


def create_namespace(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)


def remove_namespace(name: str) -> None:
    """Remove ``name`` (and every link in it); nothing when it is already gone."""
    done = subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    if done.returncode != 0 and os.path.exists(f"/var/run/netns/{name}"):
        raise RuntimeError(f"cannot remove netns {name}: {done.stderr.decode().strip()}")


@contextlib.contextmanager
def namespaces(names: list[str]) -> Iterator[list[str]]:
    """Create ``names``; remove them all on the way out, whatever happened."""
    created: list[str] = []
    try:
        for name in names:
            create_namespace(name)
            created.append(name)
        yield names
    finally:
        for name in created:
            remove_namespace(name)


@dataclass(frozen=True, slots=True)
class LinkState:
    """A link as the kernel reports it, read independently of the agent."""

    name: str
    mac: str
    mtu: int
    max_mtu: int
    admin_up: bool
    oper_state: str


def _state(msg: Any) -> LinkState:
    return LinkState(
        name=msg.get("ifname"),
        mac=(msg.get("address") or "").lower(),
        mtu=msg.get("mtu"),
        max_mtu=msg.get("max_mtu") or 0,
        admin_up=bool(msg["flags"] & IFF_UP),
        oper_state=(msg.get("operstate") or "").lower(),
    )


def _xdp_pass_program() -> int:
    """Load a two-instruction XDP program (return XDP_PASS); returns its fd."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    insns = struct.pack("<BBhi", 0xB7, 0, 0, _XDP_PASS) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack(
        "<IIQQIIQI",
        _BPF_PROG_TYPE_XDP,
        len(insns) // 8,
        ctypes.addressof(code),
        ctypes.addressof(license_),
        0,
        0,
        0,
        0,
    )
    buf = ctypes.create_string_buffer(attr.ljust(128, b"\0"), 128)
    fd = int(libc.syscall(_NR_BPF, _BPF_PROG_LOAD, buf, 128))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"loading an XDP program: {os.strerror(err)}")
    return fd


class Hypervisor:
    """Plays EC2 for one simulated node: attaches ENIs as links in its namespace."""

    _numbers = itertools.count(20)

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.wires: dict[str, str] = {}  # ENI MAC -> name of the wire (peer) end

    @contextlib.asynccontextmanager
    async def _ipr(self, *, groups: int = 0) -> AsyncIterator[AsyncIPRoute]:
        ipr = AsyncIPRoute(netns=self.netns, flags=0, groups=groups)
        try:
            yield ipr
        finally:
            ipr.close()

    async def plug(self, mac: str, *, cap_max_mtu: bool = False, name: str | None = None) -> str:
        """Attach an ENI: a link with ``mac`` appears, admin down at 1500. Its name is
        ``name``, else a fresh ``ensNN`` unrelated to any device index. Returns it."""
        number = next(self._numbers)
        name, wire = name or f"ens{number}", f"hv{number}"
        async with self._ipr() as ipr:
            await ipr.link("add", ifname=name, kind="veth", address=mac, peer={"ifname": wire})
            (wire_index,) = await ipr.link_lookup(ifname=wire)
            if cap_max_mtu:
                fd = _xdp_pass_program()
                try:
                    await ipr.link("set", index=wire_index, xdp_fd=fd)
                finally:
                    os.close(fd)  # the attachment keeps the program
            await ipr.link("set", index=wire_index, state="up")
        self.wires[mac] = wire
        return name

    async def unplug(self, mac: str) -> None:
        """Detach the ENI: both ends of the pair go."""
        wire = self.wires.pop(mac)
        async with self._ipr() as ipr:
            await ipr.link("del", ifname=wire)

    async def link(self, mac: str) -> LinkState | None:
        async with self._ipr() as ipr:
            found = [_state(m) async for m in await ipr.get_links()]
        return next((s for s in found if s.mac == mac.lower()), None)

    async def set_mtu_by_hand(self, mac: str, mtu: int) -> None:
        """What an operator's `ip link set ... mtu` does."""
        state = await self.link(mac)
        assert state is not None, f"no link with MAC {mac}"
        async with self._ipr() as ipr:
            await ipr.link("set", ifname=state.name, mtu=mtu)

    async def set_down_by_hand(self, mac: str) -> None:
        state = await self.link(mac)
        assert state is not None, f"no link with MAC {mac}"
        async with self._ipr() as ipr:
            await ipr.link("set", ifname=state.name, state="down")


@dataclass(frozen=True, slots=True)
class Seen:
    at: float  # time.monotonic() when the event was read
    state: LinkState


@dataclass
class LinkMonitor:
    """Every RTM_NEWLINK in a namespace, timestamped as read: what changed, and when."""

    netns: str
    seen: list[Seen] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> LinkMonitor:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        ipr = AsyncIPRoute(netns=self.netns, flags=0, groups=RTMGRP_LINK)
        try:
            await ipr.bind()
            self._subscribed.set()
            while True:
                async for msg in ipr.get():
                    if msg.get(("header", "type")) == RTM_NEWLINK and msg.get("ifname"):
                        self.seen.append(Seen(time.monotonic(), _state(msg)))
        finally:
            ipr.close()

    def first(self, predicate: Callable[[LinkState], bool]) -> Seen | None:
        return next((s for s in self.seen if predicate(s.state)), None)

    def about(self, macs: set[str]) -> list[Seen]:
        return [s for s in self.seen if s.state.mac in macs]

"""A simulated node's PCI devices: the test sysfs tree's interfaces as real links.

On a node, an ENI's PCI device has a network link only while a network driver
(``ena``) has it: binding it to a DPDK driver takes the link away, giving it
back to ``ena`` brings a link back under the same name. The agent sees both
sides, sysfs (through agent/pci.py, over tests/harness/sysfs.py's `FakeSysfs`)
and netlink (through agent/links.py, in the node's network namespace), so in a
test the two must agree. `NamespaceNetdevs` is the `FakeSysfs` listener that
makes them agree: when the emulated kernel creates a device's interface, the
node's `Hypervisor` plugs a veth with that name and the ENI's MAC into the
namespace; when it removes it, the veth goes.

The listener is called from whichever thread made the sysfs write (the test's
event loop thread while setting the scene, the agent's worker thread during a
bind); the hypervisor's netlink calls run to completion on a thread of their
own, so neither loop is needed and the write returns with the link already
created or removed, as the kernel's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from tests.harness.netns import Hypervisor

NETLINK_SECONDS: Final = 30.0


class NamespaceNetdevs:
    """`tests.harness.sysfs.NetdevListener` for one simulated node: each PCI device's
    interface is a veth carrying its ENI's MAC in the node's namespace."""

    def __init__(self, hypervisor: Hypervisor, *, macs: dict[str, str]) -> None:
        """``macs``: PCI address -> the MAC of the ENI behind it."""
        self._hypervisor = hypervisor
        self._macs = dict(macs)

    def netdev_added(self, address: str, name: str) -> None:
        mac = self._macs[address]
        self._run(lambda: self._hypervisor.plug(mac, name=name))

    def netdev_removed(self, address: str, name: str) -> None:
        mac = self._macs[address]
        self._run(lambda: self._hypervisor.unplug(mac))

    @staticmethod
    def _run(call: Callable[[], Coroutine[Any, Any, object]]) -> None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hypervisor") as pool:
            pool.submit(lambda: asyncio.run(call())).result(NETLINK_SECONDS)

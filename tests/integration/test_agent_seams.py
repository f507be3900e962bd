"""The agent's DPDK and device-plugin seams, driven end to end with stand-ins.

agent/pci.py (sysfs) and agent/deviceplugin.py are built separately; the
agent takes them as collaborators (``PCIAccess``, ``DevicePlugin``). Here they
are stand-ins that behave as the kernel does where the agent can see it:
binding a device to a DPDK driver takes its network link away (the veth is
removed from the node's namespace), releasing it gives a link back (a new
veth with the same MAC, under a new name), and a driver that is not loaded
fails the bind. The API server, the links and the agent are real. When the
real modules are merged, the same scenarios run with them over a sysfs tree.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio import client

from eni_controller.agent.agent import DevicePlugin
from eni_controller.eninode import DPDKRequest, ENINodeSpec, OperState, WantedInterface
from tests.harness.agents import (
    JUMBO,
    ENINodes,
    SimNode,
    entry,
    in_process_agent,
    new_eni,
    wait_cycle,
    wait_entry,
    wait_link,
)
from tests.harness.waiting import until_async

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
T = TypeVar("T")

PCI_A, PCI_B = "0000:00:06.0", "0000:00:07.0"
RESOURCE = "intel.com/sriov_dpdk"
KERNEL_DRIVER = "ena"


class DriverMissing(Exception):
    """As agent/pci.py raises it: the driver's directory is absent (module not loaded)."""


@dataclass
class _Device:
    mac: str
    ifname: str | None
    driver: str = KERNEL_DRIVER


class KernelLikePCI:
    """``PCIAccess`` for a simulated node. Sync methods, as sysfs access is; ``bind`` and
    ``release`` run on the agent's worker threads and drive the hypervisor on the loop."""

    def __init__(self, node: SimNode, loop: asyncio.AbstractEventLoop, *, loaded: set[str]) -> None:
        self._node = node
        self._loop = loop
        self._loaded = loaded
        self._lock = threading.Lock()
        self.devices: dict[str, _Device] = {}
        self.calls: list[tuple[str, str]] = []

    def add(self, address: str, mac: str, ifname: str) -> None:
        self.devices[address] = _Device(mac=mac, ifname=ifname)

    def address_of(self, ifname: str) -> str | None:
        with self._lock:
            return next((a for a, d in self.devices.items() if d.ifname == ifname), None)

    def driver_of(self, address: str) -> str | None:
        with self._lock:
            device = self.devices.get(address)
            return None if device is None else device.driver

    def bind(self, address: str, *, driver: str) -> bool:
        self.calls.append(("bind", f"{address}->{driver}"))
        if driver not in self._loaded:
            raise DriverMissing(f"driver {driver} not loaded")
        device = self.devices[address]
        if device.driver == driver:
            return False
        self._run(self._node.hypervisor.unplug(device.mac))  # the netdev goes with the driver
        with self._lock:
            device.driver, device.ifname = driver, None
        return True

    def release(self, address: str) -> bool:
        self.calls.append(("release", address))
        device = self.devices[address]
        if device.driver == KERNEL_DRIVER:
            return False
        name = self._run(self._node.hypervisor.plug(device.mac))  # the kernel driver probes
        with self._lock:
            device.driver, device.ifname = KERNEL_DRIVER, name
        return True

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def binds(self) -> int:
        return sum(1 for kind, _ in self.calls if kind == "bind")


class RecordingDevicePlugin:
    """The device plugin's config as a dict (writes only on change) and its restarts."""

    def __init__(self) -> None:
        self.config: dict[str, frozenset[str]] = {}
        self.writes = 0
        self.restarts = 0

    def sync(self, wanted: Mapping[str, frozenset[str]]) -> bool:
        new = {name: addresses for name, addresses in wanted.items() if addresses}
        if new == self.config:
            return False
        self.config = new
        self.writes += 1
        return True

    async def restart(self) -> int:
        self.restarts += 1
        return 1


def dpdk_entry(eni: tuple[str, str], *, driver: str = "vfio-pci") -> WantedInterface:
    return WantedInterface(
        eni_id=eni[0],
        mac_address=eni[1],
        device_index=1,
        node_eni="dpdk",
        dpdk=DPDKRequest(driver=driver, resource_name=RESOURCE),
    )


async def test_dpdk_binds_once_reports_survives_a_restart_and_releases(
    kube_api: client.ApiClient,
    one_node: SimNode,
    eninodes: ENINodes,
) -> None:
    a, b = new_eni(), new_eni()
    hv = one_node.hypervisor
    pci = KernelLikePCI(one_node, asyncio.get_running_loop(), loaded={"vfio-pci"})
    pci.add(PCI_A, a[1], await hv.plug(a[1]))
    pci.add(PCI_B, b[1], await hv.plug(b[1]))
    plugin = RecordingDevicePlugin()
    seam = DevicePlugin(config=plugin, restart=plugin.restart)
    await eninodes.create(one_node, ENINodeSpec.of([dpdk_entry(a), entry(b, 2)]))

    async with in_process_agent(kube_api, one_node, pci=pci, device_plugin=seam):
        bound = await wait_entry(eninodes, one_node.name, a[0], ready=2, dpdk_bound=True)
        assert (bound.oper_state, bound.driver, bound.pci_address, bound.interface_name) == (
            OperState.DPDK,
            "vfio-pci",
            PCI_A,
            None,
        )
        kernel = await wait_entry(eninodes, one_node.name, b[0], ready=2, mtu=JUMBO)
        assert (kernel.pci_address, kernel.driver) == (PCI_B, KERNEL_DRIVER)
        assert await hv.link(a[1]) is None  # bound: no kernel link any more
        assert pci.binds() == 1
        assert plugin.config == {RESOURCE: frozenset({PCI_A})}
        assert plugin.restarts == 1
        settled = await eninodes.get(one_node.name)

    # a new agent (a restart) reads the binding back from sysfs and the ENINode
    async with in_process_agent(kube_api, one_node, pci=pci, device_plugin=seam) as again:
        await until_async(lambda: _ready(again.ready()), within=30)
        assert pci.binds() == 1, "bound twice across a restart"
        assert plugin.restarts == 1
        unchanged = await eninodes.get(one_node.name)
        assert unchanged["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]

        # DPDK no longer asked for: given back to the kernel, configured like any ENI
        await eninodes.set_spec(one_node.name, ENINodeSpec.of([entry(a, 1), entry(b, 2)]))
        state = await wait_link(hv, a[1], mtu=JUMBO)
        released = await wait_entry(
            eninodes, one_node.name, a[0], ready=2, dpdk_bound=False, interface_name=state.name
        )
        assert (released.driver, released.pci_address) == (KERNEL_DRIVER, PCI_A)
        assert pci.calls[-1] == ("release", PCI_A)
        assert plugin.config == {}
        assert plugin.restarts == 2


async def test_a_missing_dpdk_driver_is_reported_and_not_retried_in_a_loop(
    kube_api: client.ApiClient,
    one_node: SimNode,
    eninodes: ENINodes,
) -> None:
    a = new_eni()
    hv = one_node.hypervisor
    pci = KernelLikePCI(one_node, asyncio.get_running_loop(), loaded={"vfio-pci"})
    pci.add(PCI_A, a[1], await hv.plug(a[1]))
    await eninodes.create(one_node, ENINodeSpec.of([dpdk_entry(a, driver="igb_uio")]))
    async with in_process_agent(kube_api, one_node, pci=pci, backoff_base_seconds=60) as agent:
        failed = await wait_entry(
            eninodes,
            one_node.name,
            a[0],
            ready=0,
            error=f"bind {PCI_A} to igb_uio: driver igb_uio not loaded",
        )
        assert failed.dpdk_bound is False
        assert failed.interface_name is not None  # still the kernel's link
        for _ in range(3):
            await wait_cycle(agent, eninodes, one_node.name)
        assert pci.binds() == 1, "a held bind was repeated before its backoff ran out"
        # the spec asks for a loaded driver instead: bound at once
        await eninodes.set_spec(one_node.name, ENINodeSpec.of([dpdk_entry(a)]))
        await wait_entry(eninodes, one_node.name, a[0], ready=1, dpdk_bound=True, error="")
        assert await hv.link(a[1]) is None


async def _ready(check: tuple[bool, str]) -> bool:
    return check[0]

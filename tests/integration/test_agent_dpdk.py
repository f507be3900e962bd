"""DPDK binding and the SR-IOV device plugin, with the agent's real parts end to end.

Real: the API server, the agent, its netlink (a namespace per node), its PCI
access (agent/pci.py's ``PCIDevices``) and its device plugin collaborator (the
``DevicePlugin`` that agent/service.py wires: agent/deviceplugin.py's config
file and the restart of the plugin's pod on this node). The kernel's sysfs is
tests/harness/sysfs.py's emulator over a tree of the test's own, which keeps
its write journal on disk; its interfaces are veths in the node's namespace
(tests/harness/sysfs_links.py), so a device bound to vfio-pci loses its link
and gets it back, under the same name, when ``ena`` takes it again. The device
plugin's pod exists in the API server (there is no kubelet: a deleted pod
stays terminating, and the test plays its DaemonSet by replacing it).
Needs root (network namespaces).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from eni_controller.agent.agent import Agent, DevicePlugin
from eni_controller.agent.deviceplugin import MARKER
from eni_controller.agent.pci import PCIDevices
from eni_controller.agent.service import dpdk_collaborators
from eni_controller.agent.settings import AgentSettings
from eni_controller.eninode import DPDKRequest, ENINodeSpec, OperState, WantedInterface
from tests.harness.agents import (
    JUMBO,
    SETTLE,
    ENINodes,
    SimNode,
    entry,
    in_process_agent,
    new_eni,
    wait_cycle,
    wait_entry,
    wait_link,
)
from tests.harness.pods import NAMESPACE, Pods
from tests.harness.sysfs import FakeSysfs, Write
from tests.harness.sysfs_links import NamespaceNetdevs
from tests.harness.waiting import until, until_async

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

PCI_A, PCI_B = "0000:00:06.0", "0000:00:07.0"
NAME_A, NAME_B = "ens6", "ens7"  # the names the kernel gives their interfaces
RESOURCE = "intel.com/sriov_dpdk"
VFIO = "vfio-pci"
KERNEL_DRIVER = "ena"
# Someone else's entry, in their own layout: it must come through byte for byte.
THEIRS = '{\n      "resourceName":   "mlnx_sriov",\n      "selectors": {"vendors": ["15b3"]}\n    }'
CONFIG = '{\n  "resourceList": [\n    ' + THEIRS + "\n  ]\n}\n"

BIND_A = [
    Write(path=f"devices/pci0000:00/{PCI_A}/driver_override", data=VFIO, errno=None),
    Write(path=f"bus/pci/drivers/{KERNEL_DRIVER}/unbind", data=PCI_A, errno=None),
    Write(path="bus/pci/drivers_probe", data=PCI_A, errno=None),
]
RELEASE_A = [
    Write(path=f"bus/pci/drivers/{VFIO}/unbind", data=PCI_A, errno=None),
    Write(path=f"devices/pci0000:00/{PCI_A}/driver_override", data="\n", errno=None),
    Write(path="bus/pci/drivers_probe", data=PCI_A, errno=None),
]


@dataclass
class PCINode:
    """A simulated node's PCI side: its sysfs tree (on disk) and the listener that
    keeps the namespace's links in step with it."""

    base: Path
    netdevs: NamespaceNetdevs

    def sysfs(self) -> FakeSysfs:
        """The kernel behind the tree, as a process started now sees it."""
        return FakeSysfs(self.base, netdevs=self.netdevs)

    def pci(self) -> PCIDevices:
        """What a newly started agent gets: a PCIDevices over the tree."""
        sysfs = self.sysfs()
        return PCIDevices(root=sysfs.root, writer=sysfs)


async def two_enis_on_ena(
    node: SimNode, base: Path
) -> tuple[tuple[str, str], tuple[str, str], PCINode]:
    """ENIs a and b at PCI_A and PCI_B, on ena, their links in the node's namespace;
    vfio-pci is loaded, no other DPDK driver is."""
    a, b = new_eni(), new_eni()
    pci_node = PCINode(
        base=base, netdevs=NamespaceNetdevs(node.hypervisor, macs={PCI_A: a[1], PCI_B: b[1]})
    )
    sysfs = pci_node.sysfs()
    sysfs.load_ena()
    sysfs.load_driver(VFIO)
    sysfs.add_device(PCI_A, netdev=NAME_A)
    sysfs.add_device(PCI_B, netdev=NAME_B)
    for eni, name in ((a, NAME_A), (b, NAME_B)):
        link = await node.hypervisor.link(eni[1])
        assert link is not None
        assert link.name == name
    return a, b, pci_node


def dpdk_entry(eni: tuple[str, str], *, driver: str = VFIO) -> WantedInterface:
    return WantedInterface(
        eni_id=eni[0],
        mac_address=eni[1],
        device_index=1,
        node_eni="dpdk",
        dpdk=DPDKRequest(driver=driver, resource_name=RESOURCE),
    )


def restarts(agent: Agent) -> float:
    value = agent.metrics.registry.get_sample_value("eni_agent_device_plugin_restarts_total")
    return value or 0.0


def failed_binds(agent: Agent) -> float:
    value = agent.metrics.registry.get_sample_value(
        "eni_agent_actions_total", {"action": "bind_dpdk", "result": "error"}
    )
    return value or 0.0


def ours(config: Path) -> list[dict[str, object]]:
    """Our entries in the device plugin's config."""
    entries = json.loads(config.read_text())["resourceList"]
    return [e for e in entries if e.get(MARKER[0]) == MARKER[1]]


@dataclass
class PluginPod:
    """The device plugin's pod on the node; ``replace`` plays its DaemonSet."""

    pods: Pods
    node: str
    app: str
    name: str = ""

    async def replace(self) -> None:
        if self.name:
            await self.pods.remove(self.name)
        self.name = f"{self.app}-{secrets.token_hex(3)}"
        await self.pods.create(self.name, node=self.node, labels={"app": self.app})

    async def restarted(self) -> bool:
        return await self.pods.terminating(self.name)


@pytest.fixture
async def plugin_pod(pods: Pods, one_node: SimNode, unique: str) -> PluginPod:
    """The device plugin's pod on the node (removed with the `pods` fixture)."""
    pod = PluginPod(pods=pods, node=one_node.name, app=f"sriovdp-{unique}")
    await pod.replace()
    return pod


def device_plugin(
    kube_api: client.ApiClient, node: SimNode, *, config: Path, pod: PluginPod
) -> DevicePlugin:
    """The device plugin collaborator exactly as `eni-controller agent` wires it."""
    settings = AgentSettings(
        node_name=node.name,
        device_plugin_config=config,
        device_plugin_namespace=NAMESPACE,
        device_plugin_selector=f"app={pod.app}",
        sriov_enabled=True,
    )
    _, plugin = dpdk_collaborators(settings, kube_api)
    assert plugin is not None
    return plugin


async def test_dpdk_bound_once_reported_released_and_rebound_across_a_restart(
    kube_api: client.ApiClient,
    one_node: SimNode,
    eninodes: ENINodes,
    plugin_pod: PluginPod,
    tmp_path: Path,
) -> None:
    hv = one_node.hypervisor
    a, b, pci_node = await two_enis_on_ena(one_node, tmp_path / "sysfs")
    config = tmp_path / "pcidp" / "config.json"
    config.parent.mkdir()
    config.write_text(CONFIG)
    dpdk_spec = ENINodeSpec.of([dpdk_entry(a), entry(b, 2)])
    kernel_spec = ENINodeSpec.of([entry(a, 1), entry(b, 2)])
    await eninodes.create(one_node, dpdk_spec)

    plugin = device_plugin(kube_api, one_node, config=config, pod=plugin_pod)
    async with in_process_agent(kube_api, one_node, pci=pci_node.pci(), device_plugin=plugin) as ag:
        bound = await wait_entry(eninodes, one_node.name, a[0], ready=2, dpdk_bound=True)
        assert (bound.oper_state, bound.driver, bound.pci_address, bound.interface_name) == (
            OperState.DPDK,
            VFIO,
            PCI_A,
            None,
        )
        kernel = await wait_entry(eninodes, one_node.name, b[0], ready=2, mtu=JUMBO)
        assert (kernel.interface_name, kernel.pci_address, kernel.driver) == (
            NAME_B,
            PCI_B,
            KERNEL_DRIVER,
        )
        assert await hv.link(a[1]) is None  # vfio-pci has it: no kernel link any more
        sysfs = pci_node.sysfs()
        assert sysfs.writes() == BIND_A  # bound once, in the kernel's order; b untouched
        assert sysfs.binds(PCI_A) == [VFIO]
        # the device plugin: our entry added, theirs byte for byte, its pod restarted once
        await until_async(plugin_pod.restarted, within=SETTLE)
        text = config.read_text()
        assert text.startswith('{\n  "resourceList": [\n    ' + THEIRS + ",")
        assert [e["selectors"] for e in ours(config)] == [{"pciAddresses": [PCI_A]}]
        # the pod's deletion is seen before the agent counts it
        await until(lambda: restarts(ag) == 1, within=SETTLE)
        settled = await eninodes.get(one_node.name)
        written = config.stat()

    # A restart (a new process: a new view of the same sysfs tree and config file)
    # finds the binding in sysfs and the ENINode: nothing written, nothing restarted.
    await plugin_pod.replace()  # the DaemonSet's new pod, reading the new config
    plugin = device_plugin(kube_api, one_node, config=config, pod=plugin_pod)
    async with in_process_agent(kube_api, one_node, pci=pci_node.pci(), device_plugin=plugin) as ag:
        await until_async(lambda: _ready(ag), within=SETTLE)
        sysfs = pci_node.sysfs()
        assert sysfs.writes() == BIND_A, "written again after a restart"
        assert sysfs.binds(PCI_A) == [VFIO]
        unchanged = await eninodes.get(one_node.name)
        assert unchanged["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]
        assert (config.stat().st_ino, config.stat().st_mtime_ns) == (
            written.st_ino,
            written.st_mtime_ns,
        )
        assert config.read_text() == text
        assert restarts(ag) == 0
        assert not await plugin_pod.restarted()

        # enableDPDK false: given back to ena, its link back under its name, configured
        await eninodes.set_spec(one_node.name, kernel_spec)
        state = await wait_link(hv, a[1], mtu=JUMBO)
        assert state.name == NAME_A
        released = await wait_entry(
            eninodes, one_node.name, a[0], ready=2, dpdk_bound=False, interface_name=NAME_A
        )
        assert (released.driver, released.pci_address) == (KERNEL_DRIVER, PCI_A)
        assert sysfs.writes() == BIND_A + RELEASE_A
        assert sysfs.binds(PCI_A) == [VFIO, KERNEL_DRIVER]
        await until_async(plugin_pod.restarted, within=SETTLE)
        assert config.read_text() == CONFIG  # our entry gone, the file as it was
        # the pod's deletion is seen before the agent counts it
        await until(lambda: restarts(ag) == 1, within=SETTLE)

        # and DPDK asked for again: bound again, once
        await plugin_pod.replace()
        await eninodes.set_spec(one_node.name, dpdk_spec)
        await wait_entry(eninodes, one_node.name, a[0], ready=2, dpdk_bound=True, driver=VFIO)
        assert await hv.link(a[1]) is None
        assert sysfs.writes() == BIND_A + RELEASE_A + BIND_A
        assert sysfs.binds(PCI_A) == [VFIO, KERNEL_DRIVER, VFIO]
        await until_async(plugin_pod.restarted, within=SETTLE)
        assert config.read_text() == text
        # the pod's deletion is seen before the agent counts it
        await until(lambda: restarts(ag) == 2, within=SETTLE)
        assert sysfs.binds(PCI_B) == []
        assert sysfs.unbinds(PCI_B) == []
        writes = len(sysfs.writes())
        print(f"FIGURE agent dpdk: {writes} sysfs writes for bind, restart, release, rebind")


async def test_a_missing_dpdk_driver_is_reported_and_not_retried_in_a_loop(
    kube_api: client.ApiClient, one_node: SimNode, eninodes: ENINodes, tmp_path: Path
) -> None:
    a, _, pci_node = await two_enis_on_ena(one_node, tmp_path / "sysfs")
    await eninodes.create(one_node, ENINodeSpec.of([dpdk_entry(a, driver="igb_uio")]))
    async with in_process_agent(
        kube_api, one_node, pci=pci_node.pci(), backoff_base_seconds=60
    ) as agent:
        failed = await wait_entry(
            eninodes,
            one_node.name,
            a[0],
            ready=0,
            error=f"bind {PCI_A} to igb_uio: driver igb_uio not loaded",
        )
        assert failed.dpdk_bound is False
        assert (failed.interface_name, failed.driver) == (NAME_A, KERNEL_DRIVER)
        for _ in range(3):
            await wait_cycle(agent, eninodes, one_node.name)
        assert failed_binds(agent) == 1, "a held bind was tried again before its backoff ran out"
        sysfs = pci_node.sysfs()
        assert sysfs.writes() == []  # refused before touching the device
        assert sysfs.driver_of(PCI_A) == KERNEL_DRIVER
        # the spec asks for a loaded driver instead: bound at once
        await eninodes.set_spec(one_node.name, ENINodeSpec.of([dpdk_entry(a)]))
        await wait_entry(eninodes, one_node.name, a[0], ready=1, dpdk_bound=True, error="")
        assert await one_node.hypervisor.link(a[1]) is None
        assert sysfs.writes() == BIND_A
        assert failed_binds(agent) == 1


async def _ready(agent: Agent) -> bool:
    return agent.ready()[0]

"""`eni-controller agent` as a process: settings in, the agent and its probes running.

Assembles the agent from its settings, serves /healthz, /readyz and /metrics
from threads (so probes answer even when the loop is stuck), and runs until
SIGTERM or SIGINT. The CLI stays a parser.
"""

from __future__ import annotations

import functools

import structlog
from kubernetes_asyncio import client

from eni_controller.agent.agent import Agent, DevicePlugin
from eni_controller.agent.deviceplugin import DevicePluginConfig, restart_device_plugin
from eni_controller.agent.links import NetlinkLinks
from eni_controller.agent.metrics import AgentMetrics
from eni_controller.agent.pci import PCIDevices
from eni_controller.agent.settings import AgentSettings
from eni_controller.health import HealthServer
from eni_controller.kube.timeouts import with_request_timeout
from eni_controller.lifecycle import serve_until_signalled

log = structlog.get_logger("eni_controller.agent")


def dpdk_collaborators(
    settings: AgentSettings, api: client.ApiClient
) -> tuple[PCIDevices, DevicePlugin | None]:
    """PCI access under AGENT_SYSFS_ROOT and, when SRIOV_ENABLED, the device plugin."""
    pci = PCIDevices(root=settings.sysfs_root)
    if not settings.sriov_enabled:
        return pci, None
    return pci, DevicePlugin(
        config=DevicePluginConfig(path=settings.device_plugin_config),
        restart=functools.partial(
            restart_device_plugin,
            client.CoreV1Api(api),
            namespace=settings.device_plugin_namespace,
            selector=settings.device_plugin_selector,
            node=settings.node_name,
        ),
    )


async def run_agent(settings: AgentSettings, *, api: client.ApiClient) -> None:
    """Run the agent until SIGTERM/SIGINT; NamespaceMissing if AGENT_NETNS is none."""
    bounded = with_request_timeout(api, seconds=settings.kube_request_timeout_seconds)
    metrics = AgentMetrics()
    pci, plugin = dpdk_collaborators(settings, bounded)
    async with NetlinkLinks(netns=settings.netns) as links:
        agent = Agent(
            node_name=settings.node_name,
            api=bounded,
            links=links,
            metrics=metrics,
            pci=pci,
            device_plugin=plugin,
        )
        health = HealthServer(
            registry=metrics.registry,
            liveness=agent.live,
            readiness=agent.ready,
            host=settings.bind_address,
            metrics_port=settings.health_port,
            probe_port=settings.health_port,
        )
        log.info(
            "agent starting",
            node=settings.node_name,
            netns=settings.netns,
            dpdk=pci is not None,
            sriov=plugin is not None,
        )
        await serve_until_signalled(agent.run(), health=health)
        log.info("agent stopped", node=settings.node_name)

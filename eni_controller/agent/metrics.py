"""The node agent's Prometheus metrics, held by one object passed to whoever records.

Like the controller's Metrics: no module-level collectors, each AgentMetrics
owns its registry, so several agents in one process (the tests run one per
simulated node) never collide on registration. The runtime collectors
(process_*, python_*) sit on it too: a DaemonSet's memory and CPU, per node.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from eni_controller.metrics import add_runtime_collectors

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        add_runtime_collectors(r)
        self.actions = Counter(
            "eni_agent_actions_total",
            "Actions on links and PCI devices (set_mtu, set_up, bind_dpdk, release_dpdk)"
            " by result (success, error)",
            ["action", "result"],
            registry=r,
        )
        self.cycles = Counter(
            "eni_agent_cycles_total",
            "Observe-plan-act cycles, by result (success, error)",
            ["result"],
            registry=r,
        )
        self.cycle_duration = Histogram(
            "eni_agent_cycle_duration_seconds",
            "Duration of one observe-plan-act cycle, status write included",
            registry=r,
            buckets=_BUCKETS,
        )
        self.status_writes = Counter(
            "eni_agent_status_writes_total",
            "ENINode status patches by result (success, error); none when nothing changed",
            ["result"],
            registry=r,
        )
        self.link_events = Counter(
            "eni_agent_link_events_total",
            "Netlink link events received, by whether they concern a wanted ENI",
            ["relevant"],
            registry=r,
        )
        self.interfaces = Gauge(
            "eni_agent_interfaces",
            "ENIs of this node: wanted by the spec, ready, and with an error",
            ["state"],
            registry=r,
        )
        self.device_plugin_restarts = Counter(
            "eni_agent_device_plugin_restarts_total",
            "Device plugin pods deleted so that they reload a changed config",
            registry=r,
        )

"""Agent settings from the environment: defaults, and one clear error per bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from eni_controller.agent.settings import AgentSettings
from eni_controller.envvars import ConfigError


def test_defaults_with_only_the_node_name() -> None:
    assert AgentSettings.from_env({"NODE_NAME": "ip-10-0-1-5.ec2.internal"}) == AgentSettings(
        node_name="ip-10-0-1-5.ec2.internal",
        sysfs_root=Path("/sys"),
        netns=None,
        device_plugin_config=Path("/etc/pcidp/config.json"),
        device_plugin_namespace="kube-system",
        device_plugin_selector="app=sriovdp",
        sriov_enabled=False,
        bind_address="0.0.0.0",
        health_port=8081,
        kube_request_timeout_seconds=30.0,
        log_level="info",
    )


def test_every_variable_is_read() -> None:
    settings = AgentSettings.from_env(
        {
            "NODE_NAME": "node-1",
            "AGENT_SYSFS_ROOT": "/tmp/sys",
            "AGENT_NETNS": "node-1.ns",
            "DEVICE_PLUGIN_CONFIG": "/etc/pcidp/other.json",
            "DEVICE_PLUGIN_NAMESPACE": "sriov",
            "DEVICE_PLUGIN_SELECTOR": "app=sriovdp, tier=node",
            "SRIOV_ENABLED": "true",
            "BIND_ADDRESS": "127.0.0.1",
            "AGENT_HEALTH_PORT": "9181",
            "KUBE_REQUEST_TIMEOUT": "10s",
            "LOG_LEVEL": "DEBUG",
        }
    )
    assert settings == AgentSettings(
        node_name="node-1",
        sysfs_root=Path("/tmp/sys"),
        netns="node-1.ns",
        device_plugin_config=Path("/etc/pcidp/other.json"),
        device_plugin_namespace="sriov",
        device_plugin_selector="app=sriovdp,tier=node",
        sriov_enabled=True,
        bind_address="127.0.0.1",
        health_port=9181,
        kube_request_timeout_seconds=10.0,
        log_level="debug",
    )


def test_node_name_is_required_and_said_so() -> None:
    with pytest.raises(ConfigError) as caught:
        AgentSettings.from_env({"NODE_NAME": "  "})
    assert caught.value.problems == (
        "NODE_NAME: required (set it from the downward API: fieldRef spec.nodeName)",
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("NODE_NAME", "Node_1", "not a Node name"),
        ("AGENT_SYSFS_ROOT", "sys", "not an absolute path"),
        ("AGENT_NETNS", "../etc", "not a network namespace name"),
        ("AGENT_NETNS", "a/b", "not a network namespace name"),
        ("DEVICE_PLUGIN_CONFIG", "config.json", "not an absolute path"),
        ("DEVICE_PLUGIN_NAMESPACE", "Kube_System", "not a Kubernetes namespace name"),
        ("DEVICE_PLUGIN_SELECTOR", "app", "not an equality label selector"),
        ("DEVICE_PLUGIN_SELECTOR", "app!=x", "not an equality label selector"),
        ("DEVICE_PLUGIN_SELECTOR", "app==x", "not an equality label selector"),
        ("SRIOV_ENABLED", "yes", "not a boolean"),
        ("AGENT_HEALTH_PORT", "70000", "not a TCP port"),
        ("BIND_ADDRESS", "localhost", "not an IP address"),
        ("LOG_LEVEL", "loud", "not a log level"),
    ],
)
def test_a_bad_value_is_one_error_naming_the_variable(name: str, value: str, expected: str) -> None:
    env = {"NODE_NAME": "node-1", name: value}
    with pytest.raises(ConfigError) as caught:
        AgentSettings.from_env(env)
    (problem,) = caught.value.problems
    assert problem.startswith(f'{name}="{value}": {expected}'), problem


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        AgentSettings.from_env({"AGENT_HEALTH_PORT": "0", "SRIOV_ENABLED": "maybe"})
    assert [p.split(":")[0].split("=")[0] for p in caught.value.problems] == [
        "NODE_NAME",
        "SRIOV_ENABLED",
        "AGENT_HEALTH_PORT",
    ]

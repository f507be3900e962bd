"""Node agent settings, read once from environment variables at start-up.

Same reader and rules as the controller's configuration (config.py): every
variable is checked up front, and a bad value stops the agent with one error
naming each variable and what was expected, instead of a default that
misbehaves later on one node in a thousand. Only what the agent uses is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eni_controller.envvars import (
    KUBE_REQUEST_TIMEOUT,
    LOG_SETTINGS,
    ConfigError,
    LogFormat,
    LogLevel,
    Setting,
    bind_address,
    boolean,
    namespace,
    pattern,
    port,
    read_settings,
)
from eni_controller.spec import (
    DNS_SUBDOMAIN_MAX_LENGTH,
    DNS_SUBDOMAIN_PATTERN,
    check_label_value,
    label_key_problem,
)

# A file name under /var/run/netns, as `ip netns add` accepts it.
_netns: Final = pattern(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}"),
    "not a network namespace name (a file name under /var/run/netns:"
    " letters, digits, '_', '.', '-', no '/')",
)


def _node_name(text: str) -> str:
    if len(text) > DNS_SUBDOMAIN_MAX_LENGTH or not DNS_SUBDOMAIN_PATTERN.fullmatch(text):
        raise ValueError("not a Node name (a lowercase DNS subdomain, as spec.nodeName)")
    return text


def _absolute_path(text: str) -> Path:
    path = Path(text)
    if not path.is_absolute() or "\0" in text:
        raise ValueError("not an absolute path")
    return path


def _selector(text: str) -> str:
    """An equality label selector: ``key=value[,key=value...]``."""
    for term in text.split(","):
        key, sep, value = term.strip().partition("=")
        problem = (
            "a term is not key=value"
            if not sep or value.startswith("=")
            else label_key_problem(key) or check_label_value(value)
        )
        if problem is not None:
            raise ValueError(f"not an equality label selector such as app=sriovdp ({problem})")
    return ",".join(term.strip() for term in text.split(","))


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentSettings:
    """Validated agent settings from :meth:`from_env`; field defaults are the documented
    defaults (constructing one directly does not validate: meant for tests)."""

    node_name: str = ""  # required: from_env refuses an unset NODE_NAME
    sysfs_root: Path = Path("/sys")
    netns: str | None = None  # None: the agent's own network namespace
    device_plugin_config: Path = Path("/etc/pcidp/config.json")
    device_plugin_namespace: str = "kube-system"
    device_plugin_selector: str = "app=sriovdp"
    sriov_enabled: bool = False  # False: never touch the device plugin's config or pods
    bind_address: str = "0.0.0.0"  # for /healthz, /readyz and /metrics
    health_port: int = 8081
    kube_request_timeout_seconds: float = 30.0
    log_level: LogLevel = "info"
    log_format: LogFormat = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        """Settings from ``env`` (``os.environ`` when None); ConfigError lists every problem."""
        settings, problems = read_settings(
            AGENT_SETTINGS, cls(), os.environ if env is None else env
        )
        if not settings.node_name and not any(p.startswith("NODE_NAME=") for p in problems):
            problems.insert(
                0, "NODE_NAME: required (set it from the downward API: fieldRef spec.nodeName)"
            )
        if problems:
            raise ConfigError(problems)
        return settings


AGENT_SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        env="NODE_NAME",
        path="node_name",
        parse=_node_name,
        help="this node (downward API: fieldRef spec.nodeName)",
        default_text="required",
    ),
    Setting(
        env="AGENT_SYSFS_ROOT",
        path="sysfs_root",
        parse=_absolute_path,
        help="where sysfs is mounted",
    ),
    Setting(
        env="AGENT_NETNS",
        path="netns",
        parse=_netns,
        help="network namespace (under /var/run/netns) whose links are configured",
    ),
    Setting(
        env="DEVICE_PLUGIN_CONFIG",
        path="device_plugin_config",
        parse=_absolute_path,
        help="the SR-IOV device plugin's config file",
    ),
    Setting(
        env="DEVICE_PLUGIN_NAMESPACE",
        path="device_plugin_namespace",
        parse=namespace,
        help="namespace of the device plugin's pods",
    ),
    Setting(
        env="DEVICE_PLUGIN_SELECTOR",
        path="device_plugin_selector",
        parse=_selector,
        help="label selector of the device plugin's pods",
    ),
    Setting(
        env="SRIOV_ENABLED",
        path="sriov_enabled",
        parse=boolean,
        help="manage the device plugin's config and restart its pods",
    ),
    Setting(
        env="BIND_ADDRESS",
        path="bind_address",
        parse=bind_address,
        help="address of /healthz, /readyz and /metrics",
    ),
    Setting(env="AGENT_HEALTH_PORT", path="health_port", parse=port, help="their port"),
    KUBE_REQUEST_TIMEOUT,
    *LOG_SETTINGS,
)

"""Node agent settings, read once from environment variables at start-up.

Same rules as the controller's configuration (eni_controller/config.py), with
the same reader: every variable is checked up front, and a bad value stops the
agent with one error naming each variable and what was expected, instead of a
default that misbehaves later on one node in a thousand. Only what the agent
uses is read; the controller's variables mean nothing here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eni_controller.config import (
    ConfigError,
    LogLevel,
    _bind_address,
    _bool,
    _EnvReader,
    _log_level,
    _namespace,
    _port,
    _positive_duration,
)
from eni_controller.model import (
    _DNS_SUBDOMAIN_MAX_LENGTH,
    _DNS_SUBDOMAIN_PATTERN,
    _check_label_value,
    _label_key_problem,
)

# A file name under /var/run/netns, as `ip netns add` accepts it.
_NETNS_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


def _node_name(text: str) -> str:
    if len(text) > _DNS_SUBDOMAIN_MAX_LENGTH or not _DNS_SUBDOMAIN_PATTERN.fullmatch(text):
        raise ValueError("not a Node name (a lowercase DNS subdomain, as spec.nodeName)")
    return text


def _netns(text: str) -> str:
    if not _NETNS_RE.fullmatch(text):
        raise ValueError(
            "not a network namespace name (a file name under /var/run/netns:"
            " letters, digits, '_', '.', '-', no '/')"
        )
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
            else _label_key_problem(key) or _check_label_value(value)
        )
        if problem is not None:
            raise ValueError(f"not an equality label selector such as app=sriovdp ({problem})")
    return ",".join(term.strip() for term in text.split(","))


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentSettings:
    """Validated agent settings; build them with :meth:`from_env`.

    Field defaults are the documented defaults of each variable; constructing
    ``AgentSettings`` directly does not validate (meant for tests).
    """

    node_name: str
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AgentSettings:
        """Settings from ``env`` (``os.environ`` when None); ConfigError lists every problem."""
        r = _EnvReader(os.environ if env is None else env)
        d = cls(node_name="")
        node_name = r.optional("NODE_NAME", _node_name)
        if node_name is None and not any(p.startswith("NODE_NAME=") for p in r.problems):
            r.problems.append(
                "NODE_NAME: required (set it from the downward API: fieldRef spec.nodeName)"
            )
        settings = cls(
            node_name=node_name or "",
            sysfs_root=r.get("AGENT_SYSFS_ROOT", _absolute_path, d.sysfs_root),
            netns=r.optional("AGENT_NETNS", _netns),
            device_plugin_config=r.get(
                "DEVICE_PLUGIN_CONFIG", _absolute_path, d.device_plugin_config
            ),
            device_plugin_namespace=r.get(
                "DEVICE_PLUGIN_NAMESPACE", _namespace, d.device_plugin_namespace
            ),
            device_plugin_selector=r.get(
                "DEVICE_PLUGIN_SELECTOR", _selector, d.device_plugin_selector
            ),
            sriov_enabled=r.get("SRIOV_ENABLED", _bool, d.sriov_enabled),
            bind_address=r.get("BIND_ADDRESS", _bind_address, d.bind_address),
            health_port=r.get("AGENT_HEALTH_PORT", _port, d.health_port),
            kube_request_timeout_seconds=r.get(
                "KUBE_REQUEST_TIMEOUT", _positive_duration, d.kube_request_timeout_seconds
            ),
            log_level=r.get("LOG_LEVEL", _log_level, d.log_level),
        )
        if r.problems:
            raise ConfigError(r.problems)
        return settings

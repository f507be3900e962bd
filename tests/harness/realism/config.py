"""The realism switches: their names, types, defaults, and JSON validation.

A test sends `{"switch": value, ...}` to `/_realism/configure`; a typo must fail
loudly (HTTP 400 naming the key) instead of silently testing nothing, so every
value is checked here before any of it is applied. No moto import: the tests'
client imports the presets from this module.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# AWS rules moto does not enforce; each is a plain on/off switch.
RULES = (
    "device_index_conflicts",
    "in_use_delete",
    "in_use_attach",
    "eni_limits",
    "az_check",
    "instance_state_check",
    "security_group_check",
    "client_token",
    "delete_on_termination",
)
# Delays in seconds; 0 means "like moto: at once". `answer_latency`: every
# mutating call's answer is held this long after moto acted on it (EC2's own
# request latency), so a client killed mid-call leaves the change made and
# its answer unread. `answer_latencies` sets it per action or action class
# (`Switches.answer_delay`: EC2 answers a create more slowly than a detach).
DURATIONS = ("attach_latency", "detach_latency", "consistency_window", "answer_latency")

DESCRIBE = "describe"
MUTATING = "mutating"
ACTION_CLASSES = (DESCRIBE, MUTATING)


def action_class(action: str) -> str:
    """EC2's class of an action (for throttling and answer latency): Describe* or
    everything else."""
    return DESCRIBE if action.startswith("Describe") else MUTATING


# AWS EC2 account defaults, from the "Request token bucket sizes and refill
# rates" table of "Request throttling for the Amazon EC2 API"
# (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html):
# non-mutating actions (Describe*) 100 tokens, refill 20/s; mutating actions
# 50 tokens, refill 5/s. [capacity, refill per second].
AWS_DESCRIBE_BUCKET = (100.0, 20.0)
AWS_MUTATING_BUCKET = (50.0, 5.0)
AWS_THROTTLE: dict[str, Any] = {
    "buckets": {DESCRIBE: list(AWS_DESCRIBE_BUCKET), MUTATING: list(AWS_MUTATING_BUCKET)}
}


# A request with this header is the test looking at EC2, not a client of it:
# not counted, throttled, failed or kept out of the consistency window.
OBSERVER_HEADER = "X-Realism-Observer"


class ConfigError(ValueError):
    """A configure payload that names an unknown switch or has a bad value."""


@dataclass(frozen=True, kw_only=True)
class BucketSpec:
    capacity: float
    refill_per_second: float


@dataclass(frozen=True, kw_only=True)
class ThrottleConfig:
    buckets: Mapping[str, BucketSpec]

    def to_json(self) -> dict[str, Any]:
        return {
            "buckets": {
                name: [spec.capacity, spec.refill_per_second] for name, spec in self.buckets.items()
            }
        }


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    rate_5xx: float = 0.0
    rate_unavailable: float = 0.0
    rate_timeout: float = 0.0
    timeout_seconds: float = 1.0
    seed: int = 0
    actions: frozenset[str] | None = None

    def applies_to(self, action: str) -> bool:
        return self.actions is None or action in self.actions

    def to_json(self) -> dict[str, Any]:
        return {
            "rate_5xx": self.rate_5xx,
            "rate_unavailable": self.rate_unavailable,
            "rate_timeout": self.rate_timeout,
            "timeout_seconds": self.timeout_seconds,
            "seed": self.seed,
            "actions": sorted(self.actions) if self.actions is not None else None,
        }


@dataclass(frozen=True, kw_only=True)
class Switches:
    """Every switch, all off by default (= plain moto)."""

    device_index_conflicts: bool = False
    in_use_delete: bool = False
    in_use_attach: bool = False
    eni_limits: bool = False
    az_check: bool = False
    instance_state_check: bool = False
    security_group_check: bool = False
    client_token: bool = False
    delete_on_termination: bool = False
    attach_latency: float = 0.0
    detach_latency: float = 0.0
    consistency_window: float = 0.0
    answer_latency: float = 0.0
    # Seconds an answer is held, by EC2 action name or action class ("describe",
    # "mutating"): see `answer_delay`.
    answer_latencies: Mapping[str, float] = dataclasses.field(default_factory=dict)
    throttle: ThrottleConfig | None = None
    faults: FaultConfig | None = None
    page_size: int | None = None
    # Actions answered UnauthorizedOperation, as for an IAM policy without them.
    deny_actions: frozenset[str] = frozenset()
    # Subnets whose CreateNetworkInterface is answered UnauthorizedOperation (an
    # IAM policy conditioned on the subnet).
    deny_subnets: frozenset[str] = frozenset()

    def merged(self, payload: object) -> Switches:
        """These switches with `payload` applied; ConfigError if any of it is bad."""
        if not isinstance(payload, dict):
            raise ConfigError("configure expects a JSON object of switches")
        unknown = sorted(set(payload) - set(_PARSERS))
        if unknown:
            raise ConfigError(
                f"unknown switch(es) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(_PARSERS))}"
            )
        changes = {name: _PARSERS[name](name, value) for name, value in payload.items()}
        return dataclasses.replace(self, **changes)

    def answer_delay(self, action: str) -> float:
        """How long `action`'s answer is held after moto ran it: its own entry in
        `answer_latencies`, else its class's, else `answer_latency` for a mutating
        action and nothing for a describe."""
        cls = action_class(action)
        default = self.answer_latency if cls == MUTATING else 0.0
        return self.answer_latencies.get(action, self.answer_latencies.get(cls, default))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in (*RULES, *DURATIONS)}
        out["answer_latencies"] = dict(self.answer_latencies)
        out["throttle"] = self.throttle.to_json() if self.throttle else None
        out["faults"] = self.faults.to_json() if self.faults else None
        out["page_size"] = self.page_size
        out["deny_actions"] = sorted(self.deny_actions)
        out["deny_subnets"] = sorted(self.deny_subnets)
        return out


def _number(value: object) -> float | None:
    """`value` as a float if it is a finite JSON number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _seconds(name: str, value: object) -> float:
    seconds = _number(value)
    if seconds is None or seconds < 0:
        raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return seconds


def _rate(name: str, value: object) -> float:
    rate = _number(value)
    if rate is None or not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
    return rate


def _throttle(name: str, value: object) -> ThrottleConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"buckets"}:
        raise ConfigError(f'{name} must be null or {{"buckets": {{class: [capacity, refill]}}}}')
    buckets = value["buckets"]
    if not isinstance(buckets, dict):
        raise ConfigError(f"{name}.buckets must be an object")
    specs: dict[str, BucketSpec] = {}
    for cls, spec in buckets.items():
        if cls not in ACTION_CLASSES:
            raise ConfigError(
                f"{name}: unknown action class {cls!r}; known: {', '.join(ACTION_CLASSES)}"
            )
        numbers = [_number(x) for x in spec] if isinstance(spec, list) else []
        match numbers:
            case [float(capacity), float(refill)] if capacity >= 1 and refill >= 0:
                specs[cls] = BucketSpec(capacity=capacity, refill_per_second=refill)
            case _:
                raise ConfigError(
                    f"{name}.buckets.{cls} must be [capacity >= 1, refill_per_second >= 0], "
                    f"got {spec!r}"
                )
    return ThrottleConfig(buckets=specs)


def _faults(name: str, value: object) -> FaultConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be null or an object")
    known = {f.name for f in dataclasses.fields(FaultConfig)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {unknown}; known: {sorted(known)}")
    rate_5xx = _rate(f"{name}.rate_5xx", value.get("rate_5xx", 0.0))
    rate_unavailable = _rate(f"{name}.rate_unavailable", value.get("rate_unavailable", 0.0))
    rate_timeout = _rate(f"{name}.rate_timeout", value.get("rate_timeout", 0.0))
    if rate_5xx + rate_unavailable + rate_timeout > 1.0:
        raise ConfigError(f"{name}: rate_5xx + rate_unavailable + rate_timeout must be <= 1")
    seed = value.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{name}.seed must be an integer, got {seed!r}")
    actions = value.get("actions")
    if actions is not None and (
        not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)
    ):
        raise ConfigError(f"{name}.actions must be null or a list of EC2 action names")
    return FaultConfig(
        rate_5xx=rate_5xx,
        rate_unavailable=rate_unavailable,
        rate_timeout=rate_timeout,
        timeout_seconds=_seconds(f"{name}.timeout_seconds", value.get("timeout_seconds", 1.0)),
        seed=seed,
        actions=frozenset(actions) if actions is not None else None,
    )


def _latencies(name: str, value: object) -> dict[str, float]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ConfigError(f'{name} must be an object {{"Action" or class: seconds}}')
    return {key: _seconds(f"{name}.{key}", seconds) for key, seconds in value.items()}


def _page_size(name: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be null or an integer >= 1, got {value!r}")
    return value


def _actions(name: str, value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise ConfigError(f"{name} must be a list of names or IDs, got {value!r}")
    return frozenset(value)


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    **dict.fromkeys(RULES, _bool),
    **dict.fromkeys(DURATIONS, _seconds),
    "answer_latencies": _latencies,
    "throttle": _throttle,
    "faults": _faults,
    "page_size": _page_size,
    "deny_actions": _actions,
    "deny_subnets": _actions,
}

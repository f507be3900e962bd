"""Controller configuration, read once from environment variables at start-up.

The variable names and defaults match the Go aws-multi-eni-controller, so existing
Helm values and manifests keep working. Everything is validated up front: a bad
value stops the controller with one error listing every problem, instead of
falling back to a default and misbehaving later. Durations use Go syntax
(``30s``, ``5m``, ``1h30m``) and booleans use Go's ``strconv.ParseBool`` spellings.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from eni_controller.aws.ratelimit import (
    DEFAULT_BUDGET_SHARE,
    DEFAULT_LIMITS,
    BucketSpec,
    RateLimits,
)
from eni_controller.reconcile.retries import BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS

T = TypeVar("T")
LogLevel = Literal["debug", "info", "warning", "error"]

MAX_COUNT = 1000
"""Upper bound for every integer setting: anything larger is a typo, not a tuning choice."""

_NANOSECONDS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
# "ms" must come before "m" and "s" so that "5ms" is not read as 5 minutes.
_DURATION_PART = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION_RE = re.compile(rf"[-+]?(?:{_DURATION_PART})+")
_DURATION_PART_RE = re.compile(_DURATION_PART)

_REGION_RE = re.compile(
    r"[a-z]{2}(?:-gov|-iso[a-z]?)?"
    r"-(?:central|north|south|east|west|northeast|northwest|southeast|southwest)"
    r"-[1-9][0-9]?"
)
CLUSTER_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
VPC_ID_PATTERN = re.compile(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_INT_RE = re.compile(r"[-+]?[0-9]+")
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_LOG_LEVELS: dict[str, LogLevel] = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "error": "error",
}


def parse_duration(text: str) -> float:
    """Parse a Go ``time.ParseDuration`` string such as ``"1h30m"`` into seconds.

    Accepts exactly Go's grammar: an optional sign, then one or more
    ``<number><unit>`` parts (the number may have a fraction; units are ns, us,
    µs, μs, ms, s, m, h), or a bare ``"0"``. Like Go, fractions below a
    nanosecond are truncated and values beyond int64 nanoseconds are rejected.
    Raises ValueError for anything else.
    """
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}")
    negative = text.startswith("-")
    nanoseconds = sum(
        int(Fraction(number) * _NANOSECONDS_PER_UNIT[unit])
        for number, unit in _DURATION_PART_RE.findall(text)
    )
    if nanoseconds > 2**63 - (0 if negative else 1):
        raise ValueError(f"duration {text!r} out of range")
    return (-nanoseconds if negative else nanoseconds) / 1_000_000_000


def _positive_duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValueError("not a duration (use Go syntax such as 30s, 5m, 1h30m)") from None
    if seconds <= 0:
        raise ValueError("must be a duration greater than zero")
    return seconds


def _count(text: str) -> int:
    expected = f"a whole number from 1 to {MAX_COUNT}"
    if not _INT_RE.fullmatch(text):
        raise ValueError(f"not an integer (expected {expected})")
    if not 1 <= int(text) <= MAX_COUNT:
        raise ValueError(f"out of range (expected {expected})")
    return int(text)


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number (expected requests per second, such as 5 or 2.5)") from None
    if not 0 < value <= MAX_COUNT:
        raise ValueError(f"out of range (expected more than 0 and at most {MAX_COUNT})")
    return value


def _share(text: str) -> float:
    expected = "a fraction of the account's EC2 request budget: more than 0, at most 1, such as 0.5"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number (expected {expected})") from None
    if not 0 < value <= 1:  # NaN fails this too
        raise ValueError(f"out of range (expected {expected})")
    return value


def _bind_address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("not an IP address (such as 0.0.0.0 or 127.0.0.1)") from None
    return text


def _port(text: str) -> int:
    if not _INT_RE.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError("not a TCP port (expected a whole number from 1 to 65535)")
    return int(text)


def _bool(text: str) -> bool:
    if text not in _BOOLS:
        raise ValueError("not a boolean (use true or false)")
    return _BOOLS[text]


def _pattern(regex: re.Pattern[str], expected: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not regex.fullmatch(text):
            raise ValueError(expected)
        return text

    return parse


_region = _pattern(_REGION_RE, "not an AWS region name (such as us-east-1 or us-gov-west-1)")
_cluster_name = _pattern(
    CLUSTER_NAME_PATTERN,
    "not a valid EKS cluster name (1-100 letters, digits, '-' or '_', starting alphanumeric)",
)
_namespace = _pattern(
    re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"), "not a Kubernetes namespace name"
)
_vpc_id = _pattern(VPC_ID_PATTERN, "not a VPC ID (vpc- followed by 8 or 17 lowercase hex digits)")


def _endpoint_url(text: str) -> str:
    expected = "not an http(s) URL with a host (such as http://127.0.0.1:5000)"
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", text):
        raise ValueError(expected)
    return text


_TAG_KEY_MAX, _TAG_VALUE_MAX = 128, 256  # EC2's limits on a tag's key and value


def _allow_tag(text: str) -> tuple[str, str]:
    """``key=value``: the tag an allowed subnet or security group carries."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        raise ValueError("not a tag (expected key=value, such as multus=true)")
    if len(key) > _TAG_KEY_MAX or len(value) > _TAG_VALUE_MAX:
        raise ValueError(
            f"tag too long (keys are at most {_TAG_KEY_MAX} characters,"
            f" values at most {_TAG_VALUE_MAX})"
        )
    return key, value


def _log_level(text: str) -> LogLevel:
    level = _LOG_LEVELS.get(text.lower())
    if level is None:
        raise ValueError(f"not a log level (use one of {', '.join(_LOG_LEVELS)})")
    return level


class ConfigError(ValueError):
    """One or more environment variables are invalid; ``problems`` has one line per variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class _EnvReader:
    """Reads variables one at a time, recording every bad value instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        """Parse ``name`` if set; surrounding whitespace is ignored and empty means unset."""
        raw = self._env.get(name, "").strip()
        if not raw:
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            # json.dumps quotes like Go's %q, escaping newlines and quotes in the value.
            self.problems.append(f"{name}={json.dumps(raw, ensure_ascii=False)}: {exc}")
            return None

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        value = self.optional(name, parse)
        return default if value is None else value


@dataclass(frozen=True, kw_only=True, slots=True)
class CircuitBreakerConfig:
    """Settings for the circuit breaker that guards EC2 API calls."""

    enabled: bool = True
    failure_threshold: int = 5
    success_threshold: int = 3
    timeout_seconds: float = 30.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """Validated controller settings; build it with :meth:`from_env`.

    The field defaults are the documented defaults of each environment variable.
    Constructing ``Config`` directly does not validate (it is meant for tests).
    """

    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    cluster_name: str | None = None
    vpc_id: str | None = None
    reconcile_period_seconds: float = 300.0  # 5m
    detachment_timeout_seconds: float = 15.0  # 15s
    max_cleanup_duration_seconds: float = 1800.0  # 30m
    max_concurrent_reconciles: int = 5
    max_concurrent_eni_cleanup: int = 3
    default_device_index: int = 1  # device index 0 is the instance's primary ENI
    default_delete_on_termination: bool = True
    circuit_breaker: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    ec2_rate_limits: RateLimits = DEFAULT_LIMITS
    # the share of those buckets this controller takes: the account's are shared
    # with the VPC CNI, Karpenter and others (aws/ratelimit.py)
    ec2_budget_share: float = DEFAULT_BUDGET_SHARE
    enable_leader_election: bool = True
    leader_lease_duration_seconds: float = 15.0
    leader_renew_deadline_seconds: float = 10.0
    leader_retry_period_seconds: float = 2.0
    pod_namespace: str = "default"  # where the leader Lease lives
    bind_address: str = "0.0.0.0"  # for /metrics and the probes
    metrics_port: int = 8080
    health_probe_port: int = 8081
    orphan_sweep_interval_seconds: float = 300.0  # 5m
    orphan_grace_period_seconds: float = 600.0  # 10m
    # per-slot backoff after a failed EC2 step: base * 2**(failures - 1), capped
    error_backoff_base_seconds: float = BACKOFF_BASE_SECONDS
    error_backoff_max_seconds: float = BACKOFF_MAX_SECONDS
    # every non-watch Kubernetes request (patches, Event writes, lists, Lease calls)
    kube_request_timeout_seconds: float = 30.0  # 30s
    # one reconcile of one NodeENI; an overrun is cancelled and retried with backoff
    reconcile_timeout_seconds: float = 300.0  # 5m
    log_level: LogLevel = "info"
    # allow-lists by tag (key, value): a subnet / security group without it is refused
    subnet_allow_tag: tuple[str, str] | None = None
    security_group_allow_tag: tuple[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build a Config from ``env`` (``os.environ`` when None).

        Raises ConfigError listing every invalid variable, never just the first.
        """
        r = _EnvReader(os.environ if env is None else env)
        d, cb, rl = cls(), CircuitBreakerConfig(), DEFAULT_LIMITS
        config = cls(
            aws_region=r.get("AWS_REGION", _region, d.aws_region),
            aws_endpoint_url=r.optional("AWS_ENDPOINT_URL", _endpoint_url),
            cluster_name=r.optional("CLUSTER_NAME", _cluster_name),
            vpc_id=r.optional("VPC_ID", _vpc_id),
            reconcile_period_seconds=r.get(
                "RECONCILE_PERIOD", _positive_duration, d.reconcile_period_seconds
            ),
            detachment_timeout_seconds=r.get(
                "DETACHMENT_TIMEOUT", _positive_duration, d.detachment_timeout_seconds
            ),
            max_cleanup_duration_seconds=r.get(
                "MAX_CLEANUP_DURATION", _positive_duration, d.max_cleanup_duration_seconds
            ),
            max_concurrent_reconciles=r.get(
                "MAX_CONCURRENT_RECONCILES", _count, d.max_concurrent_reconciles
            ),
            max_concurrent_eni_cleanup=r.get(
                "MAX_CONCURRENT_ENI_CLEANUP", _count, d.max_concurrent_eni_cleanup
            ),
            default_device_index=r.get("DEFAULT_DEVICE_INDEX", _count, d.default_device_index),
            default_delete_on_termination=r.get(
                "DEFAULT_DELETE_ON_TERMINATION", _bool, d.default_delete_on_termination
            ),
            circuit_breaker=CircuitBreakerConfig(
                enabled=r.get("CIRCUIT_BREAKER_ENABLED", _bool, cb.enabled),
                failure_threshold=r.get(
                    "CIRCUIT_BREAKER_FAILURE_THRESHOLD", _count, cb.failure_threshold
                ),
                success_threshold=r.get(
                    "CIRCUIT_BREAKER_SUCCESS_THRESHOLD", _count, cb.success_threshold
                ),
                timeout_seconds=r.get(
                    "CIRCUIT_BREAKER_TIMEOUT", _positive_duration, cb.timeout_seconds
                ),
            ),
            ec2_rate_limits=RateLimits(
                describe=BucketSpec(
                    capacity=r.get("EC2_DESCRIBE_BURST", _count, rl.describe.capacity),
                    refill_per_second=r.get(
                        "EC2_DESCRIBE_RATE", _positive_rate, rl.describe.refill_per_second
                    ),
                ),
                mutating=BucketSpec(
                    capacity=r.get("EC2_MUTATING_BURST", _count, rl.mutating.capacity),
                    refill_per_second=r.get(
                        "EC2_MUTATING_RATE", _positive_rate, rl.mutating.refill_per_second
                    ),
                ),
            ),
            ec2_budget_share=r.get("EC2_BUDGET_SHARE", _share, d.ec2_budget_share),
            enable_leader_election=r.get("ENABLE_LEADER_ELECTION", _bool, d.enable_leader_election),
            leader_lease_duration_seconds=r.get(
                "LEADER_ELECTION_LEASE_DURATION",
                _positive_duration,
                d.leader_lease_duration_seconds,
            ),
            leader_renew_deadline_seconds=r.get(
                "LEADER_ELECTION_RENEW_DEADLINE",
                _positive_duration,
                d.leader_renew_deadline_seconds,
            ),
            leader_retry_period_seconds=r.get(
                "LEADER_ELECTION_RETRY_PERIOD", _positive_duration, d.leader_retry_period_seconds
            ),
            pod_namespace=r.get("POD_NAMESPACE", _namespace, d.pod_namespace),
            bind_address=r.get("BIND_ADDRESS", _bind_address, d.bind_address),
            metrics_port=r.get("METRICS_PORT", _port, d.metrics_port),
            health_probe_port=r.get("HEALTH_PROBE_PORT", _port, d.health_probe_port),
            orphan_sweep_interval_seconds=r.get(
                "ORPHAN_SWEEP_INTERVAL", _positive_duration, d.orphan_sweep_interval_seconds
            ),
            orphan_grace_period_seconds=r.get(
                "ORPHAN_GRACE_PERIOD", _positive_duration, d.orphan_grace_period_seconds
            ),
            error_backoff_base_seconds=r.get(
                "ERROR_BACKOFF_BASE", _positive_duration, d.error_backoff_base_seconds
            ),
            error_backoff_max_seconds=r.get(
                "ERROR_BACKOFF_MAX", _positive_duration, d.error_backoff_max_seconds
            ),
            kube_request_timeout_seconds=r.get(
                "KUBE_REQUEST_TIMEOUT", _positive_duration, d.kube_request_timeout_seconds
            ),
            reconcile_timeout_seconds=r.get(
                "RECONCILE_TIMEOUT", _positive_duration, d.reconcile_timeout_seconds
            ),
            log_level=r.get("LOG_LEVEL", _log_level, d.log_level),
            subnet_allow_tag=r.optional("SUBNET_ALLOW_TAG", _allow_tag),
            security_group_allow_tag=r.optional("SECURITY_GROUP_ALLOW_TAG", _allow_tag),
        )
        lease = (
            config.leader_retry_period_seconds,
            config.leader_renew_deadline_seconds,
            config.leader_lease_duration_seconds,
        )
        if not r.problems and not lease[0] < lease[1] < lease[2]:
            r.problems.append(
                "LEADER_ELECTION_RETRY_PERIOD < LEADER_ELECTION_RENEW_DEADLINE < "
                "LEADER_ELECTION_LEASE_DURATION must hold "
                f"(got {lease[0]}s, {lease[1]}s, {lease[2]}s)"
            )
        if not r.problems and config.error_backoff_base_seconds > config.error_backoff_max_seconds:
            r.problems.append(
                "ERROR_BACKOFF_BASE <= ERROR_BACKOFF_MAX must hold "
                f"(got {config.error_backoff_base_seconds}s, {config.error_backoff_max_seconds}s)"
            )
        if (
            not r.problems
            and config.kube_request_timeout_seconds >= config.reconcile_timeout_seconds
        ):
            # a reconcile makes several requests: one must time out before the reconcile does
            r.problems.append(
                "KUBE_REQUEST_TIMEOUT < RECONCILE_TIMEOUT must hold "
                f"(got {config.kube_request_timeout_seconds}s, {config.reconcile_timeout_seconds}s)"
            )
        if r.problems:
            raise ConfigError(r.problems)
        return config

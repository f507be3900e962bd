"""Controller configuration, read once from environment variables at start-up.

The variable names and defaults match the Go aws-multi-eni-controller, so
existing Helm values and manifests keep working. Values are read and checked as
envvars.py describes; on top of that, from_env checks the orderings between
settings (lease timings, backoff, request and reconcile timeouts).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from eni_controller.aws.ratelimit import (
    DEFAULT_BUDGET_SHARE,
    DEFAULT_LIMITS,
    RateLimits,
)
from eni_controller.envvars import (
    KUBE_REQUEST_TIMEOUT,
    LOG_SETTINGS,
    ConfigError,
    LogFormat,
    LogLevel,
    Setting,
    bind_address,
    boolean,
    count,
    duration,
    endpoint_url,
    namespace,
    pattern,
    port,
    positive_rate,
    read_settings,
)
from eni_controller.reconcile import tags
from eni_controller.reconcile.retries import BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS
from eni_controller.spec import DEVICE_INDEX_MAX

REGION_PATTERN = re.compile(  # also checks what IMDS answers (aws/imds.py)
    r"[a-z]{2}(?:-gov|-iso[a-z]?)?"
    r"-(?:central|north|south|east|west|northeast|northwest|southeast|southwest)"
    r"-[1-9][0-9]?"
)
CLUSTER_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
VPC_ID_PATTERN = re.compile(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_TAG_KEY_MAX, _TAG_VALUE_MAX = 128, 256  # EC2's limits on a tag's key and value
_TAG_LIMITS = f"keys are at most {_TAG_KEY_MAX} characters, values at most {_TAG_VALUE_MAX}"

_region = pattern(REGION_PATTERN, "not an AWS region name (such as us-east-1 or us-gov-west-1)")
_cluster_name = pattern(
    CLUSTER_NAME_PATTERN,
    "not a valid EKS cluster name (1-100 letters, digits, '-' or '_', starting alphanumeric)",
)
_vpc_id = pattern(VPC_ID_PATTERN, "not a VPC ID (vpc- followed by 8 or 17 lowercase hex digits)")


def _device_index(text: str) -> int:
    return count(text, maximum=DEVICE_INDEX_MAX)  # the NodeENI CRD's deviceIndex bounds


def _share(text: str) -> float:
    expected = "a fraction of the account's EC2 request budget: more than 0, at most 1, such as 0.5"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number (expected {expected})") from None
    if not 0 < value <= 1:  # NaN fails this too
        raise ValueError(f"out of range (expected {expected})")
    return value


def _allow_tag(text: str) -> tuple[str, str]:
    """``key=value``: the tag an allowed subnet or security group carries."""
    key, sep, value = (part.strip() for part in text.partition("="))
    if not sep or not key:
        raise ValueError("not a tag (expected key=value, such as multus=true)")
    if len(key) > _TAG_KEY_MAX or len(value) > _TAG_VALUE_MAX:
        raise ValueError(f"tag too long ({_TAG_LIMITS})")
    return key, value


def _extra_tags(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2``: tags for every ENI, within EC2's limits and clear of our own
    keys (reconcile/tags.py), so a create never fails on them."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ValueError(f"{item.strip()!r} is not key=value (expected k=v,k2=v2)")
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r}: the aws: prefix is reserved by AWS")
        if key in tags.RESERVED_KEYS or key.startswith(tags.CLUSTER_TAG_PREFIX):
            raise ValueError(f"tag key {key!r} is one the controller sets itself")
        if len(key) > _TAG_KEY_MAX or len(value) > _TAG_VALUE_MAX:
            raise ValueError(f"tag {key[:40]!r} too long ({_TAG_LIMITS})")
        if key in pairs:
            raise ValueError(f"tag key {key!r} given twice")
        pairs[key] = value
    if len(pairs) > tags.EXTRA_TAGS_MAX:
        raise ValueError(
            f"{len(pairs)} tags; at most {tags.EXTRA_TAGS_MAX} (EC2 allows"
            f" {tags.TAGS_PER_RESOURCE_MAX} per ENI and the controller sets the rest)"
        )
    return tuple(pairs.items())


@dataclass(frozen=True, kw_only=True, slots=True)
class CircuitBreakerConfig:
    enabled: bool = True
    failure_threshold: int = 5
    success_threshold: int = 3
    timeout_seconds: float = 30.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """Validated controller settings; build it with :meth:`from_env`. The defaults are
    the variables' documented ones; ``Config(...)`` does not validate (it is for tests)."""

    aws_region: str | None = None  # None: unset; the CLI asks IMDS (aws/imds.py)
    aws_endpoint_url: str | None = None
    cluster_name: str | None = None
    vpc_id: str | None = None
    reconcile_period_seconds: float = 300.0
    detachment_timeout_seconds: float = 15.0
    max_cleanup_duration_seconds: float = 1800.0
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
    pod_namespace: str = "default"
    bind_address: str = "0.0.0.0"
    metrics_port: int = 8080
    health_probe_port: int = 8081
    orphan_sweep_interval_seconds: float = 300.0
    orphan_grace_period_seconds: float = 600.0
    error_backoff_base_seconds: float = BACKOFF_BASE_SECONDS
    error_backoff_max_seconds: float = BACKOFF_MAX_SECONDS
    kube_request_timeout_seconds: float = 30.0
    reconcile_timeout_seconds: float = 300.0
    log_level: LogLevel = "info"
    log_format: LogFormat = "json"
    subnet_allow_tag: tuple[str, str] | None = None
    security_group_allow_tag: tuple[str, str] | None = None
    extra_eni_tags: tuple[tuple[str, str], ...] = ()  # in the order given

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """A Config from ``env`` (``os.environ`` when None); ConfigError lists every
        invalid variable. An unset region stays None (the CLI asks aws/imds.py)."""
        env = os.environ if env is None else env
        config, problems = read_settings(SETTINGS, cls(), env)
        if config.aws_region is None:  # botocore's own fallback name, read the same way
            config, more = read_settings(_DEFAULT_REGION, config, env)
            problems.extend(more)
        lease = (
            config.leader_retry_period_seconds,
            config.leader_renew_deadline_seconds,
            config.leader_lease_duration_seconds,
        )
        if not problems and not lease[0] < lease[1] < lease[2]:
            problems.append(
                "LEADER_ELECTION_RETRY_PERIOD < LEADER_ELECTION_RENEW_DEADLINE < "
                "LEADER_ELECTION_LEASE_DURATION must hold "
                f"(got {lease[0]}s, {lease[1]}s, {lease[2]}s)"
            )
        if not problems and config.error_backoff_base_seconds > config.error_backoff_max_seconds:
            problems.append(
                "ERROR_BACKOFF_BASE <= ERROR_BACKOFF_MAX must hold "
                f"(got {config.error_backoff_base_seconds}s, {config.error_backoff_max_seconds}s)"
            )
        if not problems and config.kube_request_timeout_seconds >= config.reconcile_timeout_seconds:
            # a reconcile makes several requests: one must time out before the reconcile does
            problems.append(
                "KUBE_REQUEST_TIMEOUT < RECONCILE_TIMEOUT must hold "
                f"(got {config.kube_request_timeout_seconds}s, {config.reconcile_timeout_seconds}s)"
            )
        if problems:
            raise ConfigError(problems)
        return config


def _named(env: str, parse: Callable[[str], object], help: str) -> Setting:
    """The setting of the Config field named as its variable (in lowercase)."""
    return Setting(env, env.lower(), parse, help)


def _seconds(env: str, help: str) -> Setting:
    """A duration setting of the field named as its variable, plus ``_seconds``."""
    return duration(env, f"{env.lower()}_seconds", help)


_RATE = "ec2_rate_limits"
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "AWS_REGION",
        "aws_region",
        _region,
        "region of EC2 calls (unset: AWS_DEFAULT_REGION, then instance metadata)",
        default_text="from IMDS",
    ),
    _named(
        "AWS_ENDPOINT_URL", endpoint_url, "EC2 endpoint override (a VPC endpoint, a moto server)"
    ),
    _named(
        "CLUSTER_NAME",
        _cluster_name,
        "tags every ENI kubernetes.io/cluster/<name>=owned (unset: from the nodes' tags)",
    ),
    _named("VPC_ID", _vpc_id, "scopes subnet and security-group lookups to this VPC"),
    _named("SUBNET_ALLOW_TAG", _allow_tag, "key=value: only subnets with this tag may be used"),
    _named(
        "SECURITY_GROUP_ALLOW_TAG",
        _allow_tag,
        "key=value: only security groups with this tag may be used",
    ),
    _named(
        "EXTRA_ENI_TAGS",
        _extra_tags,
        "k=v,k2=v2: tags added to every ENI created (not our own keys, not aws:)",
    ),
    _seconds("RECONCILE_PERIOD", "resync of every NodeENI"),
    _seconds("DETACHMENT_TIMEOUT", "wait for one detach"),
    _seconds("MAX_CLEANUP_DURATION", "give up cleaning a deleted NodeENI's ENIs after this"),
    _named("MAX_CONCURRENT_RECONCILES", count, "NodeENIs reconciled at once"),
    _named("MAX_CONCURRENT_ENI_CLEANUP", count, "ENIs detached and deleted at once"),
    _named("DEFAULT_DEVICE_INDEX", _device_index, "device index of a NodeENI that names none"),
    _named(
        "DEFAULT_DELETE_ON_TERMINATION", boolean, "deleteOnTermination of a NodeENI that names none"
    ),
    Setting(
        "CIRCUIT_BREAKER_ENABLED",
        "circuit_breaker.enabled",
        boolean,
        "stop calling EC2 for a while after repeated failures",
    ),
    Setting(
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
        "circuit_breaker.failure_threshold",
        count,
        "failures in a row that open the breaker",
    ),
    Setting(
        "CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
        "circuit_breaker.success_threshold",
        count,
        "successes in a row that close it again",
    ),
    duration("CIRCUIT_BREAKER_TIMEOUT", "circuit_breaker.timeout_seconds", "open before a trial"),
    Setting(
        "EC2_DESCRIBE_BURST",
        f"{_RATE}.describe.capacity",
        count,
        "client-side bucket size for Describe* calls",
    ),
    Setting(
        "EC2_DESCRIBE_RATE",
        f"{_RATE}.describe.refill_per_second",
        positive_rate,
        "its refill, requests per second",
    ),
    Setting(
        "EC2_MUTATING_BURST",
        f"{_RATE}.mutating.capacity",
        count,
        "client-side bucket size for mutating calls",
    ),
    Setting(
        "EC2_MUTATING_RATE",
        f"{_RATE}.mutating.refill_per_second",
        positive_rate,
        "its refill, requests per second",
    ),
    _named(
        "EC2_BUDGET_SHARE",
        _share,
        "share of both buckets this controller paces to (0 < share <= 1)",
    ),
    _named("ENABLE_LEADER_ELECTION", boolean, "only the Lease holder reconciles"),
    duration("LEADER_ELECTION_LEASE_DURATION", "leader_lease_duration_seconds", "Lease length"),
    duration(
        "LEADER_ELECTION_RENEW_DEADLINE", "leader_renew_deadline_seconds", "leader stops after"
    ),
    duration("LEADER_ELECTION_RETRY_PERIOD", "leader_retry_period_seconds", "Lease retry"),
    _named("POD_NAMESPACE", namespace, "namespace of the leader Lease and of Events"),
    _named("BIND_ADDRESS", bind_address, "address of /metrics and the probes"),
    _named("METRICS_PORT", port, "/metrics port"),
    _named("HEALTH_PROBE_PORT", port, "/healthz and /readyz port"),
    _seconds("ORPHAN_SWEEP_INTERVAL", "orphan sweep period"),
    _seconds("ORPHAN_GRACE_PERIOD", "an unclaimed ENI waits this long before it is reclaimed"),
    _seconds("ERROR_BACKOFF_BASE", "first retry of a failed slot"),
    _seconds("ERROR_BACKOFF_MAX", "longest retry backoff"),
    KUBE_REQUEST_TIMEOUT,
    _seconds("RECONCILE_TIMEOUT", "limit of one reconcile"),
    *LOG_SETTINGS,
)
_DEFAULT_REGION = (Setting("AWS_DEFAULT_REGION", "aws_region", _region, "AWS_REGION's fallback"),)

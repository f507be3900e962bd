"""Controller configuration, read once from environment variables at start-up.

The variable names and defaults match the Go aws-multi-eni-controller, so existing
Helm values and manifests keep working. Everything is validated up front: a bad
value stops the controller with one error listing every problem, instead of
falling back to a default and misbehaving later. Durations use Go syntax
(``30s``, ``5m``, ``1h30m``) and booleans use Go's ``strconv.ParseBool`` spellings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from operator import attrgetter
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from eni_controller.aws.ratelimit import (
    DEFAULT_BUDGET_SHARE,
    DEFAULT_LIMITS,
    RateLimits,
)
from eni_controller.model import DEVICE_INDEX_MAX
from eni_controller.reconcile import tags
from eni_controller.reconcile.retries import BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS

T = TypeVar("T")
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "console"]

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

REGION_PATTERN = re.compile(  # also checks what IMDS answers (aws/imds.py)
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


def _count(text: str, *, maximum: int = MAX_COUNT) -> int:
    expected = f"a whole number from 1 to {maximum}"
    if not _INT_RE.fullmatch(text):
        raise ValueError(f"not an integer (expected {expected})")
    if not 1 <= int(text) <= maximum:
        raise ValueError(f"out of range (expected {expected})")
    return int(text)


def _device_index(text: str) -> int:
    """DEFAULT_DEVICE_INDEX: within the NodeENI CRD's deviceIndex bounds."""
    return _count(text, maximum=DEVICE_INDEX_MAX)


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


_region = _pattern(REGION_PATTERN, "not an AWS region name (such as us-east-1 or us-gov-west-1)")
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


def _log_format(text: str) -> LogFormat:
    if text == "json":
        return "json"
    if text == "console":
        return "console"
    raise ValueError("not a log format (use json or console)")


def _extra_tags(text: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k2=v2``: the operator's tags for every ENI, within EC2's limits and
    clear of our own keys (reconcile/tags.py), so a create never fails on them."""
    pairs: list[tuple[str, str]] = []
    for item in text.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ValueError(f"{item.strip()!r} is not key=value (expected k=v,k2=v2)")
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r}: the aws: prefix is reserved by AWS")
        if key in tags.RESERVED_KEYS or key.startswith(tags.CLUSTER_TAG_PREFIX):
            raise ValueError(f"tag key {key!r} is one the controller sets itself")
        if len(key) > _TAG_KEY_MAX or len(value) > _TAG_VALUE_MAX:
            raise ValueError(
                f"tag {key[:40]!r} too long (keys are at most {_TAG_KEY_MAX} characters,"
                f" values at most {_TAG_VALUE_MAX})"
            )
        if any(key == seen for seen, _ in pairs):
            raise ValueError(f"tag key {key!r} given twice")
        pairs.append((key, value))
    if len(pairs) > tags.EXTRA_TAGS_MAX:
        raise ValueError(
            f"{len(pairs)} tags; at most {tags.EXTRA_TAGS_MAX} (EC2 allows"
            f" {tags.TAGS_PER_RESOURCE_MAX} per ENI and the controller sets the rest)"
        )
    return tuple(pairs)


class ConfigError(ValueError):
    """One or more environment variables are invalid; ``problems`` has one line per variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))

    def one_line(self) -> str:
        """The problems on one line, for a start-up error on stderr."""
        return "invalid configuration: " + "; ".join(self.problems)


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


def format_duration(seconds: float) -> str:
    """``seconds`` in the Go syntax parse_duration reads (``300.0`` -> ``"5m"``)."""
    whole_hours, rest = divmod(seconds, 3600)
    whole_minutes, rest = divmod(rest, 60)
    parts = [
        f"{int(whole_hours)}h" if whole_hours else "",
        f"{int(whole_minutes)}m" if whole_minutes else "",
    ]
    if rest or not any(parts):
        parts.append(f"{rest:g}s" if rest >= 1 or not rest else f"{rest * 1000:g}ms")
    return "".join(parts)


def _show(value: object) -> str:
    """A default as it would be written in the environment."""
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple) and all(isinstance(v, tuple) for v in value):
        return ",".join(f"{k}={v}" for k, v in value)
    if isinstance(value, tuple):
        return "=".join(str(v) for v in value)
    return str(value)


def _show_duration(value: object) -> str:
    return format_duration(value) if isinstance(value, float) else _show(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class Setting:
    """One environment variable: where its value goes, how it is read, what it means.

    The default is never written here: it is the settings class's field default
    (``path`` names the field, dotted for a nested dataclass), so the value the
    code uses and the value ``--help`` shows cannot differ. ``default_text``
    describes a default that is not a value (a fallback chain, "required").
    """

    env: str
    path: str
    parse: Callable[[str], object]
    help: str
    show: Callable[[object], str] = _show
    default_text: str | None = None

    def default(self, defaults: object) -> str:
        if self.default_text is not None:
            return self.default_text
        return self.show(attrgetter(self.path)(defaults))


def _duration(env: str, path: str, help: str) -> Setting:
    return Setting(env=env, path=path, parse=_positive_duration, help=help, show=_show_duration)


def _replace_path(obj: Any, path: str, value: object) -> Any:
    head, _, rest = path.partition(".")
    if rest:
        value = _replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: value})


S = TypeVar("S")


def read_settings(
    table: Sequence[Setting], defaults: S, env: Mapping[str, str]
) -> tuple[S, list[str]]:
    """``defaults`` with every variable of ``table`` set in ``env`` applied, and
    the problems found (one per bad variable; all of them, not just the first)."""
    r = _EnvReader(env)
    result = defaults
    for setting in table:
        value = r.optional(setting.env, setting.parse)
        if value is not None:
            result = _replace_path(result, setting.path, value)
    return result, r.problems


def render_settings(table: Sequence[Setting], defaults: object) -> str:
    """The table as ``--help`` prints it: name, default, one line of description."""
    rows = [(s.env, s.default(defaults), s.help) for s in table]
    name_width = max(len(name) for name, _, _ in rows)
    default_width = min(max(len(default) for _, default, _ in rows), 24)
    return "\n".join(
        f"  {name:<{name_width}}  {default:<{default_width}}  {help}"
        for name, default, help in rows
    )


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

    The field defaults are the documented defaults of each environment variable
    (SETTINGS below names them). Constructing ``Config`` directly does not
    validate (it is meant for tests).
    """

    # None: neither AWS_REGION nor AWS_DEFAULT_REGION is set; the CLI asks the
    # instance metadata service (aws/imds.py) before anything uses it
    aws_region: str | None = None
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
    log_format: LogFormat = "json"
    # allow-lists by tag (key, value): a subnet / security group without it is refused
    subnet_allow_tag: tuple[str, str] | None = None
    security_group_allow_tag: tuple[str, str] | None = None
    # the operator's tags on every ENI created, in the order given (EXTRA_ENI_TAGS)
    extra_eni_tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build a Config from ``env`` (``os.environ`` when None).

        Raises ConfigError listing every invalid variable, never just the first.
        Pure: an unset region stays None (the CLI then asks aws/imds.py).
        """
        env = os.environ if env is None else env
        config, problems = read_settings(SETTINGS, cls(), env)
        if config.aws_region is None:
            # botocore's own fallback name, read the same way
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


# shared with the agent's table (agent/settings.py): same variable, same field
KUBE_REQUEST_TIMEOUT = _duration(
    "KUBE_REQUEST_TIMEOUT",
    "kube_request_timeout_seconds",
    "limit of every Kubernetes request but watches",
)
LOG_SETTINGS = (
    Setting(
        env="LOG_LEVEL", path="log_level", parse=_log_level, help="debug, info, warning, error"
    ),
    Setting(
        env="LOG_FORMAT",
        path="log_format",
        parse=_log_format,
        help="json or console; --log-format overrides it",
    ),
)
_RATE = "ec2_rate_limits"
SETTINGS: tuple[Setting, ...] = (
    Setting(
        env="AWS_REGION",
        path="aws_region",
        parse=_region,
        help="region of EC2 calls (unset: AWS_DEFAULT_REGION, then instance metadata)",
        default_text="from IMDS",
    ),
    Setting(
        env="AWS_ENDPOINT_URL",
        path="aws_endpoint_url",
        parse=_endpoint_url,
        help="EC2 endpoint override (a VPC endpoint, a moto server)",
    ),
    Setting(
        env="CLUSTER_NAME",
        path="cluster_name",
        parse=_cluster_name,
        help="tags every ENI kubernetes.io/cluster/<name>=owned (unset: from the nodes' tags)",
    ),
    Setting(
        env="VPC_ID",
        path="vpc_id",
        parse=_vpc_id,
        help="scopes subnet and security-group lookups to this VPC",
    ),
    Setting(
        env="SUBNET_ALLOW_TAG",
        path="subnet_allow_tag",
        parse=_allow_tag,
        help="key=value: only subnets with this tag may be used",
    ),
    Setting(
        env="SECURITY_GROUP_ALLOW_TAG",
        path="security_group_allow_tag",
        parse=_allow_tag,
        help="key=value: only security groups with this tag may be used",
    ),
    Setting(
        env="EXTRA_ENI_TAGS",
        path="extra_eni_tags",
        parse=_extra_tags,
        help="k=v,k2=v2: tags added to every ENI created (not our own keys, not aws:)",
    ),
    _duration("RECONCILE_PERIOD", "reconcile_period_seconds", "resync of every NodeENI"),
    _duration("DETACHMENT_TIMEOUT", "detachment_timeout_seconds", "wait for one detach"),
    _duration(
        "MAX_CLEANUP_DURATION",
        "max_cleanup_duration_seconds",
        "give up cleaning a deleted NodeENI's ENIs after this",
    ),
    Setting(
        env="MAX_CONCURRENT_RECONCILES",
        path="max_concurrent_reconciles",
        parse=_count,
        help="NodeENIs reconciled at once",
    ),
    Setting(
        env="MAX_CONCURRENT_ENI_CLEANUP",
        path="max_concurrent_eni_cleanup",
        parse=_count,
        help="ENIs detached and deleted at once",
    ),
    Setting(
        env="DEFAULT_DEVICE_INDEX",
        path="default_device_index",
        parse=_device_index,
        help="device index of a NodeENI that names none",
    ),
    Setting(
        env="DEFAULT_DELETE_ON_TERMINATION",
        path="default_delete_on_termination",
        parse=_bool,
        help="deleteOnTermination of a NodeENI that names none",
    ),
    Setting(
        env="CIRCUIT_BREAKER_ENABLED",
        path="circuit_breaker.enabled",
        parse=_bool,
        help="stop calling EC2 for a while after repeated failures",
    ),
    Setting(
        env="CIRCUIT_BREAKER_FAILURE_THRESHOLD",
        path="circuit_breaker.failure_threshold",
        parse=_count,
        help="failures in a row that open the breaker",
    ),
    Setting(
        env="CIRCUIT_BREAKER_SUCCESS_THRESHOLD",
        path="circuit_breaker.success_threshold",
        parse=_count,
        help="successes in a row that close it again",
    ),
    _duration("CIRCUIT_BREAKER_TIMEOUT", "circuit_breaker.timeout_seconds", "open before a trial"),
    Setting(
        env="EC2_DESCRIBE_BURST",
        path=f"{_RATE}.describe.capacity",
        parse=_count,
        help="client-side bucket size for Describe* calls",
    ),
    Setting(
        env="EC2_DESCRIBE_RATE",
        path=f"{_RATE}.describe.refill_per_second",
        parse=_positive_rate,
        help="its refill, requests per second",
    ),
    Setting(
        env="EC2_MUTATING_BURST",
        path=f"{_RATE}.mutating.capacity",
        parse=_count,
        help="client-side bucket size for mutating calls",
    ),
    Setting(
        env="EC2_MUTATING_RATE",
        path=f"{_RATE}.mutating.refill_per_second",
        parse=_positive_rate,
        help="its refill, requests per second",
    ),
    Setting(
        env="EC2_BUDGET_SHARE",
        path="ec2_budget_share",
        parse=_share,
        help="share of both buckets this controller paces to (0 < share <= 1)",
    ),
    Setting(
        env="ENABLE_LEADER_ELECTION",
        path="enable_leader_election",
        parse=_bool,
        help="only the Lease holder reconciles",
    ),
    _duration("LEADER_ELECTION_LEASE_DURATION", "leader_lease_duration_seconds", "Lease length"),
    _duration(
        "LEADER_ELECTION_RENEW_DEADLINE", "leader_renew_deadline_seconds", "leader stops after"
    ),
    _duration("LEADER_ELECTION_RETRY_PERIOD", "leader_retry_period_seconds", "Lease retry"),
    Setting(
        env="POD_NAMESPACE",
        path="pod_namespace",
        parse=_namespace,
        help="namespace of the leader Lease and of Events",
    ),
    Setting(
        env="BIND_ADDRESS",
        path="bind_address",
        parse=_bind_address,
        help="address of /metrics and the probes",
    ),
    Setting(env="METRICS_PORT", path="metrics_port", parse=_port, help="/metrics port"),
    Setting(
        env="HEALTH_PROBE_PORT",
        path="health_probe_port",
        parse=_port,
        help="/healthz and /readyz port",
    ),
    _duration("ORPHAN_SWEEP_INTERVAL", "orphan_sweep_interval_seconds", "orphan sweep period"),
    _duration(
        "ORPHAN_GRACE_PERIOD",
        "orphan_grace_period_seconds",
        "an unclaimed ENI waits this long before it is reclaimed",
    ),
    _duration("ERROR_BACKOFF_BASE", "error_backoff_base_seconds", "first retry of a failed slot"),
    _duration("ERROR_BACKOFF_MAX", "error_backoff_max_seconds", "longest retry backoff"),
    KUBE_REQUEST_TIMEOUT,
    _duration("RECONCILE_TIMEOUT", "reconcile_timeout_seconds", "limit of one reconcile"),
    *LOG_SETTINGS,
)
_DEFAULT_REGION = (
    Setting(
        env="AWS_DEFAULT_REGION", path="aws_region", parse=_region, help="AWS_REGION's fallback"
    ),
)

"""Unit tests for eni_controller.config: env parsing, validation and Go duration syntax."""

from __future__ import annotations

from dataclasses import asdict
from operator import attrgetter

import pytest

from eni_controller.config import CircuitBreakerConfig, Config
from eni_controller.envvars import ConfigError, parse_duration

DURATION_HINT = "not a duration (use Go syntax such as 30s, 5m, 1h30m)"
NOT_POSITIVE = "must be a duration greater than zero"
NOT_INT = "not an integer (expected a whole number from 1 to 1000)"
OUT_OF_RANGE = "out of range (expected a whole number from 1 to 1000)"
NOT_BOOL = "not a boolean (use true or false)"
NOT_REGION = "not an AWS region name (such as us-east-1 or us-gov-west-1)"
NOT_URL = "not an http(s) URL with a host (such as http://127.0.0.1:5000)"
NOT_CLUSTER = (
    "not a valid EKS cluster name (1-100 letters, digits, '-' or '_', starting alphanumeric)"
)
NOT_VPC = "not a VPC ID (vpc- followed by 8 or 17 lowercase hex digits)"
NOT_LEVEL = "not a log level (use one of debug, info, warning, error)"
NOT_TAG = "not a tag (expected key=value, such as multus=true)"
TAG_TOO_LONG = "tag too long (keys are at most 128 characters, values at most 256)"
ALLOW_TAG_VARS = [
    ("SUBNET_ALLOW_TAG", "subnet_allow_tag"),
    ("SECURITY_GROUP_ALLOW_TAG", "security_group_allow_tag"),
]

DURATION_VARS = [
    ("RECONCILE_PERIOD", "reconcile_period_seconds"),
    ("DETACHMENT_TIMEOUT", "detachment_timeout_seconds"),
    ("MAX_CLEANUP_DURATION", "max_cleanup_duration_seconds"),
    ("CIRCUIT_BREAKER_TIMEOUT", "circuit_breaker.timeout_seconds"),
    ("ORPHAN_SWEEP_INTERVAL", "orphan_sweep_interval_seconds"),
    ("ORPHAN_GRACE_PERIOD", "orphan_grace_period_seconds"),
]
COUNT_VARS = [
    ("MAX_CONCURRENT_RECONCILES", "max_concurrent_reconciles"),
    ("MAX_CONCURRENT_ENI_CLEANUP", "max_concurrent_eni_cleanup"),
    ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "circuit_breaker.failure_threshold"),
    ("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "circuit_breaker.success_threshold"),
]
BOOL_VARS = [
    ("DEFAULT_DELETE_ON_TERMINATION", "default_delete_on_termination"),
    ("CIRCUIT_BREAKER_ENABLED", "circuit_breaker.enabled"),
]


def _cases(
    variables: list[tuple[str, str]], values: list[tuple[str, object]]
) -> list[tuple[str, str, str, object]]:
    return [(var, attr, raw, want) for var, attr in variables for raw, want in values]


GOOD_VALUES = [
    *_cases(
        [("AWS_REGION", "aws_region")],
        [
            ("us-east-1", "us-east-1"),
            ("us-gov-west-1", "us-gov-west-1"),
            ("cn-north-1", "cn-north-1"),
            ("ap-southeast-2", "ap-southeast-2"),
            ("eu-central-1", "eu-central-1"),
            ("us-iso-east-1", "us-iso-east-1"),
            ("us-isob-east-1", "us-isob-east-1"),
            ("  eu-west-3\n", "eu-west-3"),
        ],
    ),
    *_cases(
        [("AWS_ENDPOINT_URL", "aws_endpoint_url")],
        [
            ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("https://ec2.us-east-1.amazonaws.com", "https://ec2.us-east-1.amazonaws.com"),
            ("http://[::1]:5000/", "http://[::1]:5000/"),
            (" http://moto:5000 ", "http://moto:5000"),
        ],
    ),
    *_cases(
        [("CLUSTER_NAME", "cluster_name")],
        [
            ("prod", "prod"),
            ("a", "a"),
            ("0-my_Cluster-2", "0-my_Cluster-2"),
            ("c" * 100, "c" * 100),
        ],
    ),
    *_cases(
        [("VPC_ID", "vpc_id")],
        [
            ("vpc-0123abcd", "vpc-0123abcd"),
            ("vpc-0123456789abcdef0", "vpc-0123456789abcdef0"),
        ],
    ),
    *_cases(
        ALLOW_TAG_VARS,
        [
            ("multus=true", ("multus", "true")),
            (" multus = true ", ("multus", "true")),
            ("team=net=a", ("team", "net=a")),  # the first "=" splits
            ("k8s.io/role=multus", ("k8s.io/role", "multus")),
            ("empty=", ("empty", "")),  # a tag with an empty value
            ("k" * 128 + "=" + "v" * 256, ("k" * 128, "v" * 256)),
        ],
    ),
    *_cases(
        [("LOG_LEVEL", "log_level")],
        [
            ("debug", "debug"),
            ("INFO", "info"),
            ("Warning", "warning"),
            ("error", "error"),
        ],
    ),
    *_cases(
        DURATION_VARS,
        [
            ("90s", 90.0),
            ("1h30m", 5400.0),
            ("1.5m", 90.0),
            ("250ms", 0.25),
            (" 2m ", 120.0),
        ],
    ),
    *_cases(COUNT_VARS, [("1", 1), ("7", 7), ("+12", 12), ("1000", 1000), ("007", 7)]),
    *_cases(BOOL_VARS, [("false", False), ("0", False), ("TRUE", True), ("t", True)]),
]


@pytest.mark.parametrize(("var", "attr", "raw", "want"), GOOD_VALUES)
def test_good_value_parses(var: str, attr: str, raw: str, want: object) -> None:
    config = Config.from_env({var: raw})
    assert attrgetter(attr)(config) == want
    assert _flat(config) == _flat(Config()) | {attr: want}  # nothing else changed


def _flat(config: Config) -> dict[str, object]:
    fields = asdict(config)
    breaker = fields.pop("circuit_breaker")
    return fields | {f"circuit_breaker.{key}": value for key, value in breaker.items()}


def _bad(variables: list[str], message: str, *raws: str) -> list[tuple[str, str, str]]:
    return [(var, raw, message) for var in variables for raw in raws]


DURATION_NAMES = [var for var, _ in DURATION_VARS]
COUNT_NAMES = [var for var, _ in COUNT_VARS]
BOOL_NAMES = [var for var, _ in BOOL_VARS]
BAD_VALUES = [
    *_bad(["AWS_REGION"], NOT_REGION, "us-east", "US-EAST-1", "useast1", "us-east-0", "us-up-1"),
    *_bad(["AWS_REGION"], NOT_REGION, "mars-north-1", "us-east-1a"),
    *_bad(["AWS_ENDPOINT_URL"], NOT_URL, "127.0.0.1:5000", "ftp://example.com", "moto"),
    *_bad(["AWS_ENDPOINT_URL"], NOT_URL, "http://", "http:///path", "http://ho st:5000"),
    *_bad(["AWS_ENDPOINT_URL"], NOT_URL, "http://host:99999", "http://host:port"),
    *_bad(["CLUSTER_NAME"], NOT_CLUSTER, "-prod", "_prod", "my cluster", "prod.eks", "prød"),
    *_bad(["CLUSTER_NAME"], NOT_CLUSTER, "c" * 101),
    *_bad(["VPC_ID"], NOT_VPC, "vpc-123", "vpc-0123ABCD", "vpc-0123abcd0", "0123abcd"),
    *_bad(["VPC_ID"], NOT_VPC, "vpc-0123456789abcdef", "subnet-0123abcd"),
    *_bad(["LOG_LEVEL"], NOT_LEVEL, "warn", "trace", "verbose", "5"),
    *_bad([var for var, _ in ALLOW_TAG_VARS], NOT_TAG, "multus", "=true", "multus:true"),
    *_bad([var for var, _ in ALLOW_TAG_VARS], TAG_TOO_LONG, "k" * 129 + "=v", "k=" + "v" * 257),
    *_bad(DURATION_NAMES, DURATION_HINT, "5x", "5", "5 m", "5d", "1h-30m", "abc", "1e3s"),
    *_bad(DURATION_NAMES, NOT_POSITIVE, "0", "0s", "-5m", "-0.5ns"),
    *_bad(COUNT_NAMES, OUT_OF_RANGE, "0", "-1", "1001"),
    *_bad(COUNT_NAMES, NOT_INT, "1.5", "1_000", "five", "0x10", "1e3", "1 0"),
    *_bad(BOOL_NAMES, NOT_BOOL, "yes", "no", "on", "tRuE", "2", "enabled", "y"),
]


@pytest.mark.parametrize(("var", "raw", "message"), BAD_VALUES)
def test_bad_value_names_variable_and_value(var: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({var: raw})
    expected = f'{var}="{raw}": {message}'
    assert caught.value.problems == (expected,)
    assert str(caught.value) == f"invalid configuration:\n  - {expected}"


def test_defaults_with_empty_env() -> None:
    config = Config.from_env({})
    assert config == Config(
        aws_region=None,  # discovered by the CLI (aws/imds.py)
        aws_endpoint_url=None,
        cluster_name=None,
        vpc_id=None,
        reconcile_period_seconds=300.0,
        detachment_timeout_seconds=15.0,
        max_cleanup_duration_seconds=1800.0,
        max_concurrent_reconciles=5,
        max_concurrent_eni_cleanup=3,
        default_device_index=1,
        default_delete_on_termination=True,
        circuit_breaker=CircuitBreakerConfig(
            enabled=True, failure_threshold=5, success_threshold=3, timeout_seconds=30.0
        ),
        log_level="info",
        subnet_allow_tag=None,
        security_group_allow_tag=None,
    )
    assert config == Config()


def test_blank_values_count_as_unset() -> None:
    every_var = [var for var, _, _, _ in GOOD_VALUES]
    assert Config.from_env(dict.fromkeys(every_var, "  ")) == Config()
    assert Config.from_env(dict.fromkeys(every_var, "")) == Config()


def test_none_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_PERIOD", "2m")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    config = Config.from_env()
    assert config.reconcile_period_seconds == 120.0
    assert config.log_level == "debug"


def test_every_bad_value_is_reported_at_once() -> None:
    env = {
        "AWS_REGION": "nowhere",
        "RECONCILE_PERIOD": "5x",
        "MAX_CONCURRENT_RECONCILES": "0",
        "CIRCUIT_BREAKER_ENABLED": "yes",
        "CIRCUIT_BREAKER_TIMEOUT": "-1s",
        "VPC_ID": "vpc-1",
        "LOG_LEVEL": "loud",
        "DETACHMENT_TIMEOUT": "15s",  # good values are not reported
    }
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    problems = caught.value.problems
    assert sorted(problems) == sorted(
        [
            f'AWS_REGION="nowhere": {NOT_REGION}',
            f'RECONCILE_PERIOD="5x": {DURATION_HINT}',
            f'MAX_CONCURRENT_RECONCILES="0": {OUT_OF_RANGE}',
            f'CIRCUIT_BREAKER_ENABLED="yes": {NOT_BOOL}',
            f'CIRCUIT_BREAKER_TIMEOUT="-1s": {NOT_POSITIVE}',
            f'VPC_ID="vpc-1": {NOT_VPC}',
            f'LOG_LEVEL="loud": {NOT_LEVEL}',
        ]
    )
    message = str(caught.value)
    assert message.startswith("invalid configuration:\n")
    assert all(f"  - {p}" in message.splitlines() for p in problems)
    assert isinstance(caught.value, ValueError)


def test_problem_quotes_the_stripped_value_with_escapes() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"LOG_LEVEL": '  "lo\tud"\n'})
    assert caught.value.problems == (f'LOG_LEVEL="\\"lo\\tud\\"": {NOT_LEVEL}',)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("+0", 0.0),
        ("-0", 0.0),
        ("0s", 0.0),
        ("5m", 300.0),
        ("15s", 15.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("2h45m30.5s", 9930.5),
        ("-1.5s", -1.5),
        ("+3s", 3.0),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("1ns", 1e-9),
        ("1.9ns", 1e-9),  # Go truncates below a nanosecond
        ("1us", 1e-6),
        ("1\u00b5s", 1e-6),  # micro sign
        ("1\u03bcs", 1e-6),  # greek mu
        ("1h1m1s1ms1us1ns", 3661.001001001),
        ("1s1s", 2.0),
        ("10m0s", 600.0),
        ("2562047h47m16.854775807s", 9223372036.854775807),  # max int64 nanoseconds
        ("-2562047h47m16.854775808s", -9223372036.854775808),
    ],
)
def test_parse_duration_valid(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-15, abs=0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "00",
        "5 m",
        " 5m",
        "m",
        "s",
        ".s",
        "5d",
        "5S",
        "5sec",
        "1h-30m",
        "+-5s",
        "--5s",
        "abc",
        "1e3s",
        "1,5s",
        "\u0665s",  # arabic-indic digit five
        "5m ",
        "2562047h47m16.854775808s",  # one nanosecond past int64
    ],
)
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_true_spellings(text: str) -> None:
    assert Config.from_env({"CIRCUIT_BREAKER_ENABLED": text}).circuit_breaker.enabled is True
    assert Config.from_env({"DEFAULT_DELETE_ON_TERMINATION": text}).default_delete_on_termination


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_false_spellings(text: str) -> None:
    assert Config.from_env({"CIRCUIT_BREAKER_ENABLED": text}).circuit_breaker.enabled is False
    config = Config.from_env({"DEFAULT_DELETE_ON_TERMINATION": text})
    assert config.default_delete_on_termination is False


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.aws_region = "eu-west-1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "path", "good", "parsed", "bads"),
    [
        ("EC2_DESCRIBE_RATE", "describe.refill_per_second", "2.5", 2.5, ["fast", "0", "-1"]),
        ("EC2_MUTATING_RATE", "mutating.refill_per_second", "2.5", 2.5, ["fast", "0", "-1"]),
        ("EC2_DESCRIBE_BURST", "describe.capacity", "200", 200, ["2.5", "0", "x"]),
        ("EC2_MUTATING_BURST", "mutating.capacity", "200", 200, ["2.5", "0", "x"]),
    ],
)
def test_ec2_bucket_variables(
    name: str, path: str, good: str, parsed: float, bads: list[str]
) -> None:
    config = Config.from_env({name: good})
    value: object = config.ec2_rate_limits
    for part in path.split("."):
        value = getattr(value, part)
    assert value == parsed
    for bad in bads:
        with pytest.raises(ConfigError) as raised:
            Config.from_env({name: bad})
        (problem,) = raised.value.problems
        assert problem.startswith(f'{name}="{bad}": ')


@pytest.mark.parametrize(("raw", "want"), [("1", 1), ("+2", 2), ("79", 79)])
def test_the_default_device_index_is_within_the_crds_bounds(raw: str, want: int) -> None:
    assert Config.from_env({"DEFAULT_DEVICE_INDEX": raw}).default_device_index == want


@pytest.mark.parametrize("raw", ["0", "80", "1000", "x"])
def test_a_default_device_index_past_the_crds_bounds_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"DEFAULT_DEVICE_INDEX.*1 to 79"):
        Config.from_env({"DEFAULT_DEVICE_INDEX": raw})

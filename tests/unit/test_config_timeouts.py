"""KUBE_REQUEST_TIMEOUT and RECONCILE_TIMEOUT: defaults, Go durations, and a bad value
refused with an error naming the variable."""

from __future__ import annotations

import pytest

from eni_controller.config import Config
from eni_controller.envvars import ConfigError

DURATION_HINT = "not a duration (use Go syntax such as 30s, 5m, 1h30m)"
NOT_POSITIVE = "must be a duration greater than zero"
SETTINGS = [
    ("KUBE_REQUEST_TIMEOUT", "kube_request_timeout_seconds"),
    ("RECONCILE_TIMEOUT", "reconcile_timeout_seconds"),
]


def test_defaults() -> None:
    config = Config.from_env({})
    assert config.kube_request_timeout_seconds == 30.0
    assert config.reconcile_timeout_seconds == 300.0
    assert config == Config()


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({"KUBE_REQUEST_TIMEOUT": "2s"}, (2.0, 300.0)),
        ({"KUBE_REQUEST_TIMEOUT": "1m30s"}, (90.0, 300.0)),
        ({"KUBE_REQUEST_TIMEOUT": "500ms", "RECONCILE_TIMEOUT": "1s"}, (0.5, 1.0)),
        ({"RECONCILE_TIMEOUT": "1h"}, (30.0, 3600.0)),
        ({"RECONCILE_TIMEOUT": " 10m "}, (30.0, 600.0)),
    ],
)
def test_good_values(env: dict[str, str], want: tuple[float, float]) -> None:
    config = Config.from_env(env)
    assert (config.kube_request_timeout_seconds, config.reconcile_timeout_seconds) == want


@pytest.mark.parametrize(("var", "_attr"), SETTINGS)
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("30", DURATION_HINT),
        ("30 s", DURATION_HINT),
        ("thirty", DURATION_HINT),
        ("1d", DURATION_HINT),
        ("0", NOT_POSITIVE),
        ("0s", NOT_POSITIVE),
        ("-5s", NOT_POSITIVE),
    ],
)
def test_bad_value_names_the_variable(var: str, _attr: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({var: raw})
    assert caught.value.problems == (f'{var}="{raw}": {message}',)


@pytest.mark.parametrize(
    "env",
    [
        {"KUBE_REQUEST_TIMEOUT": "5m"},  # equal to the default RECONCILE_TIMEOUT
        {"KUBE_REQUEST_TIMEOUT": "10s", "RECONCILE_TIMEOUT": "5s"},
    ],
)
def test_a_request_must_time_out_before_its_reconcile(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    (problem,) = caught.value.problems
    assert problem.startswith("KUBE_REQUEST_TIMEOUT < RECONCILE_TIMEOUT must hold")


def test_both_bad_values_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"KUBE_REQUEST_TIMEOUT": "soon", "RECONCILE_TIMEOUT": "0"})
    assert sorted(caught.value.problems) == [
        f'KUBE_REQUEST_TIMEOUT="soon": {DURATION_HINT}',
        f'RECONCILE_TIMEOUT="0": {NOT_POSITIVE}',
    ]

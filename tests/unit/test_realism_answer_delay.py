"""The realism layer's answer latency per action (tests/harness/realism/config.py):
which delay an EC2 action's answer gets from `answer_latency` and
`answer_latencies`, and the one clear error a bad payload gets. Pure: the
server that applies the delay is tested in tests/integration/test_realism.py."""

from __future__ import annotations

import re

import pytest

from tests.harness.realism.config import ConfigError, Switches

CREATE = "CreateNetworkInterface"
DELETE = "DeleteNetworkInterface"
DESCRIBE_ENIS = "DescribeNetworkInterfaces"
DESCRIBE_VPCS = "DescribeVpcs"


def delays(switches: Switches) -> list[float]:
    return [switches.answer_delay(a) for a in (CREATE, DELETE, DESCRIBE_ENIS, DESCRIBE_VPCS)]


def test_by_default_no_answer_is_held_and_answer_latency_holds_only_mutating_ones() -> None:
    assert delays(Switches()) == [0, 0, 0, 0]
    assert delays(Switches().merged({"answer_latency": 0.2})) == [0.2, 0.2, 0, 0]


def test_an_action_entry_beats_its_class_entry_which_beats_answer_latency() -> None:
    switches = Switches().merged(
        {
            "answer_latency": 0.05,
            "answer_latencies": {CREATE: 0.3, "describe": 0.15, DESCRIBE_VPCS: 0},
        }
    )
    assert delays(switches) == [0.3, 0.05, 0.15, 0]
    by_class = switches.merged({"answer_latencies": {"mutating": 0.1}})  # replaces the map
    assert delays(by_class) == [0.1, 0.1, 0, 0]
    assert delays(by_class.merged({"answer_latencies": {}})) == [0.05, 0.05, 0, 0]


def test_the_map_round_trips_through_the_state() -> None:
    switches = Switches().merged({"answer_latencies": {CREATE: 0.3, "describe": 0.15}})
    assert switches.to_json()["answer_latencies"] == {CREATE: 0.3, "describe": 0.15}
    assert Switches().merged(switches.to_json()) == switches


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ([CREATE, 0.3], "answer_latencies must be an object"),
        ({"": 0.3}, "answer_latencies must be an object"),
        ({CREATE: -1}, f"answer_latencies.{CREATE} must be a number of seconds"),
        ({"describe": "slow"}, "answer_latencies.describe must be a number of seconds"),
        ({CREATE: True}, f"answer_latencies.{CREATE} must be a number of seconds"),
    ],
)
def test_a_bad_map_is_one_clear_error_and_changes_nothing(value: object, names: str) -> None:
    switches = Switches().merged({"answer_latencies": {CREATE: 0.3}})
    with pytest.raises(ConfigError, match=re.escape(names)):
        switches.merged({"answer_latencies": value})
    assert switches.answer_delay(CREATE) == 0.3

"""tests/harness/attempts.py: the request log the EC2 storm case judges retries by.

The storm case's "retries by code only" verdict is only as good as this log, so
it is checked here against scripted answers: every attempt in order with its
code, grouped by logical call, concurrent calls kept apart, results and errors
passed through unchanged.
"""

from __future__ import annotations

import asyncio

import pytest
from botocore.exceptions import ReadTimeoutError

from eni_controller.aws.errors import ENINotFound, OutcomeUnknown
from tests.harness.attempts import (
    OK,
    AttemptLog,
    attempts_by_action,
    codes_answered,
    codes_by_action,
    given_up,
    retried_codes,
    wrongly_retried,
)
from tests.harness.ec2_errors import ENDPOINT, client_error
from tests.harness.scripted_ec2 import ScriptedEC2, raw_eni


@pytest.fixture
def s() -> ScriptedEC2:
    return ScriptedEC2()


@pytest.fixture
def log(s: ScriptedEC2) -> AttemptLog:
    attempts = AttemptLog()
    attempts.install(s.ec2)
    return attempts


async def test_attempts_are_logged_per_call_with_their_codes(
    s: ScriptedEC2, log: AttemptLog
) -> None:
    s.raw.script(
        "delete_network_interface",
        client_error("RequestLimitExceeded", status=503),
        client_error("InternalError", status=500),
        {},
    )
    s.raw.script(
        "attach_network_interface",
        client_error("InvalidNetworkInterfaceID.NotFound"),
    )
    await s.ec2.delete_network_interface(eni_id="eni-1")
    with pytest.raises(ENINotFound):
        await s.ec2.attach_network_interface(eni_id="eni-1", instance_id="i-1", device_index=1)

    delete, attach = log.calls
    assert (delete.action, delete.codes, delete.outcome) == (
        "DeleteNetworkInterface",
        ["RequestLimitExceeded", "InternalError", OK],
        OK,
    )
    assert attach.codes == ["InvalidNetworkInterfaceID.NotFound"]
    assert attach.outcome == "InvalidNetworkInterfaceID.NotFound"
    assert retried_codes(log.calls) == {"RequestLimitExceeded": 1, "InternalError": 1}
    assert given_up(log.calls) == {"InvalidNetworkInterfaceID.NotFound": 1}
    assert attempts_by_action(log.calls) == {
        "DeleteNetworkInterface": 3,
        "AttachNetworkInterface": 1,
    }
    assert codes_answered(log.calls) == {
        "RequestLimitExceeded": 1,
        "InternalError": 1,
        "InvalidNetworkInterfaceID.NotFound": 1,
    }
    assert codes_by_action(log.calls) == {
        ("DeleteNetworkInterface", "RequestLimitExceeded"): 1,
        ("DeleteNetworkInterface", "InternalError"): 1,
        ("AttachNetworkInterface", "InvalidNetworkInterfaceID.NotFound"): 1,
    }
    assert wrongly_retried(log.calls, retryable={"RequestLimitExceeded", "InternalError"}) == []


async def test_read_timeouts_and_wrong_retries_are_told_apart(
    s: ScriptedEC2, log: AttemptLog
) -> None:
    timeout = ReadTimeoutError(endpoint_url=ENDPOINT)
    s.raw.script("describe_network_interfaces", timeout, {"NetworkInterfaces": [raw_eni("eni-1")]})
    s.raw.script("attach_network_interface", timeout)
    await s.ec2.describe_network_interfaces(filters={"subnet-id": ["subnet-1"]})
    with pytest.raises(OutcomeUnknown):
        await s.ec2.attach_network_interface(eni_id="eni-1", instance_id="i-1", device_index=1)

    describe, attach = log.calls
    assert describe.codes == ["ReadTimeoutError", OK]
    assert attach.codes == ["ReadTimeoutError"]  # not repeated blindly
    assert (
        wrongly_retried(
            log.calls,
            retryable={"InternalError"},
            retryable_if_idempotent={"ReadTimeoutError"},
            not_idempotent={"AttachNetworkInterface"},
        )
        == []
    )
    # the same log, judged as if describes were not idempotent: the retry is wrong
    wrong = wrongly_retried(
        log.calls,
        retryable={"InternalError"},
        retryable_if_idempotent={"ReadTimeoutError"},
        not_idempotent={"AttachNetworkInterface", "DescribeNetworkInterfaces"},
    )
    assert wrong == [
        "DescribeNetworkInterfaces: retried after ReadTimeoutError "
        "(attempts ['ReadTimeoutError', 'ok'])"
    ]


async def test_concurrent_calls_keep_their_own_attempts(s: ScriptedEC2, log: AttemptLog) -> None:
    s.raw.script(
        "delete_network_interface",
        client_error("Unavailable", status=503),
        {},
        {},
    )
    await asyncio.gather(
        s.ec2.delete_network_interface(eni_id="eni-1"),
        s.ec2.delete_network_interface(eni_id="eni-2"),
    )
    assert sorted(len(c.codes) for c in log.calls) == [1, 2]
    assert sum(attempts_by_action(log.calls).values()) == len(s.raw.calls) == 3
    assert all(c.done and c.outcome == OK for c in log.calls)

"""Unit tests for eni_controller.aws.ec2.EC2Client over a scripted fake raw client."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from eni_controller.aws.breaker import BreakerState
from eni_controller.aws.ec2 import _snake
from eni_controller.aws.errors import (
    CircuitOpen,
    ENINotFound,
    OutcomeUnknown,
    Permanent,
    Throttled,
    Transient,
    Unauthorized,
)
from tests.harness.ec2_errors import ENDPOINT, client_error
from tests.harness.scripted_ec2 import (
    BREAKER_TIMEOUT,
    FAILURE_THRESHOLD,
    MAX_ATTEMPTS,
    ScriptedEC2,
    raw_eni,
)


@pytest.fixture
def s() -> ScriptedEC2:
    return ScriptedEC2()


async def test_throttled_twice_then_success(s: ScriptedEC2) -> None:
    s.raw.script(
        "create_network_interface",
        client_error("RequestLimitExceeded"),
        client_error("RequestLimitExceeded"),
        {"NetworkInterface": raw_eni("eni-1")},
    )
    created = await s.ec2.create_network_interface(
        subnet_id="subnet-1",
        security_group_ids=("sg-1", "sg-2"),
        description="multus",
        tags={"k": "v"},
        client_token="tok-1",
    )
    assert created.eni_id == "eni-1"
    calls = s.raw.calls_to("create_network_interface")
    assert len(calls) == 3
    expected_params = {
        "SubnetId": "subnet-1",
        "Groups": ["sg-1", "sg-2"],
        "Description": "multus",
        "ClientToken": "tok-1",
        "TagSpecifications": [
            {"ResourceType": "network-interface", "Tags": [{"Key": "k", "Value": "v"}]}
        ],
    }
    assert calls == [expected_params] * 3
    action = "CreateNetworkInterface"
    assert s.sample("aws_api_retries_total", action=action) == 2
    assert s.sample("aws_api_throttles_total", action=action) == 2
    assert s.sample("aws_api_errors_total", action=action, error_class="Throttled") == 2
    assert s.sample("aws_api_calls_total", action=action, result="success") == 1
    assert s.sample("aws_api_calls_total", action=action, result="error") is None
    assert s.sample("aws_api_call_duration_seconds_count", action=action) == 3
    assert s.sample("aws_rate_limiter_wait_seconds_count", action_class="mutating") == 3
    assert s.breaker_state() is BreakerState.CLOSED


async def test_permanent_error_is_not_retried(s: ScriptedEC2) -> None:
    s.raw.script("create_network_interface", client_error("UnauthorizedOperation", status=403))
    with pytest.raises(Permanent) as info:
        await s.ec2.call("CreateNetworkInterface", SubnetId="subnet-1")
    assert type(info.value) is Unauthorized  # a Permanent: no retry
    assert info.value.code == "UnauthorizedOperation"
    assert len(s.raw.calls) == 1
    action = "CreateNetworkInterface"
    assert s.sample("aws_api_retries_total", action=action) is None
    assert s.sample("aws_api_calls_total", action=action, result="error") == 1
    assert s.sample("aws_api_calls_total", action=action, result="success") is None
    assert s.sample("aws_api_errors_total", action=action, error_class="Unauthorized") == 1


async def test_5xx_every_time_exhausts_attempts(s: ScriptedEC2) -> None:
    s.raw.script("delete_network_interface", client_error("InternalError", status=500))
    with pytest.raises(Transient) as info:
        await s.ec2.delete_network_interface(eni_id="eni-1")
    assert type(info.value) is Transient
    assert info.value.code == "InternalError"
    assert s.raw.calls_to("delete_network_interface") == [{"NetworkInterfaceId": "eni-1"}] * (
        MAX_ATTEMPTS
    )
    action = "DeleteNetworkInterface"
    assert s.sample("aws_api_retries_total", action=action) == MAX_ATTEMPTS - 1
    assert s.sample("aws_api_errors_total", action=action, error_class="Transient") == (
        MAX_ATTEMPTS
    )
    assert s.sample("aws_api_calls_total", action=action, result="error") == 1
    assert s.sample("aws_api_throttles_total", action=action) is None


async def test_throttled_every_time_raises_throttled(s: ScriptedEC2) -> None:
    s.raw.script("describe_subnets", client_error("RequestLimitExceeded"))
    with pytest.raises(Throttled):
        await s.ec2.describe_subnets(filters={"vpc-id": ["vpc-1"]})
    assert len(s.raw.calls) == MAX_ATTEMPTS
    assert s.sample("aws_api_throttles_total", action="DescribeSubnets") == MAX_ATTEMPTS


async def test_attach_read_timeout_is_outcome_unknown_after_one_call(s: ScriptedEC2) -> None:
    s.raw.script(
        "attach_network_interface",
        ReadTimeoutError(endpoint_url=ENDPOINT),
        {"AttachmentId": "eni-attach-1"},
    )
    with pytest.raises(OutcomeUnknown) as info:
        await s.ec2.attach_network_interface(eni_id="eni-1", instance_id="i-1", device_index=2)
    assert info.value.action == "AttachNetworkInterface"
    assert info.value.code == "ReadTimeoutError"
    assert s.raw.calls_to("attach_network_interface") == [
        {"NetworkInterfaceId": "eni-1", "InstanceId": "i-1", "DeviceIndex": 2}
    ]
    assert s.sample("aws_api_retries_total", action="AttachNetworkInterface") is None


async def test_attach_connect_failure_is_retried(s: ScriptedEC2) -> None:
    s.raw.script(
        "attach_network_interface",
        EndpointConnectionError(endpoint_url=ENDPOINT),
        {"AttachmentId": "eni-attach-1"},
    )
    attachment = await s.ec2.attach_network_interface(
        eni_id="eni-1", instance_id="i-1", device_index=1
    )
    assert attachment == "eni-attach-1"
    assert len(s.raw.calls) == 2


async def test_create_read_timeout_is_retried(s: ScriptedEC2) -> None:
    s.raw.script(
        "create_network_interface",
        ReadTimeoutError(endpoint_url=ENDPOINT),
        {"NetworkInterface": raw_eni("eni-9")},
    )
    response = await s.ec2.call("CreateNetworkInterface", ClientToken="t")
    assert response == {"NetworkInterface": raw_eni("eni-9")}
    assert len(s.raw.calls) == 2


async def test_non_ec2_exception_propagates_untouched(s: ScriptedEC2) -> None:
    s.raw.script("delete_network_interface", KeyError("surprise"))
    with pytest.raises(KeyError):
        await s.ec2.delete_network_interface(eni_id="eni-1")
    assert len(s.raw.calls) == 1


async def test_describe_network_interfaces_paginates_and_merges(s: ScriptedEC2) -> None:
    s.raw.script(
        "describe_network_interfaces",
        {"NetworkInterfaces": [raw_eni("eni-1"), raw_eni("eni-2")], "NextToken": "t1"},
        {"NetworkInterfaces": [raw_eni("eni-3")], "NextToken": "t2"},
        {"NetworkInterfaces": [raw_eni("eni-4")]},
    )
    found = await s.ec2.describe_network_interfaces(filters={"tag:cluster": ["c1", "c2"]})
    assert [e.eni_id for e in found] == ["eni-1", "eni-2", "eni-3", "eni-4"]
    filters = [{"Name": "tag:cluster", "Values": ["c1", "c2"]}]
    assert s.raw.calls_to("describe_network_interfaces") == [
        {"Filters": filters, "MaxResults": 1000},
        {"Filters": filters, "MaxResults": 1000, "NextToken": "t1"},
        {"Filters": filters, "MaxResults": 1000, "NextToken": "t2"},
    ]
    assert (
        s.sample("aws_api_calls_total", action="DescribeNetworkInterfaces", result="success") == 3
    )


async def test_describe_network_interfaces_batches_ids_by_200(s: ScriptedEC2) -> None:
    s.raw.script("describe_network_interfaces", {"NetworkInterfaces": []})
    ids = [f"eni-{i:04d}" for i in range(450)]
    assert await s.ec2.describe_network_interfaces(filters={"vpc-id": ["vpc-1"]}, eni_ids=ids) == []
    calls = s.raw.calls_to("describe_network_interfaces")
    assert [c["Filters"] for c in calls] == [
        [
            {"Name": "vpc-id", "Values": ["vpc-1"]},
            {"Name": "network-interface-id", "Values": ids[start:end]},
        ]
        for start, end in ((0, 200), (200, 400), (400, 450))
    ]


@pytest.mark.parametrize("bad", ["attachment.device-index", "attachment.status"])
async def test_unsupported_filters_raise_before_any_call(s: ScriptedEC2, bad: str) -> None:
    s.raw.script("describe_network_interfaces", {"NetworkInterfaces": []})
    with pytest.raises(ValueError, match=bad):
        await s.ec2.describe_network_interfaces(filters={"vpc-id": ["vpc-1"], bad: ["1"]})
    assert s.raw.calls == []


async def test_describe_instances_dedupes_ids_and_flattens_reservations(s: ScriptedEC2) -> None:
    s.raw.script(
        "describe_instances",
        {
            "Reservations": [
                {"Instances": [{"InstanceId": "i-1", "State": {"Name": "running"}}]},
                {"Instances": []},
            ],
            "NextToken": "n",
        },
        {"Reservations": [{"Instances": [{"InstanceId": "i-2", "State": {"Name": "stopped"}}]}]},
    )
    found = await s.ec2.describe_instances(["i-2", "i-1", "i-2"])
    assert {k: v.state for k, v in found.items()} == {"i-1": "running", "i-2": "stopped"}
    assert s.raw.calls_to("describe_instances") == [
        {"Filters": [{"Name": "instance-id", "Values": ["i-1", "i-2"]}], "MaxResults": 1000},
        {
            "Filters": [{"Name": "instance-id", "Values": ["i-1", "i-2"]}],
            "MaxResults": 1000,
            "NextToken": "n",
        },
    ]


async def test_describe_instance_types(s: ScriptedEC2) -> None:
    s.raw.script(
        "describe_instance_types",
        {
            "InstanceTypes": [
                {"InstanceType": "m5.large", "NetworkInfo": {"MaximumNetworkInterfaces": 3}},
                {"InstanceType": "c5.4xlarge", "NetworkInfo": {"MaximumNetworkInterfaces": 8}},
            ]
        },
    )
    max_enis = await s.ec2.describe_instance_types(["m5.large", "c5.4xlarge"])
    assert max_enis == {"m5.large": 3, "c5.4xlarge": 8}
    assert s.raw.calls_to("describe_instance_types") == [
        {"InstanceTypes": ["m5.large", "c5.4xlarge"]}
    ]


async def test_breaker_opens_after_threshold_transient_failures(s: ScriptedEC2) -> None:
    s.raw.script("delete_network_interface", client_error("ServiceUnavailable", status=503))
    for _ in range(FAILURE_THRESHOLD - 1):
        with pytest.raises(Transient):
            await s.ec2.delete_network_interface(eni_id="eni-1")
    assert s.breaker_state() is BreakerState.CLOSED
    with pytest.raises(Transient):
        await s.ec2.delete_network_interface(eni_id="eni-1")
    assert s.breaker_state() is BreakerState.OPEN
    raw_calls = len(s.raw.calls)
    assert raw_calls == FAILURE_THRESHOLD * MAX_ATTEMPTS

    s.raw.script("describe_subnets", {"Subnets": []})
    with pytest.raises(CircuitOpen):
        await s.ec2.describe_subnets(filters={})
    with pytest.raises(CircuitOpen):
        await s.ec2.delete_network_interface(eni_id="eni-1")
    assert len(s.raw.calls) == raw_calls

    # after the timeout, one success (success_threshold=1) closes it again
    s.clock.advance(BREAKER_TIMEOUT)
    assert await s.ec2.describe_subnets(filters={}) == []
    assert s.breaker_state() is BreakerState.CLOSED


async def test_not_found_does_not_count_as_breaker_failure(s: ScriptedEC2) -> None:
    s.raw.script("delete_network_interface", client_error("InternalError", status=500))
    s.raw.script("describe_network_interfaces", client_error("InvalidNetworkInterfaceID.NotFound"))
    for _ in range(FAILURE_THRESHOLD - 1):
        with pytest.raises(Transient):
            await s.ec2.delete_network_interface(eni_id="eni-1")
    for _ in range(FAILURE_THRESHOLD * 3):
        with pytest.raises(ENINotFound):
            await s.ec2.describe_network_interfaces(filters={}, eni_ids=["eni-1"])
    assert s.breaker_state() is BreakerState.CLOSED
    # the NotFound answers reset the consecutive count: it starts over
    for _ in range(FAILURE_THRESHOLD - 1):
        with pytest.raises(Transient):
            await s.ec2.delete_network_interface(eni_id="eni-1")
    assert s.breaker_state() is BreakerState.CLOSED
    with pytest.raises(Transient):
        await s.ec2.delete_network_interface(eni_id="eni-1")
    assert s.breaker_state() is BreakerState.OPEN
    # NotFound is a definite answer: never retried
    assert len(s.raw.calls_to("describe_network_interfaces")) == FAILURE_THRESHOLD * 3


async def test_attach_outcome_unknown_counts_as_breaker_failure(s: ScriptedEC2) -> None:
    s.raw.script("attach_network_interface", ReadTimeoutError(endpoint_url=ENDPOINT))
    for _ in range(FAILURE_THRESHOLD):
        with pytest.raises(OutcomeUnknown):
            await s.ec2.attach_network_interface(eni_id="eni-1", instance_id="i-1", device_index=1)
    assert s.breaker_state() is BreakerState.OPEN
    assert len(s.raw.calls) == FAILURE_THRESHOLD


@pytest.mark.parametrize(
    ("action", "method"),
    [
        ("DescribeNetworkInterfaces", "describe_network_interfaces"),
        ("ModifyNetworkInterfaceAttribute", "modify_network_interface_attribute"),
        ("AttachNetworkInterface", "attach_network_interface"),
        ("DescribeInstanceTypes", "describe_instance_types"),
    ],
)
def test_snake_case_method_names(action: str, method: str) -> None:
    assert _snake(action) == method

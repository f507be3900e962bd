"""The AWS realism layer itself: each switch off is moto, each switch on is EC2.

The controller's hard-case tests (SPEC §5) lean on these rules; if a rule
silently stopped applying, those tests would pass against a server that no
longer behaves like AWS. So every switch is checked both ways here, through
botocore with retries off, asserting the exact AWS error code.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.harness.ec2world import (
    AZ_A,
    AZ_B,
    FAKE_CREDENTIALS,
    Instance,
    World,
    ec2_client,
    launch_instance,
)
from tests.harness.realism.control import RealismControl, RealismError

# One attempt in total (botocore's `max_attempts` counts retries in legacy mode).
NO_RETRIES = Config(retries={"total_max_attempts": 1})
M5_LARGE_MAX_ENIS = 3

ON_OFF = pytest.mark.parametrize("on", [False, True], ids=["off", "on"])


def _client(world: World, config: Config = NO_RETRIES) -> Any:
    return boto3.client(
        "ec2",
        region_name=world.region,
        endpoint_url=world.endpoint,
        config=config,
        **FAKE_CREDENTIALS,
    )


@pytest.fixture
def ec2(ec2_world: World) -> Any:
    return _client(ec2_world)


@pytest.fixture
def fresh(ec2_world: World) -> Callable[..., Instance]:
    """Launch a clean instance (AZ A, m5.large unless told otherwise)."""

    def launch(az: str = AZ_A, instance_type: str = "m5.large") -> Instance:
        return launch_instance(
            ec2_world.endpoint,
            az=az,
            instance_type=instance_type,
            subnet_id=ec2_world.node_subnet(az).id,
        )

    return launch


@pytest.fixture
def tag() -> dict[str, str]:
    """A tag unique to the test, to count exactly the ENIs it created."""
    return {"Key": "realism-test", "Value": secrets.token_hex(6)}


def _create_eni(ec2: Any, world: World, subnet: str = "multus-a", **kwargs: Any) -> str:
    response = ec2.create_network_interface(SubnetId=world.subnet(subnet).id, **kwargs)
    eni_id: str = response["NetworkInterface"]["NetworkInterfaceId"]
    return eni_id


def _attach(ec2: Any, eni_id: str, instance: Instance, index: int = 1) -> str:
    response = ec2.attach_network_interface(
        NetworkInterfaceId=eni_id, InstanceId=instance.id, DeviceIndex=index
    )
    attachment_id: str = response["AttachmentId"]
    return attachment_id


def _describe(ec2: Any, eni_id: str) -> dict[str, Any]:
    (eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
    return dict(eni)


def _error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value


def _code(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The AWS error code `call(*args, **kwargs)` fails with."""
    code: str = _error(call, *args, **kwargs).response["Error"]["Code"]
    return code


def _tagged(ec2: Any, tag: dict[str, str]) -> list[str]:
    response = ec2.describe_network_interfaces(
        Filters=[{"Name": f"tag:{tag['Key']}", "Values": [tag["Value"]]}]
    )
    return sorted(e["NetworkInterfaceId"] for e in response["NetworkInterfaces"])


def _tag_spec(tag: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": "network-interface", "Tags": [tag]}]


# --- control API -----------------------------------------------------------


def test_configure_rejects_unknown_switch_and_bad_values(realism: RealismControl) -> None:
    with pytest.raises(RealismError, match="bogus"):
        realism.configure(bogus=True)
    with pytest.raises(RealismError, match="attach_latency"):
        realism.configure(attach_latency="slow")
    with pytest.raises(RealismError, match="unknown action class"):
        realism.configure(throttle={"buckets": {"everything": [1, 1]}})
    with pytest.raises(RealismError, match=r"answer_latencies\.describe"):
        realism.configure(answer_latencies={"describe": -1})
    assert realism.state()["attach_latency"] == 0.0
    assert realism.state()["answer_latencies"] == {}


def test_state_merges_and_reset_clears_switches_and_counters(
    realism: RealismControl, ec2: Any, ec2_world: World
) -> None:
    realism.configure(az_check=True)
    state = realism.configure(page_size=3)
    assert state["az_check"] is True
    assert state["page_size"] == 3
    eni_id = _create_eni(ec2, ec2_world)
    assert realism.calls()["CreateNetworkInterface"] == 1

    realism.reset()

    assert not any(realism.state()[rule] for rule in RealismControl.AWS_RULES)
    assert realism.state()["page_size"] is None
    assert realism.calls() == {}
    assert _describe(ec2, eni_id)["Status"] == "available"  # moto's resources are kept


def test_calls_and_errors_are_counted_per_action_and_code(
    realism: RealismControl, ec2: Any
) -> None:
    ec2.describe_vpcs()
    ec2.describe_vpcs()
    assert _code(lambda: _describe(ec2, "eni-0000000000000dead")) == (
        "InvalidNetworkInterfaceID.NotFound"
    )
    assert realism.calls() == {"DescribeVpcs": 2, "DescribeNetworkInterfaces": 1}
    assert realism.errors() == {"InvalidNetworkInterfaceID.NotFound": 1}


def test_aws_rules_preset_turns_on_every_rule_only(realism: RealismControl) -> None:
    state = realism.configure(**RealismControl.AWS_RULES)
    for rule in (
        "device_index_conflicts",
        "in_use_delete",
        "in_use_attach",
        "eni_limits",
        "az_check",
        "instance_state_check",
        "security_group_check",
        "client_token",
        "delete_on_termination",
    ):
        assert state[rule] is True, rule
    assert state["attach_latency"] == state["detach_latency"] == 0.0
    assert state["throttle"] is None
    assert state["faults"] is None


# --- AWS rules -------------------------------------------------------------


@ON_OFF
def test_device_index_conflict(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(device_index_conflicts=on)
    instance = fresh()
    _attach(ec2, _create_eni(ec2, ec2_world), instance, index=1)
    second = _create_eni(ec2, ec2_world)
    if on:
        assert _code(lambda: _attach(ec2, second, instance, index=1)) == "InvalidParameterValue"
        _attach(ec2, second, instance, index=2)
    else:
        _attach(ec2, second, instance, index=1)  # moto overwrites the slot
    assert _describe(ec2, second)["Attachment"]["DeviceIndex"] == (2 if on else 1)


def test_device_index_check_is_atomic_under_concurrent_attaches(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance]
) -> None:
    realism.configure(device_index_conflicts=True)
    instance = fresh(instance_type="c5.xlarge")
    enis = [_create_eni(ec2, ec2_world) for _ in range(6)]

    def attach(eni_id: str) -> str:
        try:
            _attach(ec2, eni_id, instance, index=1)  # botocore clients are thread-safe
        except ClientError as err:
            return str(err.response["Error"]["Code"])
        return "ok"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(attach, enis))
    assert outcomes == ["InvalidParameterValue"] * 5 + ["ok"]


@ON_OFF
def test_delete_of_attached_eni(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(in_use_delete=on)
    eni_id = _create_eni(ec2, ec2_world)
    attachment_id = _attach(ec2, eni_id, fresh())
    if on:
        delete = ec2.delete_network_interface
        assert _code(delete, NetworkInterfaceId=eni_id) == "InvalidNetworkInterface.InUse"
        ec2.detach_network_interface(AttachmentId=attachment_id)
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    assert _code(lambda: _describe(ec2, eni_id)) == "InvalidNetworkInterfaceID.NotFound"


@ON_OFF
def test_attach_of_attached_eni(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(in_use_attach=on)
    eni_id = _create_eni(ec2, ec2_world)
    _attach(ec2, eni_id, fresh())
    other = fresh()
    if on:
        assert _code(lambda: _attach(ec2, eni_id, other)) == "InvalidNetworkInterface.InUse"
    else:
        _attach(ec2, eni_id, other)
        assert _describe(ec2, eni_id)["Attachment"]["InstanceId"] == other.id


@ON_OFF
def test_instance_type_eni_limit(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(eni_limits=on)
    instance = fresh(instance_type="m5.large")  # 3 ENIs, the primary included
    for index in range(1, M5_LARGE_MAX_ENIS):
        _attach(ec2, _create_eni(ec2, ec2_world), instance, index=index)
    extra = _create_eni(ec2, ec2_world)
    if on:
        code = _code(lambda: _attach(ec2, extra, instance, index=M5_LARGE_MAX_ENIS))
        assert code == "AttachmentLimitExceeded"
        assert _describe(ec2, extra)["Status"] == "available"
    else:
        _attach(ec2, extra, instance, index=M5_LARGE_MAX_ENIS)


@ON_OFF
def test_subnet_in_another_az(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(az_check=on)
    eni_id = _create_eni(ec2, ec2_world, subnet="multus-b")
    instance = fresh(az=AZ_A)
    if on:
        assert _code(lambda: _attach(ec2, eni_id, instance)) == "InvalidParameterCombination"
        _attach(ec2, eni_id, fresh(az=AZ_B))
    else:
        _attach(ec2, eni_id, instance)


@ON_OFF
def test_attach_to_terminated_instance(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(instance_state_check=on)
    instance = fresh()
    ec2.terminate_instances(InstanceIds=[instance.id])
    eni_id = _create_eni(ec2, ec2_world)
    if on:
        assert _code(lambda: _attach(ec2, eni_id, instance)) == "IncorrectInstanceState"
    else:
        _attach(ec2, eni_id, instance)


@ON_OFF
def test_unknown_security_group(
    realism: RealismControl, ec2: Any, ec2_world: World, on: bool
) -> None:
    realism.configure(security_group_check=on)
    unknown = f"sg-{secrets.token_hex(8)}"
    known = ec2_world.security_group("multus-sg").id
    eni_id = _create_eni(ec2, ec2_world, Groups=[known])
    create = (_create_eni, ec2, ec2_world)
    modify = ec2.modify_network_interface_attribute
    if on:
        assert _code(*create, Groups=[unknown]) == "InvalidGroup.NotFound"
        code = _code(modify, NetworkInterfaceId=eni_id, Groups=[known, unknown])
        assert code == "InvalidGroup.NotFound"
        assert [g["GroupId"] for g in _describe(ec2, eni_id)["Groups"]] == [known]
    else:  # moto invents the group
        _create_eni(ec2, ec2_world, Groups=[unknown])
        modify(NetworkInterfaceId=eni_id, Groups=[known, unknown])


@ON_OFF
def test_client_token_idempotency(
    realism: RealismControl, ec2: Any, ec2_world: World, tag: dict[str, str], on: bool
) -> None:
    realism.configure(client_token=on)
    token = secrets.token_hex(16)

    def create(subnet: str = "multus-a") -> str:
        return _create_eni(
            ec2, ec2_world, subnet, ClientToken=token, TagSpecifications=_tag_spec(tag)
        )

    first, second = create(), create()
    if on:
        assert first == second
        assert _tagged(ec2, tag) == [first]
        assert _code(lambda: create("multus-a-2")) == "IdempotentParameterMismatch"
        assert _tagged(ec2, tag) == [first]
        assert realism.enis_created() == 1  # a replay (or a refusal) makes no ENI
    else:
        assert first != second
        assert _tagged(ec2, tag) == sorted([first, second])
        assert realism.enis_created() == 2
    assert realism.calls()["CreateNetworkInterface"] == (3 if on else 2)


@ON_OFF
def test_delete_on_termination(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(delete_on_termination=on)
    instance = fresh()
    doomed, kept = _create_eni(ec2, ec2_world), _create_eni(ec2, ec2_world)
    attachment_id = _attach(ec2, doomed, instance, index=1)
    _attach(ec2, kept, instance, index=2)
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=doomed,
        Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True},
    )
    assert _describe(ec2, doomed)["Attachment"]["DeleteOnTermination"] is on

    ec2.terminate_instances(InstanceIds=[instance.id])

    if on:
        assert _code(lambda: _describe(ec2, doomed)) == "InvalidNetworkInterfaceID.NotFound"
        survivor = _describe(ec2, kept)
        assert survivor["Status"] == "available"
        assert "Attachment" not in survivor
    else:  # moto leaves both attached to the terminated instance
        assert _describe(ec2, doomed)["Attachment"]["InstanceId"] == instance.id
        assert _describe(ec2, kept)["Attachment"]["InstanceId"] == instance.id


def test_delete_on_termination_needs_the_current_attachment(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance]
) -> None:
    realism.configure(delete_on_termination=True)
    eni_id = _create_eni(ec2, ec2_world)
    _attach(ec2, eni_id, fresh())
    code = _code(
        lambda: ec2.modify_network_interface_attribute(
            NetworkInterfaceId=eni_id,
            Attachment={
                "AttachmentId": "eni-attach-0000000000000dead",
                "DeleteOnTermination": True,
            },
        )
    )
    assert code == "InvalidAttachmentID.NotFound"


# --- time: latency and eventual consistency ---------------------------------

LATENCY = 0.3


@ON_OFF
def test_attach_latency(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(attach_latency=LATENCY if on else 0)
    eni_id = _create_eni(ec2, ec2_world)
    _attach(ec2, eni_id, fresh())
    eni = _describe(ec2, eni_id)
    assert eni["Status"] == "in-use"
    assert eni["Attachment"]["Status"] == ("attaching" if on else "attached")
    if on:
        time.sleep(LATENCY + 0.05)
        assert _describe(ec2, eni_id)["Attachment"]["Status"] == "attached"


@ON_OFF
def test_detach_latency(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance], on: bool
) -> None:
    realism.configure(detach_latency=LATENCY if on else 0, in_use_delete=True)
    eni_id = _create_eni(ec2, ec2_world)
    attachment_id = _attach(ec2, eni_id, fresh())
    ec2.detach_network_interface(AttachmentId=attachment_id)
    if on:
        eni = _describe(ec2, eni_id)
        assert eni["Status"] == "in-use"
        assert eni["Attachment"]["Status"] == "detaching"
        ec2.detach_network_interface(AttachmentId=attachment_id)  # repeated: accepted
        delete = ec2.delete_network_interface
        assert _code(delete, NetworkInterfaceId=eni_id) == "InvalidNetworkInterface.InUse"
        time.sleep(LATENCY + 0.05)
    eni = _describe(ec2, eni_id)
    assert eni["Status"] == "available"
    assert "Attachment" not in eni
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)


@ON_OFF
def test_answer_latency_holds_mutating_answers_after_acting(
    realism: RealismControl, ec2: Any, ec2_world: World, tag: dict[str, str], on: bool
) -> None:
    realism.configure(answer_latency=LATENCY if on else 0)
    started = time.monotonic()
    ec2.describe_vpcs()  # never held
    assert time.monotonic() - started < LATENCY
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(_create_eni, ec2, ec2_world, TagSpecifications=_tag_spec(tag))
        time.sleep(LATENCY / 2)
        # acted on at once, whether or not the answer is still held
        assert len(_tagged(_client(ec2_world), tag)) == 1
        eni_id = pending.result()
        took = time.monotonic() - started
    assert (took >= LATENCY) is on, took
    assert _tagged(ec2, tag) == [eni_id]


def test_answer_latencies_hold_answers_per_action_and_class(
    realism: RealismControl, ec2: Any, ec2_world: World
) -> None:
    """The server holds a create's answer by its own entry and a describe's by its
    class's; set, cleared, set again. Only lower bounds are timed (a held answer
    cannot come sooner); which action gets which delay, the precedence, is
    tests/unit/test_realism_answer_delay.py's, with no clock."""

    def took(call: Callable[..., Any], **kwargs: Any) -> float:
        started = time.monotonic()
        call(**kwargs)
        return time.monotonic() - started

    latencies = {"CreateNetworkInterface": 2 * LATENCY, "describe": LATENCY, "DescribeVpcs": 0}
    for _round in range(2):
        assert realism.configure(answer_latencies=latencies)["answer_latencies"] == latencies
        eni_id = _create_eni(ec2, ec2_world)
        assert took(_describe, ec2=ec2, eni_id=eni_id) >= LATENCY
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)
        assert took(_create_eni, ec2=ec2, world=ec2_world) >= 2 * LATENCY
        assert realism.configure(answer_latencies={})["answer_latencies"] == {}


def test_reset_finishes_pending_detach(
    realism: RealismControl, ec2: Any, ec2_world: World, fresh: Callable[..., Instance]
) -> None:
    realism.configure(detach_latency=60)
    eni_id = _create_eni(ec2, ec2_world)
    ec2.detach_network_interface(AttachmentId=_attach(ec2, eni_id, fresh()))
    assert _describe(ec2, eni_id)["Attachment"]["Status"] == "detaching"
    realism.reset()
    assert _describe(ec2, eni_id)["Status"] == "available"


@ON_OFF
def test_consistency_window(
    realism: RealismControl,
    ec2: Any,
    ec2_world: World,
    fresh: Callable[..., Instance],
    tag: dict[str, str],
    on: bool,
) -> None:
    window = 0.4
    realism.configure(consistency_window=window if on else 0)
    instance = fresh()
    started = time.monotonic()
    eni_id = _create_eni(ec2, ec2_world, TagSpecifications=_tag_spec(tag))
    if on:
        not_found = "InvalidNetworkInterfaceID.NotFound"
        assert _code(lambda: _describe(ec2, eni_id)) == not_found
        assert _tagged(ec2, tag) == []
        assert _code(lambda: _attach(ec2, eni_id, instance)) == not_found
        delete = ec2.delete_network_interface
        assert _code(delete, NetworkInterfaceId=eni_id) == not_found
        assert time.monotonic() - started < window, "too slow to observe the window"
        time.sleep(window - (time.monotonic() - started) + 0.05)
    assert _tagged(ec2, tag) == [eni_id]
    _attach(ec2, eni_id, instance)


# --- paging ----------------------------------------------------------------


@ON_OFF
def test_describe_network_interfaces_paging(
    realism: RealismControl, ec2: Any, ec2_world: World, tag: dict[str, str], on: bool
) -> None:
    realism.configure(page_size=2 if on else None)
    created = sorted(
        _create_eni(ec2, ec2_world, TagSpecifications=_tag_spec(tag)) for _ in range(5)
    )
    filters = [{"Name": f"tag:{tag['Key']}", "Values": [tag["Value"]]}]
    first = ec2.describe_network_interfaces(Filters=filters)
    if not on:
        assert len(first["NetworkInterfaces"]) == len(created)
        assert "NextToken" not in first
        return
    assert len(first["NetworkInterfaces"]) == 2
    assert first["NextToken"]
    pages = ec2.get_paginator("describe_network_interfaces").paginate(Filters=filters)
    seen = [e["NetworkInterfaceId"] for page in pages for e in page["NetworkInterfaces"]]
    assert seen == created
    describe = ec2.describe_network_interfaces
    assert _code(describe, Filters=filters, NextToken="not-a-token") == "InvalidParameterValue"


def test_id_filter_answers_only_the_asked_ids_with_the_other_filters_and_patterns(
    ec2: Any, ec2_world: World, tag: dict[str, str]
) -> None:
    """The id-filter index (idfilter.py) must answer exactly what moto's own matching does."""
    tagged = sorted(_create_eni(ec2, ec2_world, TagSpecifications=_tag_spec(tag)) for _ in range(3))
    untagged = _create_eni(ec2, ec2_world)

    def ids(*filters: tuple[str, list[str]], **params: Any) -> list[str]:
        answer = ec2.describe_network_interfaces(
            Filters=[{"Name": name, "Values": values} for name, values in filters], **params
        )
        return sorted(e["NetworkInterfaceId"] for e in answer["NetworkInterfaces"])

    by_id = ("network-interface-id", [tagged[0], untagged, "eni-0000000000000dead", tagged[2]])
    by_tag = (f"tag:{tag['Key']}", [tag["Value"]])
    assert ids(by_id) == sorted([tagged[0], tagged[2], untagged])  # a missing id is no error
    assert ids(by_id, by_tag) == [tagged[0], tagged[2]]
    assert ids(by_id, NetworkInterfaceIds=[tagged[0], tagged[1]]) == [tagged[0]]
    # a value with a pattern character is matched as moto matches it
    assert ids(("network-interface-id", [tagged[1][:-1] + "?"]), by_tag) == [tagged[1]]
    assert ids(("network-interface-id", ["eni-*"]), by_tag) == tagged


# --- throttling and faults ---------------------------------------------------


def test_throttle_token_bucket(realism: RealismControl, ec2: Any) -> None:
    realism.configure(throttle={"buckets": {"describe": [3, 1]}})
    for _ in range(3):
        ec2.describe_vpcs()
    error = _error(ec2.describe_vpcs)
    assert error.response["Error"]["Code"] == "RequestLimitExceeded"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == HTTPStatus.SERVICE_UNAVAILABLE
    assert realism.errors() == {"RequestLimitExceeded": 1}
    assert realism.calls() == {"DescribeVpcs": 4}
    time.sleep(1.05)  # one token refilled
    ec2.describe_vpcs()
    assert realism.calls() == {"DescribeVpcs": 5}


def test_throttle_buckets_are_per_action_class(
    realism: RealismControl, ec2: Any, ec2_world: World
) -> None:
    realism.configure(throttle={"buckets": {"mutating": [1, 0]}})
    _create_eni(ec2, ec2_world)
    assert _code(lambda: _create_eni(ec2, ec2_world)) == "RequestLimitExceeded"
    for _ in range(5):
        ec2.describe_vpcs()  # describe has no bucket: unlimited


def test_aws_default_buckets_preset(realism: RealismControl) -> None:
    assert RealismControl.AWS_THROTTLE == {
        "buckets": {"describe": [100.0, 20.0], "mutating": [50.0, 5.0]}
    }
    assert realism.configure(throttle=RealismControl.AWS_THROTTLE)["throttle"] == (
        RealismControl.AWS_THROTTLE
    )


def test_injected_5xx_is_seeded_and_reproducible(realism: RealismControl, ec2: Any) -> None:
    faults = {"rate_5xx": 0.5, "seed": 42, "actions": ["DescribeVpcs"]}
    # One draw per matching request: the seed alone fixes the sequence.
    rng = random.Random(42)
    expected = ["InternalError" if rng.random() < 0.5 else "ok" for _ in range(12)]
    assert set(expected) == {"InternalError", "ok"}

    def run() -> list[str]:
        realism.configure(faults=faults)
        outcomes = []
        for _ in range(12):
            try:
                ec2.describe_vpcs()
            except ClientError as err:
                statuses.add(err.response["ResponseMetadata"]["HTTPStatusCode"])
                outcomes.append(err.response["Error"]["Code"])
            else:
                outcomes.append("ok")
            ec2.describe_subnets()  # not in `actions`: never failed
        return outcomes

    statuses: set[int] = set()
    assert run() == expected
    assert run() == expected
    assert statuses == {HTTPStatus.INTERNAL_SERVER_ERROR}
    assert realism.calls()["DescribeVpcs"] == 24
    assert realism.errors() == {"InternalError": 2 * expected.count("InternalError")}


def test_injected_unavailable(realism: RealismControl, ec2: Any) -> None:
    realism.configure(faults={"rate_unavailable": 1.0, "actions": ["DescribeVpcs"]})
    error = _error(ec2.describe_vpcs)
    assert error.response["Error"]["Code"] == "Unavailable"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == HTTPStatus.SERVICE_UNAVAILABLE


def test_injected_timeout_executes_then_delays(
    realism: RealismControl, ec2: Any, ec2_world: World, tag: dict[str, str]
) -> None:
    realism.configure(
        faults={"rate_timeout": 1.0, "timeout_seconds": 0.5, "actions": ["CreateNetworkInterface"]}
    )
    impatient = _client(ec2_world, Config(retries={"total_max_attempts": 1}, read_timeout=0.2))
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        _create_eni(impatient, ec2_world, TagSpecifications=_tag_spec(tag))
    assert time.monotonic() - started < 0.5
    (eni_id,) = _tagged(ec2, tag)  # AWS acted although the caller saw no answer
    assert realism.timeouts() == {"CreateNetworkInterface": 1}
    assert realism.calls()["CreateNetworkInterface"] == 1
    assert _describe(ec2, eni_id)["Status"] == "available"


def test_denied_actions_answer_unauthorized_even_for_dry_run(
    ec2: Any, ec2_world: World, realism: RealismControl
) -> None:
    realism.configure(deny_actions=["DescribeSubnets", "DeleteNetworkInterface"])
    calls: list[tuple[str, dict[str, Any]]] = [
        ("describe_subnets", {}),
        ("delete_network_interface", {"NetworkInterfaceId": "eni-0123456789abcdef0"}),
        (
            "delete_network_interface",
            {"NetworkInterfaceId": "eni-0123456789abcdef0", "DryRun": True},
        ),
    ]
    for method, params in calls:
        with pytest.raises(ClientError) as denied:
            getattr(ec2, method)(**params)
        assert denied.value.response["Error"]["Code"] == "UnauthorizedOperation"
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == HTTPStatus.FORBIDDEN
    assert ec2.describe_vpcs(VpcIds=[ec2_world.vpc_id])["Vpcs"]  # others still allowed
    realism.configure(deny_actions=[])
    assert ec2.describe_subnets()["Subnets"]


def test_deny_actions_must_be_a_list_of_names(realism: RealismControl) -> None:
    with pytest.raises(RealismError, match="deny_actions"):
        realism.configure(deny_actions="DescribeSubnets")


# --- the call journal ---------------------------------------------------------


def test_journal_names_caller_and_eni_of_every_mutating_call(
    realism: RealismControl, ec2_world: World, fresh: Callable[..., Instance]
) -> None:
    realism.configure(client_token=True, in_use_delete=True)
    keys = {"a": "AKIAJOURNALA", "b": "AKIAJOURNALB"}
    clients = {
        name: boto3.client(
            "ec2",
            region_name=ec2_world.region,
            endpoint_url=ec2_world.endpoint,
            config=NO_RETRIES,
            aws_access_key_id=key,
            aws_secret_access_key="testing",
        )
        for name, key in keys.items()
    }
    a, b = clients["a"], clients["b"]
    instance = fresh()
    token = secrets.token_hex(16)
    slot = {"Node": "n1", "NodeENIUID": "uid-1", "InstanceID": instance.id}
    node_tag = [
        {
            "ResourceType": "network-interface",
            "Tags": [{"Key": k, "Value": v} for k, v in slot.items()],
        }
    ]
    subnet_id = ec2_world.subnet("multus-a").id
    before = time.monotonic()
    eni_id = _create_eni(a, ec2_world, ClientToken=token, TagSpecifications=node_tag)
    assert _create_eni(b, ec2_world, ClientToken=token, TagSpecifications=node_tag) == eni_id
    attachment_id = _attach(a, eni_id, instance)
    assert _code(b.delete_network_interface, NetworkInterfaceId=eni_id) == (
        "InvalidNetworkInterface.InUse"
    )
    b.detach_network_interface(AttachmentId=attachment_id)
    b.delete_network_interface(NetworkInterfaceId=eni_id)
    a.describe_network_interfaces(NetworkInterfaceIds=[])  # not journaled

    journal = [e for e in realism.journal() if e["caller"] in keys.values()]  # not fresh()'s
    assert [(e["action"], e["caller"], e["eni_id"], e["error"]) for e in journal] == [
        ("CreateNetworkInterface", keys["a"], eni_id, None),
        ("CreateNetworkInterface", keys["b"], eni_id, None),  # the token's replay
        ("AttachNetworkInterface", keys["a"], eni_id, None),
        ("DeleteNetworkInterface", keys["b"], eni_id, "InvalidNetworkInterface.InUse"),
        ("DetachNetworkInterface", keys["b"], eni_id, None),  # resolved from the attachment
        ("DeleteNetworkInterface", keys["b"], eni_id, None),
    ]
    create, _, attach, *_ = journal
    assert (create["subnet_id"], create["node"], create["client_token"]) == (subnet_id, "n1", token)
    assert (create["nodeeni_uid"], create["instance_tag"]) == ("uid-1", instance.id)
    assert (attach["instance_id"], attach["device_index"]) == (instance.id, 1)
    assert attach["attachment_id"] == attachment_id
    assert [e["seq"] for e in journal] == sorted({e["seq"] for e in journal})
    assert before <= journal[0]["at"] <= journal[-1]["at"] <= time.monotonic()
    assert all(e["at"] <= e["answered"] <= time.monotonic() for e in journal)
    realism.reset()
    assert realism.journal() == []


# --- the test looking --------------------------------------------------------


def test_observer_requests_are_not_counted_throttled_failed_or_hidden(
    realism: RealismControl, ec2: Any, ec2_world: World, tag: dict[str, str]
) -> None:
    """A test sampling EC2 during a run (tests.harness.invariants) must not change
    what it measures: its reads are answered as moto has it, outside every figure."""
    observer = ec2_client(ec2_world.endpoint, observer=True)
    realism.configure(consistency_window=30, throttle={"buckets": {"describe": [1, 0]}})
    eni_id = _create_eni(ec2, ec2_world, TagSpecifications=_tag_spec(tag))
    realism.configure(faults={"rate_5xx": 1.0, "actions": ["DescribeNetworkInterfaces"]})
    for _ in range(3):
        assert _tagged(observer, tag) == [eni_id]  # inside the window, bucket empty, 5xx
    assert realism.calls() == {"CreateNetworkInterface": 1}
    assert realism.errors() == {}
    # the client under test still gets all of it: a 5xx, then (the token spent) throttled
    assert _code(lambda: _tagged(ec2, tag)) == "InternalError"
    realism.configure(faults=None)
    assert _code(lambda: _tagged(ec2, tag)) == "RequestLimitExceeded"
    realism.configure(throttle=None)
    assert _tagged(ec2, tag) == []  # hidden from it: the window is still open

"""Errors that never go away and effects that never stick: backed off, reported,
and never repeated on a fixed cadence. Each runs against the realism layer's AWS
rules and against plain moto (`both_ec2`).

The backoff here is scaled down (ERROR_BACKOFF_BASE 0.25 s, ERROR_BACKOFF_MAX
2 s, against 2 s and 5 m by default) so the tests see the curve flatten in
seconds; the real-time figure is the slow test at the end (`make test-slow`).
Calls are counted by the EC2 server; the assertions are upper bounds, which a
slow machine only makes easier to meet.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from eni_controller.model import AttachmentState
from tests.harness.controller import (
    AWSEnv,
    condition,
    controller_config,
    is_ready,
    quiet,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A
from tests.harness.fleet import make_nodes, nodeeni_spec
from tests.harness.realism.control import RealismControl

DENIED_CODE = "UnauthorizedOperation"


def _denied(realism: RealismControl) -> int:
    return realism.errors().get(DENIED_CODE, 0)


def _attached(obj: dict[str, Any]) -> int:
    return sum(
        a.get("status") == AttachmentState.ATTACHED
        for a in (obj.get("status") or {}).get("attachments") or []
    )


def _unauthorized(obj: dict[str, Any]) -> bool:
    return condition(obj, "Ready").get("reason") == "Unauthorized"


async def _denied_rollout(
    env: AWSEnv, *, base: float, cap: float, warm_up: float, window: float
) -> tuple[int, int, dict[str, Any]]:
    """Two nodes wanting one ENI each in a subnet whose creates are denied, and a
    NodeENI beside it on other nodes: (denied calls until `warm_up` seconds after
    the denial shows on the NodeENI, denied calls in the `window` after that, the
    denied NodeENI as it reads at the end)."""
    denied_subnet = env.world.subnet("multus-a-2").id
    env.realism.configure(deny_subnets=[denied_subnet])
    await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=2)
    other = f"{env.unique}-ok"
    await make_nodes(env.nodes, env.world, other, az=AZ_A, count=2)
    config = controller_config(
        env.world, error_backoff_base_seconds=base, error_backoff_max_seconds=cap
    )
    async with running_controller(env.api, config) as controller:
        await quiet(controller, env.unique)
        await env.nodeenis.create(env.unique, nodeeni_spec(env.unique, env.world, "multus-a-2"))
        await env.nodeenis.create(other, nodeeni_spec(other, env.world, "multus-a"))
        # the NodeENI beside it converges as if nothing were wrong
        await wait_for_nodeeni(env.api, other, lambda o: is_ready(o) and _attached(o) == 2)
        first = await wait_for_nodeeni(env.api, env.unique, _unauthorized, within=30)
        await asyncio.sleep(warm_up)
        before = _denied(env.realism)
        await asyncio.sleep(window)
        during = _denied(env.realism) - before
        last = await wait_for_nodeeni(env.api, env.unique, _unauthorized)
    print(
        f"denied creates per slot: {before / 2:.1f} in the first {warm_up:.0f}s, "
        f"{during / 2:.1f} in the next {window:.0f}s; "
        f"condition: {condition(first, 'Ready').get('message')}"
    )
    return before, during, last


async def test_a_denied_create_backs_off_per_slot_and_says_why(both_ec2: AWSEnv) -> None:
    before, during, last = await _denied_rollout(
        both_ec2, base=0.25, cap=2.0, warm_up=4.0, window=8.0
    )
    ready = condition(last, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "Unauthorized"
    assert DENIED_CODE in ready["message"]
    assert "not authorized" in ready["message"]  # AWS's own words
    assert condition(last, "Degraded")["status"] == "True"
    # 2 slots, tried at 0, .25, .75, 1.75, 3.75, then once per cap (2 s): by the
    # window (4 s after the condition showed) the delay is at the cap, so 4 tries
    # each in 8 s, one more each for the window's edges. Failing every 0.25 s (no
    # backoff) would be 64 in the window.
    assert before >= 2 * 4
    assert during <= 2 * 5
    assert during >= 2  # still tried: backed off, not given up


async def test_an_effect_that_never_sticks_is_sent_a_bounded_number_of_times(
    both_ec2: AWSEnv,
) -> None:
    """DeleteOnTermination is set after attach. Plain moto accepts and ignores it;
    the realism layer keeps it. Either way, at most 3 sends per attachment, then
    idle resyncs make no mutating call and the mismatch is named."""
    env = both_ec2
    plain = not env.aws_rules
    await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=3)
    config = controller_config(env.world, reconcile_period_seconds=1.0)
    async with running_controller(env.api, config) as controller:
        await quiet(controller, env.unique)
        base = env.realism.calls().get("ModifyNetworkInterfaceAttribute", 0)
        await env.nodeenis.create(env.unique, nodeeni_spec(env.unique, env.world, "multus-a"))
        obj = await wait_for_nodeeni(
            env.api,
            env.unique,
            lambda o: (
                is_ready(o)
                and _attached(o) == 3
                and condition(o, "Degraded").get("status") == ("True" if plain else "False")
            ),
            within=60,
        )
        calls = env.realism.calls()
        modifies = calls.get("ModifyNetworkInterfaceAttribute", 0) - base
        await asyncio.sleep(5.0)  # five resyncs
        idle = env.realism.calls()
    mutating = (
        "CreateNetworkInterface",
        "AttachNetworkInterface",
        "ModifyNetworkInterfaceAttribute",
    )
    extra = [idle.get(a, 0) - calls.get(a, 0) for a in mutating]
    print(f"modify calls for 3 attachments: {modifies}; idle mutating calls: {extra}")
    assert modifies <= 3 * 3
    assert all(idle.get(a, 0) == calls.get(a, 0) for a in mutating)
    if plain:
        degraded = condition(obj, "Degraded")
        assert degraded["reason"] == "AttributeNotApplied"
        assert "DeleteOnTermination" in degraded["message"]
    else:
        assert modifies == 3


@pytest.mark.slow
async def test_a_denied_create_in_real_time(both_ec2: AWSEnv) -> None:
    """The default backoff: at most 3 calls per slot in the second minute."""
    _, during, _ = await _denied_rollout(both_ec2, base=2.0, cap=300.0, warm_up=60.0, window=60.0)
    assert during <= 2 * 3

"""Do, then undo: every round trip ends with exactly one attached ENI per wanted
(node, subnet), and costs one CreateNetworkInterface per slot made again, no
more. Each runs twice (`both_ec2`): with the realism layer's AWS rules (EC2
keeps ClientTokens, so a slot that replayed its first token got its deleted
ENI back, forever) and against plain moto, as the kind workflow runs it.

Each round trip is walked twice in a row: the second pass needs a third token.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from kubernetes_asyncio import client

from eni_controller.controller import Controller
from eni_controller.model import AttachmentState
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    quiet,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, ec2_client, launch_instance
from tests.harness.ec2world import MULTUS_SUBNETS_A as SUBNETS
from tests.harness.fleet import (
    attached_by_slot,
    delete_nodeeni,
    enis_of,
    label_node,
    make_nodes,
    nodeeni_spec,
    wait_gone,
)
from tests.harness.kube import merge_patch_nodeeni
from tests.harness.realism.control import RealismControl
from tests.harness.waiting import until

ROUNDS = 2
RESYNC_SECONDS = 3.0  # hand-made changes in EC2 raise no event: a resync finds them


def _creates(realism: RealismControl) -> int:
    return realism.calls().get("CreateNetworkInterface", 0)


def _attached(obj: dict[str, Any]) -> int:
    return sum(
        a.get("status") == AttachmentState.ATTACHED
        for a in (obj.get("status") or {}).get("attachments") or []
    )


def _ready_with(count: int) -> Any:
    return lambda obj: is_ready(obj) and _attached(obj) == count


def _listing(eni_id: str) -> Any:
    return lambda obj: any(
        a.get("eniID") == eni_id for a in (obj.get("status") or {}).get("attachments") or []
    )


async def _converged(env: AWSEnv, *, since: float) -> None:
    """Until the NodeENI is Ready with its 4 ENIs attached; prints the round trip's time."""
    await wait_for_nodeeni(env.api, env.unique, _ready_with(4), within=30)
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].split(" ")[0]
    print(f"FIGURE {test}: round trip converged in {time.monotonic() - since:.1f}s")


def _one_per_slot(env: AWSEnv, uid: str, nodes: list[str]) -> None:
    subnets = {env.world.subnet(s).id for s in SUBNETS}
    slots = attached_by_slot(env.world, uid)
    assert slots.keys() == {(n, s) for n in nodes for s in subnets}
    assert all(len(enis) == 1 for enis in slots.values()), slots
    # and nothing else of ours: no leftover, detached or not
    assert len(enis_of(env.world, uid)) == len(slots)


def _none_for(env: AWSEnv, uid: str, node: str) -> bool:
    return not any(
        {t["Key"]: t["Value"] for t in e.get("TagSet", [])}.get("Node") == node
        for e in enis_of(env.world, uid)
    )


async def _start(env: AWSEnv, controller: Controller, count: int = 2) -> tuple[list[str], str]:
    """Nodes, and a NodeENI on them Ready, with earlier tests' leftovers gone."""
    made = await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=count)
    created = await env.nodeenis.create(env.unique, nodeeni_spec(env.unique, env.world, *SUBNETS))
    await wait_for_nodeeni(env.api, env.unique, _ready_with(2 * count), within=60)
    await quiet(controller, env.unique)
    return [name for name, _ in made], created["metadata"]["uid"]


async def test_label_off_and_on_again(both_ec2: AWSEnv) -> None:
    env = both_ec2
    async with running_controller(env.api, controller_config(env.world)) as controller:
        names, uid = await _start(env, controller)
        for _ in range(ROUNDS):
            started = time.monotonic()
            await label_node(env.api, names[0], {"test": None})
            await until(lambda: _none_for(env, uid, names[0]), within=30)
            before = _creates(env.realism)
            await label_node(env.api, names[0], {"test": env.unique})
            await _converged(env, since=started)
            assert _creates(env.realism) - before == len(SUBNETS)
            _one_per_slot(env, uid, names)


async def test_subnet_out_and_in_again(both_ec2: AWSEnv) -> None:
    env = both_ec2
    custom = client.CustomObjectsApi(env.api)
    second = env.world.subnet(SUBNETS[1]).id
    async with running_controller(env.api, controller_config(env.world)) as controller:
        names, uid = await _start(env, controller)
        for _ in range(ROUNDS):
            started = time.monotonic()
            spec = nodeeni_spec(env.unique, env.world, SUBNETS[0])
            await merge_patch_nodeeni(custom, env.unique, {"spec": spec})
            await until(
                lambda: all(e["SubnetId"] != second for e in enis_of(env.world, uid)), within=30
            )
            before = _creates(env.realism)
            spec = nodeeni_spec(env.unique, env.world, *SUBNETS)
            await merge_patch_nodeeni(custom, env.unique, {"spec": spec})
            await _converged(env, since=started)
            assert _creates(env.realism) - before == len(names)
            _one_per_slot(env, uid, names)


async def test_selector_edited_and_reverted(both_ec2: AWSEnv) -> None:
    env = both_ec2
    custom = client.CustomObjectsApi(env.api)
    async with running_controller(env.api, controller_config(env.world)) as controller:
        names, uid = await _start(env, controller)
        for _ in range(ROUNDS):
            started = time.monotonic()
            selector = {"nodeSelector": {"test": f"{env.unique}-nowhere"}}
            await merge_patch_nodeeni(custom, env.unique, {"spec": selector})
            await until(lambda: not enis_of(env.world, uid), within=30)
            before = _creates(env.realism)
            selector = {"nodeSelector": {"test": env.unique}}
            await merge_patch_nodeeni(custom, env.unique, {"spec": selector})
            await _converged(env, since=started)
            assert _creates(env.realism) - before == 2 * len(SUBNETS)
            _one_per_slot(env, uid, names)


async def test_nodeeni_deleted_and_created_again_under_the_same_name(both_ec2: AWSEnv) -> None:
    env = both_ec2
    async with running_controller(env.api, controller_config(env.world)) as controller:
        names, uid = await _start(env, controller)
        for _ in range(ROUNDS):
            started = time.monotonic()
            await delete_nodeeni(env.nodeenis, env.unique)
            await wait_gone(env.api, env.unique, within=60)
            assert enis_of(env.world, uid) == []
            before = _creates(env.realism)
            created = await env.nodeenis.create(
                env.unique, nodeeni_spec(env.unique, env.world, *SUBNETS)
            )
            uid = created["metadata"]["uid"]
            await _converged(env, since=started)
            assert _creates(env.realism) - before == 2 * len(SUBNETS)
            _one_per_slot(env, uid, names)


def _slot_holds(env: AWSEnv, uid: str, slot: tuple[str, str], enis: list[str]) -> bool:
    return attached_by_slot(env.world, uid).get(slot, []) == enis


def _replaced(env: AWSEnv, uid: str, slot: tuple[str, str], victim: str) -> bool:
    held = attached_by_slot(env.world, uid).get(slot, [])
    return len(held) == 1 and held != [victim]


def _detach_by_hand(env: AWSEnv, eni_id: str, *, force: bool = False) -> None:
    ec2 = ec2_client(env.world.endpoint)
    (eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
    ec2.detach_network_interface(AttachmentId=eni["Attachment"]["AttachmentId"], Force=force)


async def test_an_eni_deleted_by_hand_is_replaced_once(both_ec2: AWSEnv) -> None:
    env = both_ec2
    config = controller_config(env.world, reconcile_period_seconds=RESYNC_SECONDS)
    async with running_controller(env.api, config) as controller:
        names, uid = await _start(env, controller)
        slot = (names[0], env.world.subnet(SUBNETS[0]).id)
        for _ in range(ROUNDS):
            started = time.monotonic()
            (victim,) = attached_by_slot(env.world, uid)[slot]
            before = _creates(env.realism)
            _detach_by_hand(env, victim, force=True)
            ec2_client(env.world.endpoint).delete_network_interface(NetworkInterfaceId=victim)
            await until(functools.partial(_replaced, env, uid, slot, victim), within=30)
            (replacement,) = attached_by_slot(env.world, uid)[slot]
            # the next round deletes an ENI the status has listed: one deleted before
            # any status listed it costs a ClientToken replay too (3 creates in all,
            # tests/unit/test_slot_retries.py), which this count is not about
            await wait_for_nodeeni(env.api, env.unique, _listing(replacement), within=30)
            await _converged(env, since=started)
            assert _creates(env.realism) - before == 1
            _one_per_slot(env, uid, names)


async def test_an_eni_detached_by_hand_is_attached_again_not_replaced(both_ec2: AWSEnv) -> None:
    env = both_ec2
    config = controller_config(env.world, reconcile_period_seconds=RESYNC_SECONDS)
    async with running_controller(env.api, config) as controller:
        names, uid = await _start(env, controller)
        before = _creates(env.realism)
        slot = (names[0], env.world.subnet(SUBNETS[0]).id)
        for _ in range(ROUNDS):
            started = time.monotonic()
            (victim,) = attached_by_slot(env.world, uid)[slot]
            _detach_by_hand(env, victim)
            await until(functools.partial(_slot_holds, env, uid, slot, []), within=30)
            await until(functools.partial(_slot_holds, env, uid, slot, [victim]), within=30)
            await _converged(env, since=started)
            _one_per_slot(env, uid, names)
        assert _creates(env.realism) == before


async def test_a_node_deleted_and_created_again_on_a_new_instance(both_ec2: AWSEnv) -> None:
    env = both_ec2
    core = client.CoreV1Api(env.api)
    async with running_controller(env.api, controller_config(env.world)) as controller:
        names, uid = await _start(env, controller)
        for _ in range(ROUNDS):
            started = time.monotonic()
            await core.delete_node(names[0])
            await until(lambda: _none_for(env, uid, names[0]), within=30)
            before = _creates(env.realism)
            instance = launch_instance(env.world.endpoint, az=AZ_A, instance_type="m5.large")
            await env.nodes.create(name=names[0], instance=instance, labels={"test": env.unique})
            await _converged(env, since=started)
            assert _creates(env.realism) - before == len(SUBNETS)
            _one_per_slot(env, uid, names)
            tagged = {
                t["Value"]
                for e in enis_of(env.world, uid)
                for t in e["TagSet"]
                if t["Key"] == "InstanceID"
            }
            assert instance.id in tagged


async def test_a_label_flipped_back_during_a_slow_detach(both_ec2: AWSEnv) -> None:
    """The cleanup is called off, not fought: at most one detach per ENI, and with
    the realism layer's slow detach the same ENIs come back (no create, no delete)."""
    env = both_ec2
    slow = env.aws_rules
    if slow:
        env.realism.configure(detach_latency=3.0)
    async with running_controller(env.api, controller_config(env.world)) as controller:
        names, uid = await _start(env, controller)
        mine = [
            e
            for (node, _), enis in attached_by_slot(env.world, uid).items()
            if node == names[0]
            for e in enis
        ]
        before = env.realism.calls()
        await label_node(env.api, names[0], {"test": None})
        await until(
            lambda: (
                env.realism.calls().get("DetachNetworkInterface", 0)
                - before.get("DetachNetworkInterface", 0)
                >= len(mine)
            ),
            within=30,
        )
        await label_node(env.api, names[0], {"test": env.unique})
        await wait_for_nodeeni(env.api, env.unique, _ready_with(4), within=60)
        _one_per_slot(env, uid, names)
        after = env.realism.calls()
    detaches = after.get("DetachNetworkInterface", 0) - before.get("DetachNetworkInterface", 0)
    assert detaches == len(mine)
    if slow:
        assert after.get("DeleteNetworkInterface", 0) == before.get("DeleteNetworkInterface", 0)
        assert after.get("CreateNetworkInterface", 0) == before.get("CreateNetworkInterface", 0)
        back = [
            e
            for (node, _), enis in attached_by_slot(env.world, uid).items()
            if node == names[0]
            for e in enis
        ]
        assert sorted(back) == sorted(mine)

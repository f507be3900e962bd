"""The controller's JSON log, read as an operator's log pipeline would: every line
parses, every line about an ENI names its NodeENI, node, ENI and instance, each
ENI's lifecycle is one line per step (created, attached, detached, deleted),
and no credential ever appears. The cleanup's steps are Events on the NodeENI
too (ENIDetached, ENIDeleted), in the real API server."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from eni_controller.kube.events import EVENTS_NAMESPACE
from tests.harness.controller import AWSEnv, is_ready, spawn_controller, wait_for_nodeeni
from tests.harness.ec2world import AZ_A
from tests.harness.fleet import enis_of, make_nodes, nodeeni_spec, wait_gone
from tests.harness.waiting import until_async

OBJECT_FIELDS = ("nodeeni", "node", "eni_id", "instance_id")
# Lines about one ENI on one node: each must carry all of OBJECT_FIELDS.
LIFECYCLE = ("ENI created", "ENI attached", "ENI detached", "ENI deleted")
ENI_EVENTS = ("slot not done yet", "ENI handed to cleanup", *LIFECYCLE)


async def _logged(path: Path, text: str, *, within: float, times: int = 1) -> None:
    async with asyncio.timeout(within):
        while True:  # a file written by another process: polling is all there is
            if (await asyncio.to_thread(path.read_text)).count(text) >= times:
                return
            await asyncio.sleep(0.2)


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # a line that is not JSON fails here


async def test_log_lines_name_their_objects_and_never_a_secret(
    aws_env: AWSEnv, kubeconfig: Path, tmp_path: Path
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    secret = f"s3cr3t-{unique}-do-not-log"
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=2, instance_type="c5.xlarge")
    # DeleteOnTermination cannot be set: every slot logs retries with its ENI known
    realism.configure(deny_actions=["ModifyNetworkInterfaceAttribute"])
    proc = spawn_controller(
        ec2_world,
        kubeconfig,
        state_dir=tmp_path,
        ENABLE_LEADER_ELECTION="false",
        AWS_SECRET_ACCESS_KEY=secret,
        RECONCILE_PERIOD="1s",
    )
    try:
        created = await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
        uid = created["metadata"]["uid"]
        await _logged(tmp_path / "controller.log", "slot not done yet", within=30)
        realism.configure(deny_actions=[])
        await wait_for_nodeeni(
            kube_api, unique, lambda o: is_ready(o) and o["status"]["attachedCount"] == 2
        )
        enis = {e["NetworkInterfaceId"] for e in enis_of(ec2_world, uid)}
        await nodeenis.cleanup()
        await wait_gone(kube_api, unique, within=60)
        # the finalizer can go as soon as EC2 shows the ENIs deleted, a moment
        # before the cleanup worker has read the delete's answer and logged it
        await _logged(tmp_path / "controller.log", '"ENI deleted"', within=10, times=2)
        core = client.CoreV1Api(kube_api)
        events: list[Any] = []

        async def cleanup_events_written() -> bool:  # by the recorder's task, a moment after
            found = await core.list_namespaced_event(
                EVENTS_NAMESPACE, field_selector=f"involvedObject.uid={uid}"
            )
            events[:] = found.items
            return {e.reason for e in events} >= {"ENIDetached", "ENIDeleted"}

        await until_async(cleanup_events_written, within=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)

    lines = _read_json_lines(tmp_path / "controller.log")
    assert all({"event", "level", "timestamp"} <= set(line) for line in lines)
    # NodeENIs other tests left behind on the shared API server may be cleaned up
    # by this controller too; the assertions are about this test's NodeENI.
    about_enis = [
        line for line in lines if line["event"] in ENI_EVENTS and line.get("nodeeni") == unique
    ]
    missing = [
        (line["event"], [f for f in OBJECT_FIELDS if not line.get(f)]) for line in about_enis
    ]
    assert [m for m in missing if m[1]] == []
    assert len(enis) == 2
    for step in LIFECYCLE:  # one line per step and ENI, in order (an ENI never replayed)
        assert sorted(line["eni_id"] for line in about_enis if line["event"] == step) == sorted(
            enis
        ), step
    for eni_id in enis:
        steps = [line["event"] for line in about_enis if line.get("eni_id") == eni_id]
        assert [s for s in steps if s in LIFECYCLE] == list(LIFECYCLE)
    by_reason = {
        reason: sorted(e.message for e in events if e.reason == reason)
        for reason in ("ENIDetached", "ENIDeleted")
    }
    nodes_of = {line["eni_id"]: line["node"] for line in about_enis}
    assert by_reason == {
        "ENIDetached": sorted(f"detached {e} from node {nodes_of[e]}" for e in enis),
        "ENIDeleted": sorted(f"deleted {e}" for e in enis),
    }
    assert all(e.type == "Normal" for e in events if e.reason in by_reason)
    retried = [line for line in about_enis if line["event"] == "slot not done yet"]
    assert {line["eni_id"] for line in retried} <= enis
    about_ours = [line for line in lines if line.get("eni_id") in enis]
    assert {line.get("nodeeni") for line in about_ours} == {unique}
    assert secret not in (tmp_path / "controller.log").read_text()

"""SIGTERM in the middle of a rollout: the controller, as its own process,
exits within the grace period, and a new one converges with no duplicate and
no leaked ENI."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from tests.harness.controller import AWSEnv, is_ready, spawn_controller, wait_for_nodeeni
from tests.harness.ec2world import AZ_A
from tests.harness.fleet import enis_of, make_nodes, nodeeni_spec

GRACE_SECONDS = 30  # Kubernetes' default terminationGracePeriodSeconds


async def test_sigterm_mid_rollout_then_restart_converges_without_duplicates(
    aws_env: AWSEnv, kubeconfig: Path, tmp_path: Path
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    realism.configure(attach_latency=0.3)
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=10, instance_type="c5.xlarge")
    first = spawn_controller(ec2_world, kubeconfig, state_dir=tmp_path, name="first")
    second = None
    try:
        created = await nodeenis.create(
            unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-a-2", "nodes-a")
        )
        uid = created["metadata"]["uid"]
        async with asyncio.timeout(60):  # mid-rollout: some ENIs made, not all
            while True:
                if len(enis_of(ec2_world, uid)) >= 5:
                    break
                await asyncio.sleep(0.1)
        assert len(enis_of(ec2_world, uid)) < 30
        stopping = time.monotonic()
        first.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(first.wait, GRACE_SECONDS)
        stopped_in = time.monotonic() - stopping
        second = spawn_controller(ec2_world, kubeconfig, state_dir=tmp_path, name="second")
        ready = await wait_for_nodeeni(
            kube_api,
            unique,
            lambda o: is_ready(o) and o["status"]["attachedCount"] == 30,
            within=120,
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert exit_code == 0
    assert stopped_in < GRACE_SECONDS
    enis = enis_of(ec2_world, uid)
    assert len(enis) == 30  # one per slot: nothing duplicated, nothing leaked
    assert {e["NetworkInterfaceId"] for e in enis} == {
        a["eniID"] for a in ready["status"]["attachments"]
    }
    assert all(e["Status"] == "in-use" for e in enis)
    print(f"SIGTERM mid-rollout: exited in {stopped_in:.2f}s")

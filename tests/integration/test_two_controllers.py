"""Two controller processes against the real API server: exactly one acts;
kill -9 the leader and the other takes over within the lease duration,
converges the pending work, and no ENI is created twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.harness.controller import AWSEnv, is_ready, spawn_controller, wait_for_nodeeni
from tests.harness.ec2world import AZ_A
from tests.harness.fleet import enis_of, make_nodes, nodeeni_spec
from tests.harness.procs import free_port

LEASE = {
    "LEADER_ELECTION_LEASE_DURATION": "3s",
    "LEADER_ELECTION_RENEW_DEADLINE": "2s",
    "LEADER_ELECTION_RETRY_PERIOD": "500ms",
}


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "eni_controller_leader":
                values["leader"] = sample.value
            if (
                sample.name == "eni_controller_aws_api_calls_total"
                and sample.labels.get("action") == "CreateNetworkInterface"
            ):
                values["creates"] = values.get("creates", 0) + sample.value
    return values


async def test_one_leader_acts_and_a_kill_hands_over(
    aws_env: AWSEnv, kubeconfig: Path, tmp_path: Path
) -> None:
    kube_api, nodes, nodeenis, ec2_world, realism, unique = aws_env
    realism.configure(attach_latency=0.3)
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=4)
    ports = {name: free_port() for name in "ab"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, port in ports.items():
            procs[name] = spawn_controller(
                ec2_world,
                kubeconfig,
                state_dir=tmp_path,
                name=name,
                METRICS_PORT=str(port),
                **LEASE,
            )
        async with asyncio.timeout(30):
            while True:
                try:
                    leaders = {n: _scrape(p).get("leader", 0) for n, p in ports.items()}
                except OSError:
                    leaders = {}
                if sum(leaders.values()) == 1:
                    break
                await asyncio.sleep(0.2)
        leader = next(n for n, v in leaders.items() if v == 1)
        standby = "b" if leader == "a" else "a"
        created = await nodeenis.create(
            unique, nodeeni_spec(unique, ec2_world, "multus-a", "multus-a-2")
        )
        uid = created["metadata"]["uid"]
        async with asyncio.timeout(30):
            while True:
                if enis_of(ec2_world, uid):
                    break
                await asyncio.sleep(0.05)
        assert _scrape(ports[standby]).get("creates", 0) == 0  # the standby never acts
        killed = time.monotonic()
        os.kill(procs[leader].pid, signal.SIGKILL)
        procs[leader].wait(timeout=10)
        ready = await wait_for_nodeeni(
            kube_api, unique, lambda o: is_ready(o) and o["status"]["attachedCount"] == 8, within=60
        )
        took_over = time.monotonic() - killed
        assert _scrape(ports[standby])["leader"] == 1
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    enis = enis_of(ec2_world, uid)
    assert len(enis) == 8  # one per (node, subnet): nothing created twice
    assert {e["NetworkInterfaceId"] for e in enis} == {
        a["eniID"] for a in ready["status"]["attachments"]
    }
    print(f"kill -9 of the leader: converged {took_over:.1f}s later (lease 3s)")

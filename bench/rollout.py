"""Benchmark: time from applying a NodeENI to Ready, and EC2 calls per ENI.

The controller runs as its own process (`eni-controller run`) against the real
local API server and the moto server with AWS rules on. N nodes (all in one
AZ) x S subnets; the EC2 request counters are read from the realism layer
right before the apply and right after Ready.

    python -m bench.rollout [--nodes 3] [--subnets 2] [--attach-latency 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness.apiserver import LocalAPIServer
from tests.harness.controller import spawn_controller
from tests.harness.demo import wait_ready
from tests.harness.ec2world import AZ_A, ec2_client, launch_instance, seed_world
from tests.harness.kube import (
    NodeFactory,
    api_client_from_kubeconfig,
    create_nodeeni,
    install_crd,
)
from tests.harness.motoserver import MotoServer
from tests.harness.procs import stop_pid_file
from tests.harness.realism.control import RealismControl

SUBNETS_IN_AZ_A = ("multus-a", "multus-a-2", "nodes-a")


async def run(state: Path, *, nodes: int, subnets: int, attach_latency: float) -> dict[str, Any]:
    api_server, moto = LocalAPIServer(state / "api"), MotoServer(state / "moto")
    pid = state / "controller.pid"
    try:
        endpoint = api_server.start()
        world = seed_world(moto.start())
        realism = RealismControl(world.endpoint)
        realism.aws_rules()
        realism.configure(attach_latency=attach_latency)
        api = await api_client_from_kubeconfig(endpoint.kubeconfig)
        try:
            await install_crd(api)
            factory = NodeFactory(api)
            for i in range(nodes):
                instance = launch_instance(world.endpoint, az=AZ_A, instance_type="c5.4xlarge")
                await factory.create(name=f"node-{i}", instance=instance, labels={"ng": "bench"})
            spawn_controller(world, endpoint.kubeconfig, state_dir=state)
            await asyncio.sleep(2)  # let the controller start and sync
            realism.reset()
            realism.aws_rules()
            realism.configure(attach_latency=attach_latency)
            spec = {
                "nodeSelector": {"ng": "bench"},
                "subnetIDs": [world.subnet(s).id for s in SUBNETS_IN_AZ_A[:subnets]],
                "securityGroupIDs": [world.security_group("multus-sg").id],
            }
            start = time.perf_counter()
            await create_nodeeni(api, "bench", spec)
            ready = await wait_ready(api, "bench", within=600)
            seconds = time.perf_counter() - start
        finally:
            await api.close()
        calls = realism.calls()
        enis = ready["status"]["attachedCount"]
        in_ec2 = len(
            ec2_client(world.endpoint).describe_network_interfaces(
                Filters=[{"Name": "tag:NodeENI", "Values": ["bench"]}]
            )["NetworkInterfaces"]
        )
        return {
            "nodes": nodes,
            "subnets": subnets,
            "attach_latency_seconds": attach_latency,
            "enis_attached": enis,
            "enis_in_ec2": in_ec2,
            "apply_to_ready_seconds": round(seconds, 3),
            "ec2_calls": calls,
            "ec2_calls_per_eni": {a: round(n / enis, 2) for a, n in sorted(calls.items())},
        }
    finally:
        stop_pid_file(pid)
        moto.stop()
        api_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--subnets", type=int, default=2, choices=[1, 2, 3])
    parser.add_argument("--attach-latency", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/rollout.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        result = asyncio.run(
            run(
                Path(state),
                nodes=args.nodes,
                subnets=args.subnets,
                attach_latency=args.attach_latency,
            )
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

"""`make demo`: the whole thing on one machine, in under a minute.

Starts a real kube-apiserver + etcd and the moto EC2 server (AWS rules on),
seeds a VPC with instances and registers matching Nodes, runs the controller
as its own process (`eni-controller run`), applies a sample NodeENI and prints
the attachments it made. No node agent runs (the Nodes are API objects only),
so the INTERFACE column shows "-". Then it keeps everything running for you to poke at
(`source <state>/env`), until Ctrl-C stops all it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from eni_controller import model
from eni_controller.statusview import describe
from tests.harness.apiserver import LocalAPIServer
from tests.harness.controller import spawn_controller
from tests.harness.ec2world import AZ_A, AZ_B, seed_world
from tests.harness.kube import (
    NodeFactory,
    api_client_from_kubeconfig,
    create_nodeeni,
    install_crd,
)
from tests.harness.motoserver import MotoServer
from tests.harness.procs import stop_pid_file
from tests.harness.realism.control import RealismControl

SAMPLE = "multus-demo"
SAMPLE_SPEC: dict[str, Any] = {
    "nodeSelector": {"ng": "multus"},
    "subnetNames": ["multus-a", "multus-b"],
    "securityGroupNames": ["multus-sg"],
    "deviceIndex": 1,
    "mtu": 9001,
}


async def wait_ready(api: client.ApiClient, name: str, *, within: float) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    async with asyncio.timeout(within):
        while True:
            obj: dict[str, Any] = await custom.get_cluster_custom_object(
                model.GROUP, model.VERSION, model.PLURAL, name
            )
            conditions = (obj.get("status") or {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return obj
            await asyncio.sleep(0.25)


async def demo(state: Path, *, once: bool) -> int:
    api_server = LocalAPIServer(state / "apiserver")
    moto = MotoServer(state / "moto")
    controller_pid = state / "controller.pid"
    try:
        endpoint = api_server.start()
        world = seed_world(moto.start())
        RealismControl(world.endpoint).aws_rules()
        print(f"API server {endpoint.url}, EC2 (moto) {world.endpoint}", flush=True)
        api = await api_client_from_kubeconfig(endpoint.kubeconfig)
        try:
            await install_crd(api)
            nodes = NodeFactory(api)
            for instance in (*world.instances_in(AZ_A)[:2], world.instances_in(AZ_B)[0]):
                name = f"ip-{instance.id[2:10]}.ec2.internal"
                await nodes.create(name=name, instance=instance, labels={"ng": "multus"})
            print(f"{len(world.instances)} EC2 instances, 3 Nodes labelled ng=multus", flush=True)
            spawn_controller(world, endpoint.kubeconfig, state_dir=state)
            await create_nodeeni(api, SAMPLE, SAMPLE_SPEC)
            print(f"applied NodeENI {SAMPLE}: {SAMPLE_SPEC}\n", flush=True)
            ready = await wait_ready(api, SAMPLE, within=60)
            print(describe(ready), flush=True)
        finally:
            await api.close()
        (state / "env").write_text(
            f"export KUBECONFIG={endpoint.kubeconfig}\nexport AWS_ENDPOINT_URL={world.endpoint}\n"
        )
        if not once:
            print(f"\nrunning; controller log: {state / 'controller.log'}; Ctrl-C stops everything")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        return 0
    finally:
        stop_pid_file(controller_pid)
        moto.stop()
        api_server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="exit after printing the attachments")
    parser.add_argument("--state-dir", type=Path, help="keep state (logs, kubeconfig) here")
    args = parser.parse_args(argv)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="eni-demo-"))
    try:
        return asyncio.run(demo(state, once=args.once))
    finally:
        if args.state_dir is None:
            with contextlib.suppress(OSError):
                shutil.rmtree(state)


if __name__ == "__main__":
    sys.exit(main())

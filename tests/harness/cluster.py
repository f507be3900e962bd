"""`make cluster` / `make cluster-down`: the test world, for manual use.

Starts the same kube-apiserver + etcd and moto server the tests use, installs
the CRD and seeds the EC2 world, then leaves them running in the background
and prints how to reach them. The moto server has the realism layer's AWS
rules on. State (pids, logs, kubeconfig) lives in one
directory so `down` can stop exactly what `up` started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from tests.harness.apiserver import LocalAPIServer
from tests.harness.ec2world import seed_world
from tests.harness.kube import api_client_from_kubeconfig, install_crd
from tests.harness.motoserver import MotoServer
from tests.harness.realism.control import RealismControl

DEFAULT_STATE_DIR = Path(os.environ.get("ENI_CLUSTER_DIR", ".cluster"))


def up(state_dir: Path) -> int:
    env_file = state_dir / "env"
    if env_file.exists():
        print(f"already up (state in {state_dir}); `make cluster-down` first", file=sys.stderr)
        print(env_file.read_text(), end="")
        return 0
    api_server = LocalAPIServer(state_dir / "apiserver")
    moto = MotoServer(state_dir / "moto")
    try:
        endpoint = api_server.start()
        asyncio.run(_install_crd(endpoint.kubeconfig))
        ec2_endpoint = moto.start()
        world = seed_world(ec2_endpoint)
        # EC2's rules, as in `make demo` (plain moto, e.g., ignores DeleteOnTermination)
        RealismControl(ec2_endpoint).aws_rules()
    except BaseException:
        api_server.stop()
        moto.stop()
        raise
    (state_dir / "world.json").write_text(json.dumps(asdict(world), indent=2))
    env_file.write_text(
        f"export KUBECONFIG={endpoint.kubeconfig.resolve()}\n"
        f"export AWS_ENDPOINT_URL={ec2_endpoint}\n"
        f"export AWS_REGION={world.region}\n"
        "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\n"
        f"export VPC_ID={world.vpc_id}\n"
    )
    print(f"kubeconfig:   {endpoint.kubeconfig.resolve()}")
    print(f"EC2 endpoint: {ec2_endpoint}")
    print(f"seeded world: {(state_dir / 'world.json').resolve()}")
    print(f"use it:       source {env_file.resolve()}")
    return 0


async def _install_crd(kubeconfig: Path) -> None:
    api = await api_client_from_kubeconfig(kubeconfig)
    try:
        await install_crd(api)
    finally:
        await api.close()


def down(state_dir: Path) -> int:
    LocalAPIServer(state_dir / "apiserver").stop()
    MotoServer(state_dir / "moto").stop()
    shutil.rmtree(state_dir, ignore_errors=True)
    print(f"stopped the cluster and removed {state_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.cluster")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    return up(args.state_dir) if args.action == "up" else down(args.state_dir)


if __name__ == "__main__":
    sys.exit(main())

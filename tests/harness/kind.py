"""EC2 side of `make kind-up` / `make kind-demo`: moto instances that are the kind nodes.

The controller only acts on Nodes whose providerID is an EC2 one
(`aws:///<az>/i-...`), and a Node's providerID cannot be changed once set. So
the order is: seed the moto container (the same world the tests use), then
write a kind config that gives each node's kubelet the providerID of one
seeded instance (kubeadm patch `provider-id`), then create the cluster. The
workers carry the label the sample NodeENI selects (`ng=multus`) and sit in
both AZs, so the demo attaches ENIs from both multus subnets.

    python -m tests.harness.kind world --endpoint http://127.0.0.1:5055 --out .kind
    python -m tests.harness.kind enis --endpoint http://127.0.0.1:5055
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from tests.harness.ec2world import AZ_A, AZ_B, Instance, World, ec2_client, seed_world

WORKER_LABELS = {"ng": "multus"}
MANAGED_BY_TAG = "kubernetes.io/cluster/managed-by"


def wait_for_moto(endpoint: str, *, timeout: float = 60.0) -> None:
    """Return once the moto server answers an EC2 call; raise TimeoutError after `timeout`."""
    ec2 = ec2_client(endpoint)
    deadline = time.monotonic() + timeout
    while True:
        try:
            ec2.describe_vpcs()
            return
        except (BotoCoreError, ClientError) as err:
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto at {endpoint} not answering: {err}") from err
            time.sleep(0.5)


def node_instances(world: World, *, workers: int) -> list[Instance]:
    """One instance per kind node: the control plane first, then workers alternating AZs."""
    by_az = {az: list(world.instances_in(az)) for az in (AZ_A, AZ_B)}
    order = [AZ_A] + [(AZ_A, AZ_B)[i % 2] for i in range(workers)]
    picked: list[Instance] = []
    for az in order:
        if not by_az[az]:
            raise ValueError(f"not enough seeded instances in {az} for {workers} workers")
        picked.append(by_az[az].pop(0))
    return picked


def _kubelet_patch(configuration: str, *, provider_id: str, labels: dict[str, str]) -> str:
    args: dict[str, str] = {"provider-id": provider_id}
    if labels:
        args["node-labels"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    # kind generates kubeadm v1beta3 configuration and merges patches by kind.
    patch = {"kind": configuration, "nodeRegistration": {"kubeletExtraArgs": args}}
    return yaml.safe_dump(patch, sort_keys=False)


def kind_config(instances: Sequence[Instance], *, node_image: str | None = None) -> dict[str, Any]:
    """A kind Cluster config: node 0 is the control plane, the rest are labelled workers."""
    nodes: list[dict[str, Any]] = []
    for index, instance in enumerate(instances):
        control_plane = index == 0
        node: dict[str, Any] = {
            "role": "control-plane" if control_plane else "worker",
            "kubeadmConfigPatches": [
                _kubelet_patch(
                    "InitConfiguration" if control_plane else "JoinConfiguration",
                    provider_id=instance.provider_id,
                    labels={} if control_plane else WORKER_LABELS,
                )
            ],
        }
        if node_image:
            node["image"] = node_image
        nodes.append(node)
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": nodes}


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the kubeadm patches) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str)


def dump_kind_config(config: dict[str, Any]) -> str:
    return yaml.dump(config, Dumper=_BlockDumper, sort_keys=False)


def _world(args: argparse.Namespace) -> int:
    wait_for_moto(args.endpoint)
    world = seed_world(args.endpoint)
    instances = node_instances(world, workers=args.workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = kind_config(instances, node_image=args.node_image or None)
    (out / "kind-config.yaml").write_text(dump_kind_config(config))
    (out / "world.json").write_text(
        json.dumps(
            {
                "vpcId": world.vpc_id,
                "nodes": [{"instanceId": i.id, "az": i.az} for i in instances],
                "subnets": {s.name: s.id for s in world.subnets},
            },
            indent=2,
        )
    )
    print(f"seeded VPC {world.vpc_id}; kind nodes are instances:")
    for instance in instances:
        print(f"  {instance.provider_id}")
    print(f"wrote {out / 'kind-config.yaml'}")
    return 0


def _enis(args: argparse.Namespace) -> int:
    ec2 = ec2_client(args.endpoint)
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "tag-key", "Values": [MANAGED_BY_TAG]}]
    )["NetworkInterfaces"]
    print(f"{'ENI':<22} {'INSTANCE':<20} {'INDEX':<5} {'SUBNET':<25} {'IP':<12} STATUS")
    for eni in sorted(found, key=lambda e: e.get("Attachment", {}).get("InstanceId", "")):
        attachment = eni.get("Attachment", {})
        print(
            f"{eni['NetworkInterfaceId']:<22} {attachment.get('InstanceId', '-'):<20} "
            f"{attachment.get('DeviceIndex', '-')!s:<5} {eni['SubnetId']:<25} "
            f"{eni.get('PrivateIpAddress', '-'):<12} {eni['Status']}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.kind", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    world = commands.add_parser("world", help="seed moto and write the kind config")
    world.add_argument("--endpoint", required=True, help="moto server as seen from this host")
    world.add_argument("--workers", type=int, default=2)
    world.add_argument("--out", default=".kind")
    world.add_argument("--node-image", default="", help="kindest/node image for every node")
    enis = commands.add_parser("enis", help="list the ENIs the controller made")
    enis.add_argument("--endpoint", required=True)
    args = parser.parse_args(argv)
    return _world(args) if args.command == "world" else _enis(args)


if __name__ == "__main__":
    sys.exit(main())

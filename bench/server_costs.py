"""What one EC2 call costs the test server, by kind: why describes weigh on the ratios.

moto answers one request at a time (one Python process, the realism layer's
lock), so during a scenario every describe the controller makes delays the
mutating calls queued behind it; the floor makes none. This script sets up
Large's shape (100 `c5.24xlarge` instances x 10 attached ENIs with the
controller's tags), then times each kind of call alone, best of five:

    python -m bench.server_costs [--instances 100] [--enis-per-instance 10]
                                 [--out bench/results/server_costs.json]

Printed and saved: milliseconds per call and the same in attach-call
equivalents. In EC2 itself describes are served beside mutating calls, not
in a queue with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig

from eni_controller.aws.ec2 import eni_tag_specifications
from eni_controller.reconcile import tags
from eni_controller.reconcile.cleanup import NOT_FREE_STATUSES
from eni_controller.spec import default_eni_description
from tests.harness.ec2world import AZ_A, FAKE_CREDENTIALS, ec2_client, launch_instance, seed_world
from tests.harness.motoserver import MotoServer
from tests.harness.realism.control import RealismControl

UID = "00000000-0000-4000-8000-000000000001"


async def _best(call: Callable[[], Awaitable[Any]], *, times: int = 5) -> float:
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        await call()
        best = min(best, time.perf_counter() - start)
    return best * 1000


async def measure(*, instances: int, enis_per_instance: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state:
        moto = MotoServer(Path(state) / "moto")
        try:
            world = seed_world(moto.start())
            RealismControl(world.endpoint).aws_rules()
            setup = ec2_client(world.endpoint)
            subnets = [
                setup.create_subnet(
                    VpcId=world.vpc_id, CidrBlock=f"10.0.{160 + 4 * i}.0/22", AvailabilityZone=AZ_A
                )["Subnet"]["SubnetId"]
                for i in range(enis_per_instance)
            ]
            ids = [
                launch_instance(world.endpoint, az=AZ_A, instance_type="c5.24xlarge").id
                for _ in range(instances)
            ]
            group = world.security_group("multus-sg").id
            async with get_session().create_client(
                "ec2",
                region_name=world.region,
                endpoint_url=world.endpoint,
                config=BotoConfig(retries={"total_max_attempts": 1}, max_pool_connections=16),
                **FAKE_CREDENTIALS,
            ) as ec2:
                attached = [
                    await _attached(ec2, instance_id, subnet_id, group, index)
                    for instance_id in ids
                    for index, subnet_id in enumerate(subnets, start=1)
                ]
                enis = [eni_id for eni_id, _ in attached]

                def describe_enis(**filters: list[str]) -> Callable[[], Awaitable[Any]]:
                    given = [{"Name": name, "Values": values} for name, values in filters.items()]
                    return lambda: ec2.describe_network_interfaces(Filters=given, MaxResults=1000)

                every_managed = describe_enis(
                    **{f"tag:{tags.MANAGED_BY_KEY}": [tags.MANAGED_BY_VALUE]}
                )
                # the cleanup pool's poll: parked ENIs by id, only those still in use
                poll = describe_enis(
                    **{"network-interface-id": enis[:50], "status": list(NOT_FREE_STATUSES)}
                )
                costs = {
                    f"DescribeNetworkInterfaces, all {len(enis)} managed": await _best(
                        every_managed
                    ),
                    "DescribeNetworkInterfaces, a detach poll of 50 ENIs still in use": await _best(
                        poll
                    ),
                }
                for _, attachment_id in attached[:50]:
                    await ec2.detach_network_interface(AttachmentId=attachment_id, Force=True)
                costs |= {
                    "DescribeNetworkInterfaces, a detach poll of 50 ENIs detached": await _best(
                        poll
                    ),
                    f"DescribeInstances, {instances} instances": await _best(
                        lambda: ec2.describe_instances(
                            Filters=[{"Name": "instance-id", "Values": ids}], MaxResults=1000
                        )
                    ),
                }
                costs["AttachNetworkInterface (one)"] = await _attach_cost(
                    ec2, ids[:5], subnets[0], group
                )
        finally:
            moto.stop()
    attach = costs["AttachNetworkInterface (one)"]
    return {
        "instances": instances,
        "enis": instances * enis_per_instance,
        "ms_per_call": {k: round(v, 1) for k, v in costs.items()},
        "attach_calls_equivalent": {k: round(v / attach, 1) for k, v in costs.items()},
    }


async def _attached(
    ec2: Any, instance_id: str, subnet_id: str, group: str, index: int
) -> tuple[str, str]:
    """A new ENI with the controller's tags, attached: (ENI id, attachment id)."""
    node = f"node-{instance_id}"
    made = tags.eni_tags(
        nodeeni="costs",
        uid=UID,
        node=node,
        instance_id=instance_id,
        subnet_id=subnet_id,
        cluster_name=None,
    )
    eni = await ec2.create_network_interface(
        SubnetId=subnet_id,
        Groups=[group],
        Description=default_eni_description(node),
        TagSpecifications=eni_tag_specifications(made),
    )
    eni_id: str = eni["NetworkInterface"]["NetworkInterfaceId"]
    attachment = await ec2.attach_network_interface(
        NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=index
    )
    return eni_id, attachment["AttachmentId"]


async def _attach_cost(ec2: Any, instance_ids: list[str], subnet_id: str, group: str) -> float:
    """Best of one attach per instance, of an ENI created beforehand (untimed)."""
    best = float("inf")
    for instance_id in instance_ids:
        created = await ec2.create_network_interface(SubnetId=subnet_id, Groups=[group])
        eni_id = created["NetworkInterface"]["NetworkInterfaceId"]
        start = time.perf_counter()
        await ec2.attach_network_interface(
            NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=14
        )
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--enis-per-instance", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results/server_costs.json"))
    args = parser.parse_args()
    result = asyncio.run(
        measure(instances=args.instances, enis_per_instance=args.enis_per_instance)
    )
    for kind, ms in result["ms_per_call"].items():
        print(f"{kind}: {ms:.1f} ms ({result['attach_calls_equivalent'][kind]:.1f} attaches)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

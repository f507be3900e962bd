"""Benchmark: N mutating EC2 calls issued at once against AWS-default throttling.

The realism layer throttles like EC2 (token buckets per action class). Two
clients make the same N CreateNetworkInterface calls at once:
  - paced: the controller's client, with its client-side buckets (the product's
    buckets, at EC2_BUDGET_SHARE=1: bench.neighbour measures the share);
  - unpaced baseline: the same client with the buckets opened wide, relying on
    retries alone (what a controller without pacing does).
Printed and saved: wall time, the bucket arithmetic's theoretical minimum, the
ratio, RequestLimitExceeded answers and EC2 requests by action.

    python -m bench.ec2_pacing [--calls 300] [--out bench/results/ec2_pacing.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from eni_controller.aws.ec2 import connect_ec2
from eni_controller.aws.ratelimit import AWS_DEFAULT_LIMITS, DEFAULT_LIMITS, BucketSpec, RateLimits
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import Config
from eni_controller.metrics import Metrics
from tests.harness.ec2world import FAKE_CREDENTIALS, World, seed_world
from tests.harness.motoserver import MotoServer
from tests.harness.realism.control import RealismControl

WIDE_OPEN = BucketSpec(capacity=1_000_000, refill_per_second=1_000_000)


async def _run(world: World, *, calls: int, limits: RateLimits) -> float:
    config = Config(
        aws_region=world.region,
        aws_endpoint_url=world.endpoint,
        ec2_rate_limits=limits,
        ec2_budget_share=1.0,  # the whole of `limits`: pacing's accuracy, not the share
    )
    # generous retries: the unpaced baseline must also finish, just slower
    retry = RetryPolicy(max_attempts=50, max_total_seconds=600)
    subnet = world.subnet("multus-a").id
    async with connect_ec2(config, metrics=Metrics(), retry=retry) as ec2:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                ec2.create_network_interface(
                    subnet_id=subnet,
                    security_group_ids=[],
                    description="bench",
                    tags={"Bench": "pacing"},
                    client_token=secrets.token_hex(16),
                )
                for _ in range(calls)
            )
        )
        return time.perf_counter() - start


def _scenario(
    world: World, realism: RealismControl, *, calls: int, client_limits: RateLimits
) -> dict[str, Any]:
    aws = AWS_DEFAULT_LIMITS
    realism.reset()
    realism.configure(
        throttle={
            "buckets": {
                "mutating": [aws.mutating.capacity, aws.mutating.refill_per_second],
                "describe": [aws.describe.capacity, aws.describe.refill_per_second],
            }
        }
    )
    seconds = asyncio.run(_run(world, calls=calls, limits=client_limits))
    theoretical = max(0.0, (calls - aws.mutating.capacity) / aws.mutating.refill_per_second)
    errors = realism.errors()
    return {
        "calls": calls,
        "seconds": round(seconds, 2),
        "theoretical_min_seconds": theoretical,
        "ratio_to_theoretical": round(seconds / theoretical, 3) if theoretical else None,
        "request_limit_exceeded": errors.get("RequestLimitExceeded", 0),
        "ec2_requests_by_action": realism.calls(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ec2_pacing.json"))
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    with tempfile.TemporaryDirectory() as state:
        server = MotoServer(Path(state))
        try:
            world = seed_world(server.start())
            realism = RealismControl(world.endpoint)
            results = {
                "paced": _scenario(world, realism, calls=args.calls, client_limits=DEFAULT_LIMITS),
                "unpaced_baseline": _scenario(
                    world,
                    realism,
                    calls=args.calls,
                    client_limits=RateLimits(describe=WIDE_OPEN, mutating=WIDE_OPEN),
                ),
            }
        finally:
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for name, figures in results.items():
        print(
            f"{name:17} {figures['calls']} calls in {figures['seconds']:.1f}s "
            f"(theoretical min {figures['theoretical_min_seconds']:.1f}s, "
            f"ratio {figures['ratio_to_theoretical']}), "
            f"RequestLimitExceeded={figures['request_limit_exceeded']}, "
            f"requests={figures['ec2_requests_by_action']}"
        )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

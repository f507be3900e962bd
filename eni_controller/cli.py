"""Command line: `eni-controller run|agent|check|iam-policy|version`.

`python -m eni_controller` runs the same. `run` is the controller, `agent` the
node agent (a DaemonSet, one per node).

The entry point turns configuration problems into one clear message and a
non-zero exit instead of a traceback, so a misconfigured Deployment says what
is wrong in its first log line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import structlog
from kubernetes_asyncio import client, config

from eni_controller import logs
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import Config, ConfigError

# The controller's modules (EC2 client, reconcilers, preflight) and the agent's
# (netlink) are imported by the command that runs them: the agent runs on every
# node, and neither process should carry the other's libraries (pyroute2 alone
# is some 20 MiB of RSS, aiobotocore some 10).
if TYPE_CHECKING:
    from eni_controller.agent.settings import AgentSettings

EXIT_CONFIG_ERROR = 2
# A preflight answers in seconds or says EC2 is unreachable; it does not wait a minute.
PREFLIGHT_RETRY = RetryPolicy(max_attempts=3, max_total_seconds=15)


def package_version() -> str:
    try:
        return version("aws-multi-eni-controller")
    except PackageNotFoundError:
        return "0+unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eni-controller",
        description="Attaches extra AWS ENIs to Kubernetes nodes as declared by NodeENI objects.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version")
    run = commands.add_parser("run", help="run the controller (configuration from environment)")
    run.add_argument("--log-format", choices=["json", "console"], help="default: console on a TTY")
    agent = commands.add_parser(
        "agent",
        help="run the node agent on this node (a DaemonSet; configuration from environment)",
    )
    check = commands.add_parser(
        "check",
        help="preflight: EC2 permissions (DryRun), region, CRD, RBAC; exit 1 on any failure",
    )
    for command in (run, agent, check):
        command.add_argument("--kubeconfig", help="default: in-cluster, then KUBECONFIG")
    agent.add_argument(
        "--log-format", choices=["json", "console"], help="default: console on a TTY"
    )
    iam = commands.add_parser(
        "iam-policy", help="print the IAM policy the controller needs, for one cluster (JSON)"
    )
    iam.add_argument("--cluster-name", required=True, help="CLUSTER_NAME of the controller")
    iam.add_argument("--vpc-id", required=True, help="the cluster VPC (VPC_ID)")
    iam.add_argument("--region", default="*", help="default: * (any)")
    iam.add_argument("--account-id", default="*", help="default: * (any)")
    iam.add_argument("--partition", default="aws", help="default: aws (aws-cn, aws-us-gov)")
    return parser


def _iam_policy(args: argparse.Namespace) -> int:
    from eni_controller.iam import PolicyInputError, render_policy

    try:
        policy = render_policy(
            cluster_name=args.cluster_name,
            vpc_id=args.vpc_id,
            region=args.region,
            account_id=args.account_id,
            partition=args.partition,
        )
    except PolicyInputError as err:
        print(f"eni-controller: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(json.dumps(policy, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(package_version())
        return 0
    if args.command == "iam-policy":
        return _iam_policy(args)  # needs no environment: run it anywhere
    if args.command == "agent":
        return _agent(args)
    try:
        settings = Config.from_env()
    except ConfigError as err:
        print(f"eni-controller: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.command == "check":
        logs.configure(level="WARNING")
        return asyncio.run(_check(settings, kubeconfig=args.kubeconfig))
    logs.configure(
        level=settings.log_level,
        console=None if args.log_format is None else args.log_format == "console",
    )
    return asyncio.run(_run(settings, kubeconfig=args.kubeconfig))


def _agent(args: argparse.Namespace) -> int:
    from eni_controller.agent.links import NamespaceMissing
    from eni_controller.agent.settings import AgentSettings

    try:
        settings = AgentSettings.from_env()
    except ConfigError as err:
        print(f"eni-controller: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    logs.configure(
        level=settings.log_level,
        console=None if args.log_format is None else args.log_format == "console",
    )
    try:
        return asyncio.run(_run_agent(settings, kubeconfig=args.kubeconfig))
    except NamespaceMissing as err:
        print(f"eni-controller: AGENT_NETNS={settings.netns}: {err.strerror}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


async def _run_agent(settings: AgentSettings, *, kubeconfig: str | None) -> int:
    from eni_controller.agent.service import run_agent

    api = await kube_client(kubeconfig)
    try:
        await run_agent(settings, api=api)
    finally:
        await api.close()
    return 0


async def kube_client(kubeconfig: str | None) -> client.ApiClient:
    """In-cluster configuration inside a pod, else the kubeconfig (flag, then KUBECONFIG)."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


async def _check(settings: Config, *, kubeconfig: str | None) -> int:
    from eni_controller.aws.ec2 import connect_ec2
    from eni_controller.kube.timeouts import with_request_timeout
    from eni_controller.metrics import Metrics
    from eni_controller.preflight.report import exit_code, render_table
    from eni_controller.preflight.runner import run_preflight

    api = await kube_client(kubeconfig)
    bounded = with_request_timeout(api, seconds=settings.kube_request_timeout_seconds)
    try:
        async with connect_ec2(
            settings, metrics=Metrics(), retry=PREFLIGHT_RETRY, read_timeout_seconds=10
        ) as ec2:
            findings = await run_preflight(config=settings, api=bounded, ec2=ec2)
    finally:
        await api.close()
    print(render_table(findings))
    return exit_code(findings)


async def _run(settings: Config, *, kubeconfig: str | None) -> int:
    from eni_controller.aws.ec2 import connect_ec2
    from eni_controller.controller import Controller
    from eni_controller.health import HealthServer
    from eni_controller.lifecycle import serve_until_signalled
    from eni_controller.metrics import Metrics

    log = structlog.get_logger("eni_controller")
    api = await kube_client(kubeconfig)
    metrics = Metrics()
    try:
        async with connect_ec2(settings, metrics=metrics) as ec2:
            controller = Controller(config=settings, api=api, ec2=ec2, metrics=metrics)
            health = HealthServer(
                registry=metrics.registry,
                liveness=controller.live,
                readiness=controller.ready,
                host=settings.bind_address,
                metrics_port=settings.metrics_port,
                probe_port=settings.health_probe_port,
            )
            log.info("controller starting", version=package_version(), region=settings.aws_region)
            await serve_until_signalled(controller.run(), health=health)
            log.info("controller stopped")
    finally:
        await api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

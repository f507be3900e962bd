"""Command line: `eni-controller run|agent|check|status|iam-policy|version`.

`run` is the controller, `agent` the node agent (a DaemonSet). Start-up errors
never end in a traceback: each is one line on stderr naming what is wrong, and
the exit code says which kind it is (EXIT_CODES, also in `--help`), so a script
can tell a typo from an outage.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import structlog
import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from eni_controller import logs, package_version
from eni_controller.aws import imds
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import SETTINGS, Config
from eni_controller.envvars import ConfigError, render_settings

# Each command imports its own stack: neither the controller nor the agent (on
# every node) carries the other's libraries (pyroute2 ~20 MiB RSS, aiobotocore ~10).
if TYPE_CHECKING:
    from eni_controller.agent.settings import AgentSettings

EXIT_RUNTIME_ERROR = 1  # also: `check` found a FAIL (preflight/report.py exit_code)
EXIT_USAGE_ERROR = 2  # argparse's own
EXIT_CONFIG_ERROR = 3
EXIT_CODES = f"""exit codes:
  0  success
  {EXIT_RUNTIME_ERROR}  runtime error (API server unreachable, ...); for check: a check FAILed
  {EXIT_USAGE_ERROR}  usage error (unknown command or flag)
  {EXIT_CONFIG_ERROR}  configuration error (bad environment variable, kubeconfig, no region)"""
# A preflight answers in seconds or says EC2 is unreachable; it does not wait a minute.
PREFLIGHT_RETRY = RetryPolicy(max_attempts=3, max_total_seconds=15)
KUBE_READ_BUFSIZE = 2**21  # bytes: what kubernetes_asyncio sizes for large watch events


class StartupError(Exception):
    """Start-up cannot go on; the message is the whole story, on one line."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _environment_help(table: str) -> str:
    return f"environment variables (name, default, meaning):\n{table}\n\n{EXIT_CODES}"


def _parser() -> argparse.ArgumentParser:
    from eni_controller.agent.settings import AGENT_SETTINGS, AgentSettings

    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="eni-controller",
        description="Attaches extra AWS ENIs to Kubernetes nodes as declared by NodeENI objects.",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=package_version())
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version")
    run = commands.add_parser(
        "run",
        help="run the controller (configuration from environment)",
        epilog=_environment_help(render_settings(SETTINGS, Config())),
        formatter_class=raw,
    )
    agent = commands.add_parser(
        "agent",
        help="run the node agent on this node (a DaemonSet; configuration from environment)",
        epilog=_environment_help(render_settings(AGENT_SETTINGS, AgentSettings())),
        formatter_class=raw,
    )
    check = commands.add_parser(
        "check",
        help="preflight: EC2 permissions (DryRun), region, CRD, RBAC; exit 1 on any failure",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    check.add_argument(
        "-o", "--output", choices=["table", "json"], default="table", help="default: table"
    )
    status = commands.add_parser(
        "status",
        help="print every NodeENI: conditions and attachments (node, ENI, device index, state)",
        epilog=EXIT_CODES,
        formatter_class=raw,
    )
    for command in (run, agent, check, status):
        command.add_argument("--kubeconfig", help="default: in-cluster, then KUBECONFIG")
    for command in (run, agent):
        command.add_argument(
            "--log-format", choices=["json", "console"], help="default: LOG_FORMAT, then json"
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
        return _fail(str(err), exit_code=EXIT_CONFIG_ERROR)
    print(json.dumps(policy, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(package_version())
        return 0
    if args.command == "iam-policy":
        return _iam_policy(args)  # needs no environment: run it anywhere
    try:
        return _command(args)
    except ConfigError as err:
        return _fail(err.one_line(), exit_code=EXIT_CONFIG_ERROR)
    except StartupError as err:
        return _fail(str(err), exit_code=err.exit_code)


def _fail(message: str, *, exit_code: int) -> int:
    print(f"eni-controller: {message}", file=sys.stderr)
    return exit_code


def _command(args: argparse.Namespace) -> int:
    if args.command == "agent":
        return _agent(args)
    if args.command == "status":
        logs.configure(level="warning", console=False)
        return asyncio.run(_status(kubeconfig=args.kubeconfig))
    settings = asyncio.run(with_region(Config.from_env(), env=os.environ))
    if args.command == "check":
        logs.configure(level="warning", console=settings.log_format == "console")
        return asyncio.run(_check(settings, kubeconfig=args.kubeconfig, output=args.output))
    logs.configure(
        level=settings.log_level,
        console=logs.choose_format(flag=args.log_format, setting=settings.log_format),
    )
    return asyncio.run(_run(settings, kubeconfig=args.kubeconfig))


async def with_region(settings: Config, *, env: Mapping[str, str]) -> Config:
    """`settings` with a region: the configured one, else IMDS's; else ConfigError."""
    if settings.aws_region is not None:
        return settings
    unset = "AWS_REGION: unset (and AWS_DEFAULT_REGION)"
    endpoint = imds.endpoint(env)
    if endpoint is None:
        raise ConfigError([f"{unset}, and {imds.DISABLED_VARIABLE}=true: set AWS_REGION"])
    try:
        region = await imds.region(endpoint=endpoint)
    except imds.RegionUnavailable as err:
        raise ConfigError(
            [f"{unset}, and the instance metadata service gave none ({err}): set AWS_REGION"]
        ) from None
    return dataclasses.replace(settings, aws_region=region)


def _agent(args: argparse.Namespace) -> int:
    from eni_controller.agent.links import NamespaceMissing
    from eni_controller.agent.settings import AgentSettings

    settings = AgentSettings.from_env()
    logs.configure(
        level=settings.log_level,
        console=logs.choose_format(flag=args.log_format, setting=settings.log_format),
    )
    try:
        return asyncio.run(_run_agent(settings, kubeconfig=args.kubeconfig))
    except NamespaceMissing as err:
        raise ConfigError([f"AGENT_NETNS={settings.netns}: {err.strerror}"]) from None


async def _run_agent(settings: AgentSettings, *, kubeconfig: str | None) -> int:
    from eni_controller.agent.service import run_agent

    api = await kube_client(kubeconfig)
    try:
        await reach_api_server(api, timeout_seconds=settings.kube_request_timeout_seconds)
        await run_agent(settings, api=api)
    finally:
        await api.close()
    return 0


def _kubeconfig_files(kubeconfig: str | None) -> list[str]:
    if kubeconfig is not None:
        return [kubeconfig]
    listed = os.environ.get("KUBECONFIG", "")
    return [p for p in listed.split(os.pathsep) if p] or [str(Path.home() / ".kube" / "config")]


def _any_file(paths: Sequence[str]) -> bool:  # sync: ruff's ASYNC240 keeps Path I/O out of async
    return any(Path(p).is_file() for p in paths)


async def kube_client(kubeconfig: str | None) -> client.ApiClient:
    """In-cluster configuration inside a pod, else the kubeconfig (flag, KUBECONFIG,
    ~/.kube/config); a missing or unreadable one is a StartupError."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException as err:
            raise StartupError(
                f"in-cluster configuration: {err}", exit_code=EXIT_CONFIG_ERROR
            ) from None
        return _api_client(configuration)
    files = _kubeconfig_files(kubeconfig)
    where = f"kubeconfig {os.pathsep.join(files)}"
    if not _any_file(files):
        raise StartupError(f"{where}: no such file", exit_code=EXIT_CONFIG_ERROR)
    try:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError) as err:
        # TypeError/ValueError: a kubeconfig that parses but has the wrong shape
        reason = " ".join(str(err).split()) or type(err).__name__
        raise StartupError(f"{where}: {reason}", exit_code=EXIT_CONFIG_ERROR) from None
    return _api_client(configuration)


def _api_client(configuration: client.Configuration) -> client.ApiClient:
    """An ApiClient whose session does not read the environment for every request.

    kubernetes_asyncio opens its aiohttp session with trust_env, so aiohttp reads
    the proxy variables and, in a worker thread, ~/.netrc for each request: about a
    fifth of a write's CPU. The API server's proxy is read from the environment here,
    once, as client-go's ProxyFromEnvironment does, unless the kubeconfig names one.
    """
    server = urllib.parse.urlsplit(str(configuration.host))
    if configuration.proxy is None and not urllib.request.proxy_bypass(server.hostname or ""):
        configuration.proxy = urllib.request.getproxies().get(server.scheme)
    api = client.ApiClient(configuration)
    session = api.rest_client.pool_manager
    # the same connector (limits, TLS), and the read buffer kubernetes_asyncio sizes
    # for large watch events; trust_env is off by default
    api.rest_client.pool_manager = aiohttp.ClientSession(
        connector=session.connector, read_bufsize=KUBE_READ_BUFSIZE
    )
    session.detach()  # its connector is the new session's now
    return api


async def reach_api_server(api: client.ApiClient, *, timeout_seconds: float) -> None:
    """One /version request: a server down or refusing our credentials stops start-up."""
    host = api.configuration.host
    try:
        async with asyncio.timeout(timeout_seconds):
            await client.VersionApi(api).get_code()
    except ApiException as err:
        code = EXIT_CONFIG_ERROR if err.status == 401 else EXIT_RUNTIME_ERROR
        raise StartupError(
            f"Kubernetes API server at {host} answered {err.status} {err.reason}", exit_code=code
        ) from None
    except TimeoutError:
        raise StartupError(
            f"Kubernetes API server at {host}: no answer within {timeout_seconds:g}s",
            exit_code=EXIT_RUNTIME_ERROR,
        ) from None
    except (aiohttp.ClientError, OSError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise StartupError(
            f"cannot reach the Kubernetes API server at {host}: {reason}",
            exit_code=EXIT_RUNTIME_ERROR,
        ) from None


async def _status(*, kubeconfig: str | None) -> int:
    from eni_controller.kube.resources import ResourceAPI
    from eni_controller.statusview import describe_all

    api = await kube_client(kubeconfig)
    try:
        await reach_api_server(api, timeout_seconds=30)
        try:
            nodeenis, _ = await ResourceAPI.nodeenis(api).list()
        except ApiException as err:
            raise StartupError(
                f"listing NodeENIs: {err.status} {err.reason}", exit_code=EXIT_RUNTIME_ERROR
            ) from None
    finally:
        await api.close()
    print(describe_all(nodeenis))
    return 0


async def _check(settings: Config, *, kubeconfig: str | None, output: str) -> int:
    from eni_controller.aws.ec2 import connect_ec2
    from eni_controller.kube.timeouts import with_request_timeout
    from eni_controller.metrics import Metrics
    from eni_controller.preflight.report import exit_code, render_json, render_table
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
    print(render_json(findings) if output == "json" else render_table(findings))
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
        await reach_api_server(api, timeout_seconds=settings.kube_request_timeout_seconds)
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

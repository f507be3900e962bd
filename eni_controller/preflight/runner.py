"""Runs every preflight check in order; a check that cannot run says so and the
others still run, so one table says everything that is wrong."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientError
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.lookup import Resolver
from eni_controller.config import Config
from eni_controller.kube.resources import ResourceAPI
from eni_controller.preflight import ec2 as ec2_checks
from eni_controller.preflight import kube as kube_checks
from eni_controller.preflight.report import Finding, Outcome
from eni_controller.reconcile.nodes import NodeView


async def _list(resource: ResourceAPI) -> list[dict[str, Any]] | None:
    """Every object, or None if they cannot be listed (the RBAC rows say why)."""
    try:
        items, _ = await resource.list()
    except (ApiException, ClientError, OSError):
        return None
    return items


async def run_preflight(*, config: Config, api: client.ApiClient, ec2: EC2Client) -> list[Finding]:
    # the CLI resolves an unset region (instance metadata) before it gets here
    region = config.aws_region or "unset"
    findings = [await kube_checks.api_finding(api)]
    kube_up = findings[0].outcome is Outcome.PASS
    if kube_up:
        findings.append(await kube_checks.crd_finding(api))
        findings.extend(
            await kube_checks.rbac_findings(api, kube_checks.required_permissions(config))
        )
    nodes = await _list(ResourceAPI.nodes(api)) if kube_up else None
    on_ec2 = [n for n in map(NodeView.from_api, nodes or []) if n.on_ec2]
    if nodes is not None:
        zones = {n.name: n.availability_zone for n in on_ec2 if n.availability_zone}
        findings.append(ec2_checks.region_finding(region=region, node_zones=zones))
    vpc, subnet_id = await ec2_checks.vpc_finding(ec2, region=region, vpc_id=config.vpc_id)
    findings.append(vpc)
    findings.append(ec2_checks.cluster_identity_finding(cluster_name=config.cluster_name))
    targets = await ec2_checks.find_targets(
        ec2, subnet_id=subnet_id, instance_ids=[n.instance_id for n in on_ec2 if n.instance_id]
    )
    findings.extend(
        await ec2_checks.run_probes(
            ec2,
            targets,
            cluster_name=config.cluster_name,
            extra_tags=dict(config.extra_eni_tags),
        )
    )
    crd_served = kube_up and findings[1].outcome is Outcome.PASS
    nodeenis = await _list(ResourceAPI.nodeenis(api)) if crd_served else None
    if nodeenis:
        findings.extend(
            await ec2_checks.reference_findings(
                Resolver(ec2, vpc_id=config.vpc_id),
                (model.NodeENI.from_dict(raw) for raw in nodeenis),
            )
        )
    return findings

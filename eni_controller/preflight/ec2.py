"""EC2 side of the preflight: every action the controller makes, asked with DryRun,
and the region checked against where the nodes and the VPC really are.

DryRun answers `DryRunOperation` when the call would be allowed. AWS sometimes
validates placeholder ids before it checks permissions, so such an answer is a
warning ("not proven"), never a pass. The create probe sends exactly the tags a
real create sends, so a policy conditioned on them passes only if it allows
the real create.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client, eni_tag_specifications, tag_list
from eni_controller.aws.lookup import LookupFailed, Resolver
from eni_controller.model import NodeENI
from eni_controller.preflight.report import Finding, failed, passed, warned
from eni_controller.reconcile import tags
from eni_controller.reconcile.tags import MANAGED_BY_KEY, MANAGED_BY_VALUE


@dataclass(frozen=True, slots=True)
class Probe:
    """One EC2 action the controller makes, with parameters that suffice for a DryRun."""

    action: str
    purpose: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProbeTargets:
    """The ids the probes name: real ones where there are some (AWS may check those first)."""

    subnet_id: str = "subnet-00000000000000000"
    instance_id: str = "i-00000000000000000"
    eni_id: str = "eni-00000000000000000"
    attachment_id: str = "eni-attach-00000000000000000"


async def find_targets(
    ec2: EC2Client, *, subnet_id: str | None, instance_ids: Sequence[str]
) -> ProbeTargets:
    """Our own ENIs (an attached one first), the nodes' instances, a subnet of the VPC."""
    try:
        ours = await ec2.describe_network_interfaces(
            filters={f"tag:{MANAGED_BY_KEY}": [MANAGED_BY_VALUE]}
        )
    except errors.EC2Error:
        ours = []  # the DescribeNetworkInterfaces probe reports why
    found: dict[str, str] = {"subnet_id": subnet_id} if subnet_id else {}
    if instance_ids:
        found["instance_id"] = min(instance_ids)
    if ours:
        eni = min(ours, key=lambda e: (e.attachment is None, e.eni_id))
        found["eni_id"] = eni.eni_id
        if eni.attachment is not None:
            found["instance_id"] = eni.attachment.instance_id
            found["attachment_id"] = eni.attachment.attachment_id
    return ProbeTargets(**found)


def probes(
    targets: ProbeTargets, *, cluster_name: str | None, extra_tags: Mapping[str, str] | None = None
) -> tuple[Probe, ...]:
    """Every EC2 action the controller calls, as DryRun requests naming `targets`."""
    create_tags = tags.eni_tags(
        nodeeni="preflight",
        uid="00000000-0000-0000-0000-000000000000",
        node="preflight-node",
        instance_id=targets.instance_id,
        subnet_id=targets.subnet_id,
        cluster_name=cluster_name,
        extra=extra_tags,
    )
    eni = targets.eni_id
    return (
        Probe("DescribeNetworkInterfaces", "find and verify ENIs"),
        Probe("DescribeInstances", "instance state, AZ, type"),
        Probe(
            "DescribeInstanceTypes", "ENI limit per instance type", {"InstanceTypes": ["t3.medium"]}
        ),
        Probe("DescribeSubnets", "resolve subnetIDs/subnetNames"),
        Probe("DescribeSecurityGroups", "resolve securityGroup IDs/names"),
        Probe(
            "CreateNetworkInterface",
            "create ENIs, tagged at creation (needs ec2:CreateTags too)",
            {
                "SubnetId": targets.subnet_id,
                "TagSpecifications": eni_tag_specifications(create_tags),
            },
        ),
        Probe(
            "AttachNetworkInterface",
            "attach ENIs",
            {"NetworkInterfaceId": eni, "InstanceId": targets.instance_id, "DeviceIndex": 1},
        ),
        Probe(
            "ModifyNetworkInterfaceAttribute",
            "DeleteOnTermination, security groups",
            {"NetworkInterfaceId": eni, "SourceDestCheck": {"Value": True}},
        ),
        Probe(
            "DetachNetworkInterface",
            "detach ENIs",
            {"AttachmentId": targets.attachment_id, "Force": True},
        ),
        Probe("DeleteNetworkInterface", "delete ENIs", {"NetworkInterfaceId": eni}),
        Probe(
            "CreateTags",
            "adopt the Go controller's ENIs by completing their tags",
            {"Resources": [eni], "Tags": tag_list(create_tags)},
        ),
    )


def probe_finding(probe: Probe, error: errors.EC2Error | None) -> Finding:
    """What the answer to a DryRun probe means (`error` None: the call was answered)."""
    check = f"ec2:{probe.action}"
    match error:
        case None:
            return passed(check, "allowed (answered; the endpoint does not DryRun this action)")
        case errors.DryRunPassed():
            return passed(check, f"allowed (DryRun) - {probe.purpose}")
        case errors.Unauthorized():
            return failed(
                check, f"denied ({error.code}): allow ec2:{probe.action} - {probe.purpose}"
            )
        case errors.CredentialsRejected():
            return failed(check, f"credentials rejected ({error.code})")
        case errors.NotFound():
            return warned(
                check,
                f"not proven: AWS checked the ids before the permission ({error.code})",
            )
        case errors.Throttled() | errors.Transient() | errors.CircuitOpen():
            return failed(check, f"EC2 did not answer ({error.code})")
        case _:
            return warned(check, f"not proven: {error.code}")


async def _failure(call: Awaitable[object]) -> errors.EC2Error | None:
    try:
        await call
    except errors.EC2Error as err:
        return err
    return None


async def run_probes(
    ec2: EC2Client,
    targets: ProbeTargets,
    *,
    cluster_name: str | None,
    extra_tags: Mapping[str, str] | None = None,
) -> list[Finding]:
    return [
        probe_finding(probe, await _failure(ec2.call(probe.action, DryRun=True, **probe.params)))
        for probe in probes(targets, cluster_name=cluster_name, extra_tags=extra_tags)
    ]


def cluster_identity_finding(*, cluster_name: str | None) -> Finding:
    """Whether ENIs get a cluster tag, which the orphan sweep and the IAM policy need."""
    check = "cluster-name"
    if cluster_name:
        return passed(
            check,
            f"CLUSTER_NAME={cluster_name}: "
            f"ENIs tagged {tags.CLUSTER_TAG_PREFIX}{cluster_name}=owned",
        )
    return warned(
        check,
        "CLUSTER_NAME not set: unless the nodes' EKS tags name the cluster, ENIs get no "
        "cluster tag and the orphan sweep deletes nothing (no cluster identity); "
        "set CLUSTER_NAME (chart value clusterName)",
    )


def _zone_in_region(zone: str, region: str) -> bool:
    # us-east-1a, and local/wavelength zones such as us-west-2-lax-1a
    suffix = zone.removeprefix(region)
    return suffix != zone and (suffix.isalpha() or suffix.startswith("-"))


def region_finding(*, region: str, node_zones: Mapping[str, str]) -> Finding:
    """Whether the nodes' availability zones (node name -> AZ) lie in the region."""
    check = "region"
    if not node_zones:
        return warned(check, f"AWS_REGION={region}; no node with an aws:/// providerID to compare")
    elsewhere = [zone for zone in node_zones.values() if not _zone_in_region(zone, region)]
    if elsewhere:
        return failed(
            check,
            f"AWS_REGION={region} but {len(elsewhere)} node(s) run in "
            f"{', '.join(sorted(set(elsewhere)))}: "
            "set AWS_REGION (chart value awsRegion) to the nodes' region",
        )
    zones = sorted(set(node_zones.values()))
    return passed(
        check, f"AWS_REGION={region}; {len(node_zones)} node(s) in {', '.join(zones)} agree"
    )


async def vpc_finding(
    ec2: EC2Client, *, region: str, vpc_id: str | None
) -> tuple[Finding, str | None]:
    """Whether the VPC is visible in the region; and a subnet for the create probe."""
    check = "vpc"
    try:
        subnets = await ec2.describe_subnets(filters={"vpc-id": [vpc_id]} if vpc_id else {})
    except errors.EC2Error as err:
        return warned(check, f"could not list subnets ({err.code})"), None
    first = min((s.subnet_id for s in subnets), default=None)
    if vpc_id is None:
        return passed(check, f"VPC_ID not set: names resolve among {len(subnets)} subnets"), first
    if not subnets:
        wrong = f"no subnet of {vpc_id} in {region}: wrong AWS_REGION or VPC_ID?"
        return failed(check, wrong), None
    return passed(check, f"{vpc_id}: {len(subnets)} subnets in {region}"), first


async def reference_findings(resolver: Resolver, nodeenis: Iterable[NodeENI]) -> list[Finding]:
    """Every NodeENI's subnets and security groups exist (in the region and VPC)."""
    findings = []
    for nodeeni in sorted(nodeenis, key=lambda n: n.name):
        check = f"nodeeni/{nodeeni.name}"
        spec = nodeeni.spec
        if spec is None:
            findings.append(warned(check, "invalid spec: " + "; ".join(nodeeni.problems)))
            continue
        problems = [
            *await _lookup_problems(resolver.subnets(ids=spec.subnet_ids, names=spec.subnet_names)),
            *await _lookup_problems(
                resolver.security_groups(
                    ids=spec.security_group_ids, names=spec.security_group_names
                )
            ),
        ]
        found = passed(check, "subnets and security groups found")
        findings.append(failed(check, "; ".join(problems)) if problems else found)
    return findings


async def _lookup_problems(lookup: Awaitable[object]) -> list[str]:
    try:
        await lookup
    except LookupFailed as err:
        return list(err.problems)
    except errors.EC2Error as err:
        return [f"lookup failed ({err.code})"]
    return []

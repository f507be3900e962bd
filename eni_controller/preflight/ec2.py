"""EC2 side of the preflight: every action the controller makes, asked with DryRun,
and the region checked against where the nodes and the VPC really are.

DryRun answers `DryRunOperation` when the call would be allowed and
`UnauthorizedOperation` when it would not, without doing anything. Calls about
an ENI that does not exist use placeholder ids; AWS sometimes validates those
before it checks permissions, so such an answer is a warning ("not proven"),
never a pass.

The CreateNetworkInterface probe sends exactly the tags a real create sends
(`reconcile.tags.eni_tags` for a placeholder slot, with the configured
CLUSTER_NAME): a policy conditioned on the cluster tag (deploy/iam/policy.json)
must pass `check` only if it lets the controller really create.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from eni_controller.aws import errors
from eni_controller.aws.ec2 import EC2Client, eni_tag_specifications
from eni_controller.aws.lookup import LookupFailed, Resolver
from eni_controller.model import NodeENI
from eni_controller.preflight.report import Finding, failed, passed, warned
from eni_controller.reconcile import tags
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.tags import MANAGED_BY_KEY, MANAGED_BY_VALUE

PLACEHOLDER_ENI: Final = "eni-00000000000000000"
PLACEHOLDER_INSTANCE: Final = "i-00000000000000000"
PLACEHOLDER_ATTACHMENT: Final = "eni-attach-00000000000000000"
PLACEHOLDER_SUBNET: Final = "subnet-00000000000000000"
# The slot the create probe pretends to fill (no such NodeENI or node exists).
PLACEHOLDER_NODEENI: Final = "preflight"
PLACEHOLDER_UID: Final = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_NODE: Final = "preflight-node"


@dataclass(frozen=True, kw_only=True, slots=True)
class Probe:
    """One EC2 action the controller makes, with parameters that suffice for a DryRun."""

    action: str
    purpose: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProbeTargets:
    """The ids the probes name: real ones where the account has some, since AWS
    may check that a resource exists before it checks the permission."""

    subnet_id: str = PLACEHOLDER_SUBNET
    instance_id: str = PLACEHOLDER_INSTANCE
    eni_id: str = PLACEHOLDER_ENI
    attachment_id: str = PLACEHOLDER_ATTACHMENT


async def find_targets(
    ec2: EC2Client, *, subnet_id: str | None, instance_ids: Sequence[str]
) -> ProbeTargets:
    """Real ids for the probes: the controller's own ENIs (an attached one first),
    the nodes' instances, a subnet of the VPC."""
    try:
        ours = await ec2.describe_network_interfaces(
            filters={f"tag:{MANAGED_BY_KEY}": [MANAGED_BY_VALUE]}
        )
    except errors.EC2Error:
        ours = []  # the DescribeNetworkInterfaces probe reports why
    ours.sort(key=lambda e: e.eni_id)
    attached = next((e for e in ours if e.attachment is not None), None)
    found: dict[str, str] = {}
    if subnet_id:
        found["subnet_id"] = subnet_id
    if instance_ids:
        found["instance_id"] = min(instance_ids)
    if ours:
        found["eni_id"] = ours[0].eni_id
    if attached is not None and attached.attachment is not None:
        found["eni_id"] = attached.eni_id
        found["instance_id"] = attached.attachment.instance_id
        found["attachment_id"] = attached.attachment.attachment_id
    return ProbeTargets(**found)


def probe_tags(
    targets: ProbeTargets, *, cluster_name: str | None, extra: Mapping[str, str] | None = None
) -> Mapping[str, str]:
    """The tags a real create would send for a slot on `targets`' instance and subnet
    (`extra`: EXTRA_ENI_TAGS, which a tag policy or an SCP may require)."""
    return tags.eni_tags(
        nodeeni=PLACEHOLDER_NODEENI,
        uid=PLACEHOLDER_UID,
        node=PLACEHOLDER_NODE,
        instance_id=targets.instance_id,
        subnet_id=targets.subnet_id,
        cluster_name=cluster_name,
        extra=extra,
    )


def probes(
    targets: ProbeTargets, *, cluster_name: str | None, extra_tags: Mapping[str, str] | None = None
) -> tuple[Probe, ...]:
    """Every EC2 action the controller calls, as DryRun requests naming `targets`;
    the create tagged as the controller with `cluster_name` would tag it."""
    return (
        Probe(action="DescribeNetworkInterfaces", purpose="find and verify ENIs"),
        Probe(action="DescribeInstances", purpose="instance state, AZ, type"),
        Probe(
            action="DescribeInstanceTypes",
            purpose="ENI limit per instance type",
            params={"InstanceTypes": ["t3.medium"]},
        ),
        Probe(action="DescribeSubnets", purpose="resolve subnetIDs/subnetNames"),
        Probe(action="DescribeSecurityGroups", purpose="resolve securityGroup IDs/names"),
        Probe(
            action="CreateNetworkInterface",
            purpose="create ENIs, tagged at creation (needs ec2:CreateTags too)",
            params={
                "SubnetId": targets.subnet_id,
                "TagSpecifications": eni_tag_specifications(
                    probe_tags(targets, cluster_name=cluster_name, extra=extra_tags)
                ),
            },
        ),
        Probe(
            action="AttachNetworkInterface",
            purpose="attach ENIs",
            params={
                "NetworkInterfaceId": targets.eni_id,
                "InstanceId": targets.instance_id,
                "DeviceIndex": 1,
            },
        ),
        Probe(
            action="ModifyNetworkInterfaceAttribute",
            purpose="DeleteOnTermination, security groups",
            params={"NetworkInterfaceId": targets.eni_id, "SourceDestCheck": {"Value": True}},
        ),
        Probe(
            action="DetachNetworkInterface",
            purpose="detach ENIs",
            params={"AttachmentId": targets.attachment_id, "Force": True},
        ),
        Probe(
            action="DeleteNetworkInterface",
            purpose="delete ENIs",
            params={"NetworkInterfaceId": targets.eni_id},
        ),
        Probe(
            action="CreateTags",
            purpose="adopt the Go controller's ENIs by completing their tags",
            params={
                "Resources": [targets.eni_id],
                "Tags": [
                    {"Key": key, "Value": value}
                    for key, value in probe_tags(
                        targets, cluster_name=cluster_name, extra=extra_tags
                    ).items()
                ],
            },
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


async def run_probes(
    ec2: EC2Client,
    targets: ProbeTargets,
    *,
    cluster_name: str | None,
    extra_tags: Mapping[str, str] | None = None,
) -> list[Finding]:
    findings = []
    for probe in probes(targets, cluster_name=cluster_name, extra_tags=extra_tags):
        try:
            await ec2.call(probe.action, DryRun=True, **probe.params)
        except errors.EC2Error as err:
            findings.append(probe_finding(probe, err))
        else:
            findings.append(probe_finding(probe, None))
    return findings


def cluster_identity_finding(*, cluster_name: str | None) -> Finding:
    """Whether ENIs get a cluster tag: without one the orphan sweep deletes nothing
    and the shipped IAM policy (conditioned on that tag) allows nothing."""
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
    """Whether the nodes' availability zones (node name -> AZ from its providerID)
    lie in the configured region."""
    check = "region"
    if not node_zones:
        return warned(check, f"AWS_REGION={region}; no node with an aws:/// providerID to compare")
    elsewhere = sorted({zone for zone in node_zones.values() if not _zone_in_region(zone, region)})
    if elsewhere:
        count = sum(not _zone_in_region(z, region) for z in node_zones.values())
        return failed(
            check,
            f"AWS_REGION={region} but {count} node(s) run in {', '.join(elsewhere)}: "
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
        return (
            passed(check, f"VPC_ID not set: names resolve among {len(subnets)} subnets"),
            first,
        )
    if not subnets:
        return (
            failed(check, f"no subnet of {vpc_id} in {region}: wrong AWS_REGION or VPC_ID?"),
            None,
        )
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
        if problems:
            findings.append(failed(check, "; ".join(problems)))
        else:
            findings.append(passed(check, "subnets and security groups found"))
    return findings


async def _lookup_problems(lookup: Awaitable[object]) -> list[str]:
    try:
        await lookup
    except LookupFailed as err:
        return list(err.problems)
    except errors.EC2Error as err:
        return [f"lookup failed ({err.code})"]
    return []


def ec2_nodes(nodes: Sequence[Mapping[str, Any]]) -> list[NodeView]:
    """The Nodes whose providerID names an EC2 instance."""
    return [v for v in map(NodeView.from_api, nodes) if v.on_ec2]

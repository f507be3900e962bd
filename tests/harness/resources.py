"""EC2 resources as the controller's dataclasses, for unit tests that need one."""

from __future__ import annotations

from collections.abc import Mapping

from eni_controller.aws.resources import ENIAttachment, NetworkInterface
from tests.harness.ec2world import AZ_A


def network_interface(
    eni_id: str,
    *,
    tags: Mapping[str, str] | None = None,
    attachment: ENIAttachment | None = None,
) -> NetworkInterface:
    """An ENI in subnet-1 (AZ_A), `in-use` when attached, else `available`."""
    return NetworkInterface(
        eni_id=eni_id,
        subnet_id="subnet-1",
        vpc_id="vpc-1",
        availability_zone=AZ_A,
        status="available" if attachment is None else "in-use",
        mac_address="",
        private_ip_address="",
        description="",
        security_group_ids=(),
        tags=dict(tags or {}),
        attachment=attachment,
    )

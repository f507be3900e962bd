"""An executor Job over the in-memory EC2 (memory_ec2.py), for the executor's unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from eni_controller.aws.resources import Instance
from eni_controller.model import NodeENISpec
from eni_controller.reconcile.executor import Emit, Job
from tests.harness.memory_ec2 import AZ, INSTANCE_TYPE


def memory_job(*, nodeeni: str, instances: Sequence[str], emit: Emit) -> Job:
    """One subnet (`subnet-1`), one security group, running instances with eth0 only."""
    return Job(
        nodeeni=nodeeni,
        uid="uid-1",
        spec=NodeENISpec(node_selector=MappingProxyType({}), subnet_ids=("subnet-1",)),
        security_group_ids=("sg-1",),
        instances={
            i: Instance(
                instance_id=i,
                availability_zone=AZ,
                state="running",
                instance_type=INSTANCE_TYPE,
                vpc_id="vpc-1",
                occupied_device_indexes=frozenset({0}),
            )
            for i in instances
        },
        emit=emit,
    )

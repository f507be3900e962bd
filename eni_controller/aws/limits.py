"""How many ENIs each instance type can hold, asked of EC2 once per type.

Instance types never change their limits, so the answer is cached for the life
of the process; the planner uses it to report AttachmentLimitExceeded before
AWS has to, and to never create an ENI that cannot be attached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from eni_controller.aws.batch import ANY_CALL, Batcher
from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.resources import InstanceTypeInfo

_TYPES_PER_CALL = 100


class InstanceTypeLimits:
    def __init__(self, ec2: EC2Client) -> None:
        self._ec2 = ec2
        self._max_enis: dict[str, int] = {}
        # reconciles that start together all miss the cache: they share one call
        self._describe = Batcher(self._describe_types, max_keys=_TYPES_PER_CALL)

    async def max_enis(self, instance_types: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(instance_types))
        missing = [t for t in wanted if t not in self._max_enis]
        if missing:
            infos = await self._describe.get(missing, not_before=ANY_CALL)
            self._max_enis.update({t: info.max_network_interfaces for t, info in infos.items()})
        return {t: self._max_enis[t] for t in wanted if t in self._max_enis}

    async def _describe_types(self, types: Sequence[str]) -> Mapping[str, InstanceTypeInfo]:
        return await self._ec2.describe_instance_types(types)

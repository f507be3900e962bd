"""How many ENIs each instance type can hold, asked of EC2 once per type and
cached for the life of the process (instance types never change their limits)."""

from __future__ import annotations

from collections.abc import Iterable

from eni_controller.aws.batch import ANY_CALL, Batcher
from eni_controller.aws.ec2 import EC2Client

_TYPES_PER_CALL = 100


class InstanceTypeLimits:
    def __init__(self, ec2: EC2Client) -> None:
        self._max_enis: dict[str, int] = {}
        # reconciles that start together all miss the cache: they share one call
        self._describe = Batcher(ec2.describe_instance_types, max_keys=_TYPES_PER_CALL)

    async def max_enis(self, instance_types: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(instance_types))
        missing = [t for t in wanted if t not in self._max_enis]
        if missing:
            self._max_enis.update(await self._describe.get(missing, not_before=ANY_CALL))
        return {t: self._max_enis[t] for t in wanted if t in self._max_enis}

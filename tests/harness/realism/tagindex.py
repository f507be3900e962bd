"""moto answers "what are this resource's tags?" by scanning every tag it holds.

`TaggedEC2Resource.get_tags` runs `describe_tags(resource-id=...)`, a regex
test over every tag of every resource, and a tag-filtered
DescribeNetworkInterfaces asks it once per ENI: with 1,000 ENIs of eight tags
one describe took ~5 s, quadratic in the ENI count. EC2 has no such cost, so
at the scale of the performance suite the test server, not the client, would
be measured. This patch reads the resource's own entry of the same tag store:
same answer, same order, one dict lookup. It changes no behaviour and is
always on.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

from tests.harness.realism.patching import wrap


def install() -> None:
    wrap(TaggedEC2Resource, "get_tags", lambda _original: _get_tags)


def _get_tags(self: Any) -> list[dict[str, str]]:
    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    tags = self.ec2_backend.tags.get(resource_id)  # .get: never adds an empty entry
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [
        {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in list(tags.items())
    ]

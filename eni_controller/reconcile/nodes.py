"""Nodes as the planner sees them: name, labels, and the EC2 instance behind them.

Only a providerID of the AWS form ``aws:///<az>/i-<hex>`` identifies an EC2
instance. Anything else (empty, another cloud, a kind node) is not ours to
manage and never means "gone".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

_PROVIDER_ID: Final = re.compile(r"aws:///(?P<az>[a-z0-9-]+)/(?P<instance>i-[0-9a-f]+)")


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeView:
    name: str
    labels: Mapping[str, str]
    instance_id: str | None
    availability_zone: str | None

    @property
    def on_ec2(self) -> bool:
        return self.instance_id is not None

    @classmethod
    def from_api(cls, node: Mapping[str, Any]) -> NodeView:
        metadata = node.get("metadata") or {}
        match = _PROVIDER_ID.fullmatch(str((node.get("spec") or {}).get("providerID") or ""))
        return cls(
            name=str(metadata.get("name", "")),
            labels=MappingProxyType(dict(metadata.get("labels") or {})),
            instance_id=match["instance"] if match else None,
            availability_zone=match["az"] if match else None,
        )

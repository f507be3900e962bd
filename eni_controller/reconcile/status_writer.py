"""The one writer of a NodeENI's status, and of the gauges that mirror it.

Every status write goes through here: the agents' ENINode reports are folded
in (eninodes.py), a patch goes out only when it changes something (status.py),
and the NodeENI's gauges (metrics.py) then say what its status says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eni_controller import eninode, model
from eni_controller.kube.writes import NodeENIWriter
from eni_controller.metrics import Metrics
from eni_controller.model import AttachmentState, ConditionStatus
from eni_controller.reconcile.eninodes import fold_reports
from eni_controller.reconcile.status import (
    NODE_INTERFACES_READY,
    READY,
    node_error_conditions,
    status_patch,
)
from eni_controller.reconcile.status_fit import StatusLimits


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusWriter:
    writer: NodeENIWriter
    eninode: Callable[[str], dict[str, Any] | None]  # a node's ENINode, as the informer has it
    limits: StatusLimits
    metrics: Metrics

    async def write(
        self,
        nodeeni: model.NodeENI,
        conditions: Sequence[model.Condition],
        *,
        attachments: Sequence[model.Attachment] | None = None,
        desired: int | None = None,
    ) -> None:
        """Status with `conditions`, and `attachments` and `desired` where given."""
        entries = nodeeni.status.attachments if attachments is None else attachments
        reports = {
            name: eninode.parse_status(raw.get("status")).by_eni()
            for name in {a.node_id for a in entries}
            if (raw := self.eninode(name)) is not None
        }
        folded = fold_reports(entries, reports=reports, spec=nodeeni.spec)
        patch = status_patch(
            nodeeni.status,
            conditions=[
                *(c for c in conditions if c.type != NODE_INTERFACES_READY),
                *node_error_conditions(folded.errors, generation=nodeeni.generation),
            ],
            generation=nodeeni.generation,
            now=model.utc_now(),
            attachments=folded.attachments,
            desired=desired,
            limits=self.limits,
        )
        if patch is not None:
            await self.writer.patch_status(
                nodeeni.name, patch, resource_version=nodeeni.resource_version
            )
        wanted = desired if desired is not None else nodeeni.status.desired_count
        self.metrics.nodeeni_status(
            nodeeni.name,
            wanted=0 if nodeeni.being_deleted else wanted,
            attached=sum(a.status is AttachmentState.ATTACHED for a in folded.attachments),
            ready=any(c.type == READY and c.status is ConditionStatus.TRUE for c in conditions),
        )

    async def detaching(self, nodeeni: model.NodeENI, *, left: Callable[[str], bool]) -> None:
        """Status lists the ENIs still `left` as detaching; the others are gone."""
        await self.write(
            nodeeni,
            nodeeni.status.conditions,
            attachments=[
                dataclasses.replace(a, status=AttachmentState.DETACHING)
                for a in nodeeni.status.attachments
                if left(a.eni_id)
            ],
        )

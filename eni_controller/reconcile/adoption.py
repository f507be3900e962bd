"""The Go controller's ENIs, adopted in place: a migration makes no second ENI.

The Go controller tagged its ENIs with NodeENI, Node, SubnetID and managed-by,
and no uid: the planner would make a second ENI per slot beside each. One
counts as a NodeENI's when its Node tag names a node of this cluster, its
subnet is one of the spec's, and it is attached to that node's instance or to
none; it gets the tags it lacks (uid, instance, cluster) and is then planned
like any ENI of ours: kept at its index with its IP, never detached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eni_controller import model
from eni_controller.aws.resources import NetworkInterface, Subnet
from eni_controller.kube.events import EventRecorder
from eni_controller.reconcile import tags
from eni_controller.reconcile.ec2view import EC2View
from eni_controller.reconcile.executor import Executor
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.retries import keep_newest


@dataclass(kw_only=True, slots=True)
class GoAdoption:
    view: EC2View
    executor: Executor
    events: EventRecorder
    node: Callable[[str], NodeView | None]  # a Node, as the informer has it
    # tagged as ours: the snapshot shows them untagged a while
    _adopted: dict[str, None] = field(default_factory=dict, init=False)

    async def adopt(
        self, nodeeni: model.NodeENI, *, enis: Sequence[NetworkInterface], subnets: Sequence[Subnet]
    ) -> list[NetworkInterface]:
        """The Go controller's ENIs for the slots of `nodeeni`, now tagged as its own;
        `enis`: those already tagged with its uid."""
        known = {e.eni_id for e in enis} | self._adopted.keys()
        subnet_ids = {s.subnet_id for s in subnets}
        adopted: list[NetworkInterface] = []
        for eni in await self.view.legacy(nodeeni.name):
            if eni.eni_id in known or eni.subnet_id not in subnet_ids:
                continue
            node_name = eni.tags.get(tags.NODE_KEY, "")
            node = self.node(node_name)
            instance_id = node.instance_id if node is not None else None
            if instance_id is None or (
                eni.attachment is not None and eni.attachment.instance_id != instance_id
            ):
                continue  # not on a node of this cluster: not ours to take
            tagged = await self.executor.adopt(
                eni, nodeeni=nodeeni.name, uid=nodeeni.uid, node=node_name, instance_id=instance_id
            )
            if tagged is None:
                continue
            await self.events.record(
                nodeeni,
                type_="Normal",
                reason="ENIAdopted",
                message=f"adopted {eni.eni_id} on node {node_name}, made by the Go controller",
            )
            keep_newest(self._adopted, eni.eni_id, None)
            adopted.append(tagged)
        return adopted

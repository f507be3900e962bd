"""Every Kubernetes request the controller and the node agent make, as RBAC permissions.

The chart's RBAC, the preflight (`eni-controller check`, one SelfSubjectAccessReview
per entry) and the chart test (which compares the rendered Roles and ClusterRoles
with this list, rule for rule, both ways) agree on this one list.

Invariants:
- every entry names the call site that needs it (`why`), and every call the code
  makes is covered (discovery, version and SelfSubjectAccessReview need no grant);
- `names` narrows only verbs RBAC can narrow by name (never create, list, watch);
- `namespace` None means cluster-scoped (a ClusterRole), else a Role there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from eni_controller import eninode, model
from eni_controller.kube.events import EVENTS_NAMESPACE
from eni_controller.kube.leader import DEFAULT_LEASE_NAME

LEASE_GROUP: Final = "coordination.k8s.io"
# Verbs without an object name in the request: RBAC cannot narrow them by resourceNames.
UNNAMED_VERBS: Final = frozenset({"create", "list", "watch", "deletecollection"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Permission:
    """Verbs one component uses on one resource (in one namespace, or cluster-wide)."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    why: str
    subresource: str = ""
    namespace: str | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.names and UNNAMED_VERBS & set(self.verbs):
            raise ValueError(f"{self.label}: {sorted(self.verbs)} cannot be narrowed by name")

    @property
    def full_resource(self) -> str:
        """The resource as an RBAC rule spells it: `nodeenis/status`."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @property
    def label(self) -> str:
        """`rbac:[namespace/]resource[.group][/name]`, the preflight's row name."""
        qualified = f"{self.full_resource}.{self.group}" if self.group else self.full_resource
        where = f"{self.namespace}/{qualified}" if self.namespace else qualified
        named = f"/{','.join(self.names)}" if self.names else ""
        return f"rbac:{where}{named}"

    def rule(self) -> dict[str, list[str]]:
        """The RBAC PolicyRule granting exactly this permission."""
        rule = {
            "apiGroups": [self.group],
            "resources": [self.full_resource],
            "verbs": list(self.verbs),
        }
        if self.names:
            rule["resourceNames"] = list(self.names)
        return rule


def controller_permissions(
    *, release_namespace: str, leader_election: bool
) -> tuple[Permission, ...]:
    """What `eni-controller run` calls; the Lease only when electing."""
    needed = [
        Permission(
            group="",
            resource="nodes",
            verbs=("get", "list", "watch"),
            why="Node informer, and its GET of a new Node's providerID (kube/informer.py)",
        ),
        Permission(
            group=model.GROUP,
            resource=model.PLURAL,
            verbs=("list", "watch", "patch"),
            why="NodeENI informer; finalizer and annotation merge patches (kube/writes.py)",
        ),
        Permission(
            group=model.GROUP,
            resource=model.PLURAL,
            subresource="status",
            verbs=("patch",),
            why="status merge patches (kube/writes.py)",
        ),
        Permission(
            group=eninode.GROUP,
            resource=eninode.PLURAL,
            verbs=("list", "watch", "create", "patch"),
            why="ENINode informer, one created per node, spec patched (kube/eninode_writes.py)",
        ),
        Permission(
            group="",
            resource="events",
            verbs=("create", "patch"),
            namespace=EVENTS_NAMESPACE,
            why="Events, repeats correlated by patching count (kube/events.py)",
        ),
    ]
    if leader_election:
        needed += [
            Permission(
                group=LEASE_GROUP,
                resource="leases",
                verbs=("create",),
                namespace=release_namespace,
                why="the leader Lease created when missing (kube/leader.py)",
            ),
            Permission(
                group=LEASE_GROUP,
                resource="leases",
                verbs=("get", "update"),
                namespace=release_namespace,
                names=(DEFAULT_LEASE_NAME,),
                why="the leader Lease read and replaced (kube/leader.py)",
            ),
        ]
    return tuple(needed)


def agent_permissions(*, device_plugin_namespace: str | None) -> tuple[Permission, ...]:
    """What `eni-controller agent` calls; the device plugin's pods only with SR-IOV on."""
    needed = [
        Permission(
            group=eninode.GROUP,
            resource=eninode.PLURAL,
            verbs=("list", "watch"),
            why="its own ENINode, by field selector (agent/agent.py eninode_resource)",
        ),
        Permission(
            group=eninode.GROUP,
            resource=eninode.PLURAL,
            subresource="status",
            verbs=("patch",),
            why="its ENINode's status merge patches (agent/report.py)",
        ),
    ]
    if device_plugin_namespace is not None:
        needed.append(
            Permission(
                group="",
                resource="pods",
                verbs=("list", "delete"),
                namespace=device_plugin_namespace,
                why="restart the SR-IOV device plugin's pod on its node (agent/deviceplugin.py)",
            )
        )
    return tuple(needed)

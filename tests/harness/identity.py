"""A cluster identity resolved to given values, for tests that skip discovery."""

from __future__ import annotations

from eni_controller.aws.identity import ClusterIdentity


def known_identity(*, name: str | None, vpc_id: str | None) -> ClusterIdentity:
    identity = ClusterIdentity(name=name, vpc_id=vpc_id)
    identity.resolved = True
    identity.reason = "given" if name else "no cluster name given"
    return identity

"""Unit tests for the orphan sweep's decision (reconcile/sweep.py `decide`): each
rule has a case that a sweep without that rule would get wrong."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

from eni_controller.aws.resources import ENIAttachment, NetworkInterface
from eni_controller.reconcile import tags
from eni_controller.reconcile.sweep import SweepFacts, claimed_eni_ids, decide, node_instance_ids
from tests.harness.ec2world import AZ_A
from tests.samples import VPC_A as VPC
from tests.samples import VPC_B as OTHER_VPC

NODE_INSTANCE = "i-0000000000000000a"
FOREIGN_INSTANCE = "i-0000000000000000f"
GRACE = 60.0
NOW = 1000.0


def _eni(
    eni_id: str,
    *,
    cluster: str | None = "blue",
    uid: str = "uid-orphan",
    vpc_id: str = VPC,
    attached_to: str | None = None,
) -> NetworkInterface:
    made = {tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE, tags.NODEENI_UID_KEY: uid}
    if cluster is not None:
        made[f"{tags.CLUSTER_TAG_PREFIX}{cluster}"] = "owned"
    attachment = (
        ENIAttachment(
            attachment_id=f"eni-attach-{eni_id}",
            instance_id=attached_to,
            device_index=1,
            status="attached",
            delete_on_termination=True,
        )
        if attached_to is not None
        else None
    )
    return NetworkInterface(
        eni_id=eni_id,
        subnet_id="subnet-1",
        vpc_id=vpc_id,
        availability_zone=AZ_A,
        status="in-use" if attachment else "available",
        mac_address="",
        private_ip_address="",
        description="",
        security_group_ids=(),
        tags=MappingProxyType(made),
        attachment=attachment,
    )


FACTS = SweepFacts(
    cluster_name="blue",
    vpc_id=VPC,
    claimed_uids=frozenset({"uid-claimed"}),
    claimed_eni_ids=frozenset({"eni-listed"}),
    node_instance_ids=frozenset({NODE_INSTANCE}),
)


def _reclaimed(enis: list[NetworkInterface], facts: SweepFacts = FACTS) -> set[str]:
    """What a sweep reclaims of `enis`, all first seen one grace period ago."""
    first_seen = {e.eni_id: NOW - GRACE for e in enis}
    decision = decide(enis, facts=facts, first_seen=first_seen, now=NOW, grace_seconds=GRACE)
    return {e.eni_id for e in decision.reclaim}


def test_an_unclaimed_eni_of_this_cluster_past_the_grace_is_reclaimed() -> None:
    # the positive case every rule below is measured against
    assert _reclaimed([_eni("eni-free"), _eni("eni-on-node", attached_to=NODE_INSTANCE)]) == {
        "eni-free",
        "eni-on-node",
    }


def test_an_eni_of_another_cluster_is_never_reclaimed() -> None:
    assert _reclaimed([_eni("eni-green", cluster="green"), _eni("eni-blue")]) == {"eni-blue"}


def test_an_eni_without_a_cluster_tag_is_never_reclaimed() -> None:
    # another controller left at the default, or the Go controller: same managed-by tag
    assert _reclaimed([_eni("eni-untagged", cluster=None), _eni("eni-blue")]) == {"eni-blue"}


def test_without_a_cluster_identity_nothing_is_reclaimed() -> None:
    facts = dataclasses.replace(FACTS, cluster_name=None)
    enis = [_eni("eni-untagged", cluster=None), _eni("eni-blue")]
    decision = decide(enis, facts=facts, first_seen={}, now=NOW, grace_seconds=0)
    assert decision.reclaim == ()
    assert decision.blocked is not None
    assert "cluster identity" in decision.blocked


def test_without_a_known_vpc_nothing_is_reclaimed() -> None:
    facts = dataclasses.replace(FACTS, vpc_id=None)
    decision = decide([_eni("eni-blue")], facts=facts, first_seen={}, now=NOW, grace_seconds=0)
    assert decision.reclaim == ()
    assert decision.blocked is not None


def test_an_eni_in_another_vpc_is_never_reclaimed() -> None:
    assert _reclaimed([_eni("eni-elsewhere", vpc_id=OTHER_VPC), _eni("eni-blue")]) == {"eni-blue"}


def test_an_eni_whose_uid_a_nodeeni_has_is_not_reclaimed() -> None:
    assert _reclaimed([_eni("eni-claimed", uid="uid-claimed"), _eni("eni-blue")]) == {"eni-blue"}


def test_an_eni_listed_in_a_nodeeni_status_is_not_reclaimed() -> None:
    # its uid tag names no NodeENI (say, adopted from the Go controller), but a status lists it
    assert _reclaimed([_eni("eni-listed"), _eni("eni-blue")]) == {"eni-blue"}


def test_an_eni_attached_to_an_instance_that_is_no_node_is_skipped_not_reclaimed() -> None:
    foreign = _eni("eni-foreign", attached_to=FOREIGN_INSTANCE)
    first_seen = {"eni-foreign": NOW - GRACE, "eni-blue": NOW - GRACE}
    decision = decide(
        [foreign, _eni("eni-blue")],
        facts=FACTS,
        first_seen=first_seen,
        now=NOW,
        grace_seconds=GRACE,
    )
    assert {e.eni_id for e in decision.reclaim} == {"eni-blue"}
    assert [e.eni_id for e in decision.foreign] == ["eni-foreign"]
    assert "eni-foreign" not in decision.first_seen  # its grace starts over if it comes back


def test_an_orphan_is_reclaimed_only_after_the_grace_period() -> None:
    eni = _eni("eni-blue")
    first = decide([eni], facts=FACTS, first_seen={}, now=NOW, grace_seconds=GRACE)
    assert first.reclaim == ()
    assert first.first_seen == {"eni-blue": NOW}
    almost = decide(
        [eni], facts=FACTS, first_seen=first.first_seen, now=NOW + GRACE - 1, grace_seconds=GRACE
    )
    assert almost.reclaim == ()
    later = decide(
        [eni], facts=FACTS, first_seen=almost.first_seen, now=NOW + GRACE, grace_seconds=GRACE
    )
    assert [e.eni_id for e in later.reclaim] == ["eni-blue"]


def test_a_claim_in_between_restarts_the_grace_clock() -> None:
    eni = _eni("eni-blue", uid="uid-claimed")
    seen = decide([eni], facts=FACTS, first_seen={"eni-blue": 0.0}, now=NOW, grace_seconds=GRACE)
    assert seen.first_seen == {}
    unclaimed = dataclasses.replace(FACTS, claimed_uids=frozenset())
    again = decide([eni], facts=unclaimed, first_seen=seen.first_seen, now=NOW, grace_seconds=GRACE)
    assert again.reclaim == ()


def test_node_instance_ids_come_from_ec2_provider_ids_only() -> None:
    nodes = [
        {"metadata": {"name": "a"}, "spec": {"providerID": f"aws:///us-east-1a/{NODE_INSTANCE}"}},
        {"metadata": {"name": "kind"}, "spec": {"providerID": "kind://docker/kind/kind-worker"}},
        {"metadata": {"name": "bare"}, "spec": {}},
    ]
    assert node_instance_ids(nodes) == {NODE_INSTANCE}


def test_claimed_eni_ids_come_from_every_status_attachment() -> None:
    nodeenis: list[dict[str, Any]] = [
        {
            "metadata": {"name": "one"},
            "status": {
                "attachments": [
                    {"nodeID": "a", "eniID": "eni-1"},
                    {"nodeID": "b", "eniID": "eni-2"},
                ]
            },
        },
        {"metadata": {"name": "fresh"}},
    ]
    assert claimed_eni_ids(nodeenis) == {"eni-1", "eni-2"}

"""Unit tests of the ENINode decisions (reconcile/eninodes.py): a node's desired
spec from the NodeENIs holding ENIs on it, the patch that gets it there, and
the folding of the agents' reports into NodeENI attachments."""

from __future__ import annotations

import dataclasses
from typing import Any

from eni_controller.eninode import (
    DPDKRequest,
    InterfaceStatus,
    OperState,
    WantedInterface,
    parse_spec,
    parse_status,
)
from eni_controller.model import Attachment, AttachmentState, ConditionStatus
from eni_controller.reconcile.eninodes import (
    Holder,
    NodeError,
    desired_interfaces,
    fold_reports,
    holder,
    new_eninode,
    owner_reference,
    spec_patch,
)
from eni_controller.reconcile.status import node_error_conditions
from eni_controller.spec import DEFAULT_DPDK_DRIVER, NodeENISpec

PLAIN = NodeENISpec(node_selector={}, subnet_ids=("subnet-0a000001",), mtu=9001)
DPDK = NodeENISpec(
    node_selector={},
    subnet_ids=("subnet-0a000002",),
    enable_dpdk=True,
    dpdk_resource_name="intel.com/sriov_dpdk",
)
NODE = {"metadata": {"name": "n1", "uid": "node-uid-1"}}
OWNER = {
    "apiVersion": "v1",
    "kind": "Node",
    "name": "n1",
    "uid": "node-uid-1",
    "blockOwnerDeletion": False,
    "controller": False,
}


def _attached(
    eni: str, *, node: str = "n1", index: int = 1, state: AttachmentState | None = None, **kw: Any
) -> Attachment:
    return Attachment(
        node_id=node,
        eni_id=eni,
        mac_address=kw.pop("mac", f"02:AB:00:00:00:{eni[-2:]}"),
        device_index=index,
        status=state or AttachmentState.ATTACHED,
        **kw,
    )


def _report(eni: str, **fields: Any) -> InterfaceStatus:
    return InterfaceStatus(
        eni_id=eni,
        mac_address=fields.pop("mac", f"02:ab:00:00:00:{eni[-2:]}"),
        oper_state=fields.pop("oper_state", OperState.UP),
        **fields,
    )


# --- the desired spec -----------------------------------------------------------------


def test_one_entry_per_attached_eni_sorted_by_index_then_eni() -> None:
    holders = [
        Holder(
            nodeeni="plain",
            spec=PLAIN,
            attachments=(
                _attached("eni-09", index=2),
                _attached("eni-03", index=1),
                _attached("eni-05", index=3, state=AttachmentState.ATTACHING),
                _attached("eni-06", index=4, state=AttachmentState.DETACHING),
            ),
        ),
        Holder(nodeeni="dpdk", spec=DPDK, attachments=(_attached("eni-01", index=2),)),
    ]
    assert desired_interfaces(holders) == (
        WantedInterface(
            eni_id="eni-03",
            mac_address="02:ab:00:00:00:03",
            device_index=1,
            node_eni="plain",
            mtu=9001,
        ),
        WantedInterface(
            eni_id="eni-01",
            mac_address="02:ab:00:00:00:01",
            device_index=2,
            node_eni="dpdk",
            dpdk=DPDKRequest(driver=DEFAULT_DPDK_DRIVER, resource_name="intel.com/sriov_dpdk"),
        ),
        WantedInterface(
            eni_id="eni-09",
            mac_address="02:ab:00:00:00:09",
            device_index=2,
            node_eni="plain",
            mtu=9001,
        ),
    )


def test_dpdk_only_when_enabled_with_the_specs_driver_and_address() -> None:
    asked = NodeENISpec(
        node_selector={},
        enable_dpdk=True,
        dpdk_driver="igb_uio",
        dpdk_pci_address="0000:00:06.0",
    )
    # the driver and address without enableDPDK ask for nothing
    off = NodeENISpec(node_selector={}, dpdk_driver="igb_uio", dpdk_pci_address="0000:00:06.0")
    (bound,) = desired_interfaces(
        [Holder(nodeeni="a", spec=asked, attachments=(_attached("eni-01"),))]
    )
    (plain,) = desired_interfaces(
        [Holder(nodeeni="a", spec=off, attachments=(_attached("eni-01"),))]
    )
    assert bound.dpdk == DPDKRequest(driver="igb_uio", pci_address="0000:00:06.0")
    assert bound.to_dict()["dpdk"] == {"driver": "igb_uio", "pciAddress": "0000:00:06.0"}
    assert plain.dpdk is None
    assert "dpdk" not in plain.to_dict()
    assert "mtu" not in plain.to_dict()  # absent: the agent leaves the MTU alone


def test_an_invalid_spec_keeps_the_entries_of_the_enis_it_still_holds() -> None:
    current = desired_interfaces(
        [
            Holder(nodeeni="a", spec=DPDK, attachments=(_attached("eni-01"), _attached("eni-02"))),
            Holder(nodeeni="b", spec=PLAIN, attachments=(_attached("eni-03", index=3),)),
        ]
    )
    edited = desired_interfaces(
        [
            Holder(nodeeni="a", spec=None, attachments=(_attached("eni-01"),)),  # eni-02 went
            Holder(nodeeni="b", spec=PLAIN, attachments=(_attached("eni-03", index=3),)),
        ],
        current=current,
    )
    assert edited == (current[0], current[2])


def test_a_node_without_enis_gets_an_empty_list() -> None:
    assert desired_interfaces([]) == ()
    assert new_eninode("n1", (), owner=OWNER)["spec"] == {"interfaces": []}


def test_holder_reads_one_nodes_share_and_none_while_deleting() -> None:
    raw: dict[str, Any] = {
        "metadata": {"name": "a"},
        "spec": {
            "nodeSelector": {},
            "subnetID": "subnet-0a000001",
            "securityGroupIDs": ["sg-0a000001"],
            "mtu": 1500,
        },
        "status": {
            "attachments": [
                {"nodeID": "n1", "eniID": "eni-01", "status": "attached"},
                {"nodeID": "n2", "eniID": "eni-02", "status": "attached"},
                "junk",
            ]
        },
    }
    found = holder(raw, node="n1")
    assert found is not None
    assert found.nodeeni == "a"
    assert found.spec is not None
    assert found.spec.mtu == 1500
    assert [a.eni_id for a in found.attachments] == ["eni-01"]
    raw["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    assert holder(raw, node="n1") is None
    raw["spec"] = {"mtu": 1}
    del raw["metadata"]["deletionTimestamp"]
    invalid = holder(raw, node="n1")
    assert invalid is not None
    assert invalid.spec is None


def test_spec_entries_round_trip_and_junk_is_dropped() -> None:
    entries = desired_interfaces(
        [
            Holder(
                nodeeni="a",
                spec=DPDK,
                attachments=(_attached("eni-00000001"), _attached("eni-00000002", index=2)),
            )
        ]
    )
    body = new_eninode("n1", entries, owner=OWNER)
    body["spec"]["interfaces"].append({"eniID": "eni-00000003"})  # no MAC, index or NodeENI
    assert parse_spec(body["spec"])[0].interfaces == entries
    assert parse_spec("junk")[0].interfaces == ()


# --- the write ------------------------------------------------------------------------


def test_a_new_eninode_is_owned_by_its_node() -> None:
    entries = desired_interfaces(
        [Holder(nodeeni="a", spec=PLAIN, attachments=(_attached("eni-01"),))]
    )
    assert owner_reference(NODE) == OWNER
    assert owner_reference({"metadata": {"name": "n1"}}) is None
    assert new_eninode("n1", entries, owner=OWNER) == {
        "apiVersion": "networking.k8s.aws/v1alpha1",
        "kind": "ENINode",
        "metadata": {"name": "n1", "ownerReferences": [OWNER]},
        "spec": {
            "interfaces": [
                {
                    "eniID": "eni-01",
                    "macAddress": "02:ab:00:00:00:01",
                    "deviceIndex": 1,
                    "nodeENI": "a",
                    "mtu": 9001,
                }
            ]
        },
    }


def test_no_patch_when_spec_and_owner_are_as_wanted_and_only_what_differs_otherwise() -> None:
    entries = desired_interfaces(
        [Holder(nodeeni="a", spec=PLAIN, attachments=(_attached("eni-01"),))]
    )
    stored = new_eninode("n1", entries, owner=OWNER)
    stored["status"] = {"interfaces": [{"eniID": "eni-01", "macAddress": "02:ab:00:00:00:01"}]}
    assert spec_patch(stored, entries, owner=OWNER) is None
    assert spec_patch(stored, (), owner=OWNER) == {"spec": {"interfaces": []}}
    # the Node re-created under the same name: a new uid; someone else's owner is kept
    other = {"apiVersion": "example.com/v1", "kind": "Thing", "name": "x", "uid": "u"}
    stored["metadata"]["ownerReferences"].append(other)
    reborn = {**OWNER, "uid": "node-uid-2"}
    assert spec_patch(stored, entries, owner=reborn) == {
        "metadata": {"ownerReferences": [other, reborn]}
    }


# --- folding the reports --------------------------------------------------------------


def test_a_matching_report_fills_in_the_agents_facts() -> None:
    plain, dpdk = _attached("eni-01", mtu=9001), _attached("eni-02", node="n2")
    folded = fold_reports(
        [plain],
        reports={
            "n1": {
                "eni-01": _report("eni-01", interface_name="ens6", dpdk_bound=False, driver="ena")
            }
        },
        spec=PLAIN,
    )
    assert folded.attachments == (
        dataclasses.replace(plain, interface_name="ens6", dpdk_bound=False),
    )

    assert folded.errors == ()
    bound = fold_reports(
        [dpdk],
        reports={
            "n2": {
                "eni-02": _report(
                    "eni-02", dpdk_bound=True, driver="vfio-pci", pci_address="0000:00:06.0"
                )
            }
        },
        spec=DPDK,
    )
    (entry,) = bound.attachments
    assert (entry.interface_name, entry.dpdk_bound, entry.dpdk_driver) == (None, True, "vfio-pci")
    assert (entry.dpdk_pci_address, entry.dpdk_resource_name) == (
        "0000:00:06.0",
        "intel.com/sriov_dpdk",
    )


def test_a_stale_report_is_not_folded_and_clears_what_was_there() -> None:
    # the ENI was replaced: the new one has another id and MAC; the agent still
    # reports the old one (and a report for the new id with the old MAC is stale too)
    before = _attached("eni-02", interface_name="ens6", dpdk_bound=False)
    reports = {
        "n1": {
            "eni-01": _report("eni-01", interface_name="ens6", error="link down"),
            "eni-02": _report("eni-02", mac="02:ab:00:00:00:01", interface_name="ens7"),
        }
    }
    folded = fold_reports([before], reports=reports, spec=PLAIN)
    assert folded.attachments == (_attached("eni-02"),)
    assert folded.errors == ()


def test_a_node_without_an_eninode_keeps_its_entries_as_they_were() -> None:
    carried = _attached("eni-01", interface_name="ens6", dpdk_bound=True, dpdk_driver="vfio-pci")
    assert fold_reports([carried], reports={}, spec=PLAIN).attachments == (carried,)
    # an ENINode without a report for it: the agent has nothing to say yet
    assert fold_reports([carried], reports={"n1": {}}, spec=PLAIN).attachments == (
        _attached("eni-01"),
    )


def test_errors_become_one_condition_and_go_when_cleared() -> None:
    entries = [_attached("eni-01", node="n2"), _attached("eni-02", node="n1")]
    failing = {
        "n1": {"eni-02": _report("eni-02", interface_name="ens6", error="mtu 9001 above max 1500")},
        "n2": {"eni-01": _report("eni-01", error="driver vfio-pci not loaded")},
    }
    folded = fold_reports(entries, reports=failing, spec=PLAIN)
    assert folded.errors == (
        NodeError(
            node="n1", eni_id="eni-02", interface_name="ens6", message="mtu 9001 above max 1500"
        ),
        NodeError(
            node="n2", eni_id="eni-01", interface_name=None, message="driver vfio-pci not loaded"
        ),
    )
    (condition,) = node_error_conditions(folded.errors, generation=4)
    assert (condition.type, condition.status, condition.reason) == (
        "NodeInterfacesReady",
        ConditionStatus.FALSE,
        "NodeReportedError",
    )
    assert condition.message == (
        "2 ENIs with errors on their nodes: node n1: eni-02 (ens6): mtu 9001 above max 1500; "
        "node n2: eni-01: driver vfio-pci not loaded"
    )
    assert condition.observed_generation == 4
    cleared = {node: {eni: _report(eni) for eni in reports} for node, reports in failing.items()}
    assert fold_reports(entries, reports=cleared, spec=PLAIN).errors == ()
    assert node_error_conditions((), generation=4) == []


def test_reports_are_read_tolerantly() -> None:
    eninode = {
        "status": {
            "interfaces": [
                {
                    "eniID": "eni-01",
                    "macAddress": "02:ab:00:00:00:01",
                    "interfaceName": "ens6",
                    "operState": "up",
                    "dpdkBound": "yes",
                    "error": "",
                },
                {"eniID": "eni-02"},  # no MAC: cannot be matched
                "junk",
            ]
        }
    }
    assert parse_status(eninode["status"]).by_eni() == {
        "eni-01": InterfaceStatus(
            eni_id="eni-01",
            mac_address="02:ab:00:00:00:01",
            oper_state=OperState.UP,
            interface_name="ens6",
        )
    }
    assert parse_status(None).by_eni() == {}

"""The ENINode model: canonical spec and status, strict spec entries, tolerant status."""

from __future__ import annotations

import random
from typing import Any

import pytest

from eni_controller.eninode import (
    ERROR_MAX_LENGTH,
    MAX_INTERFACES,
    DPDKRequest,
    ENINode,
    ENINodeSpec,
    ENINodeStatus,
    InterfaceStatus,
    OperState,
    Summary,
    WantedInterface,
    eninode_body,
    one_line_error,
    parse_spec,
    parse_status,
)
from eni_controller.spec import DPDK_DRIVERS, MTU_MAX, MTU_MIN
from tests.harness.kube import CRD_DIR, load_crd

ENI_A, ENI_B, ENI_C = "eni-0a000000000000001", "eni-0b000000000000002", "eni-0c000000000000003"
MAC_A, MAC_B, MAC_C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"


def wanted(eni: str, mac: str, index: int, **extra: Any) -> WantedInterface:
    return WantedInterface(
        eni_id=eni, mac_address=mac, device_index=index, node_eni="multus", **extra
    )


def raw_entry(eni: str = ENI_A, mac: str = MAC_A, index: int = 1, **extra: Any) -> dict[str, Any]:
    return {"eniID": eni, "macAddress": mac, "deviceIndex": index, "nodeENI": "multus", **extra}


def test_spec_renders_in_one_order_whatever_the_input_order() -> None:
    entries = [
        wanted(ENI_C, MAC_C, 2),
        wanted(ENI_B, MAC_B, 1, mtu=9001),
        wanted(ENI_A, MAC_A, 2, dpdk=DPDKRequest(driver="vfio-pci", resource_name="intel.com/x")),
    ]
    renderings = []
    for seed in range(5):
        shuffled = entries[:]
        random.Random(seed).shuffle(shuffled)
        renderings.append(ENINodeSpec.of(shuffled).to_dict())
    assert all(r == renderings[0] for r in renderings)
    assert [e["eniID"] for e in renderings[0]["interfaces"]] == [ENI_B, ENI_A, ENI_C]


def test_spec_round_trips_and_leaves_optional_fields_out() -> None:
    spec = ENINodeSpec.of(
        [
            wanted(ENI_A, MAC_A, 1),
            wanted(
                ENI_B,
                MAC_B,
                2,
                mtu=9001,
                dpdk=DPDKRequest(driver="igb_uio", pci_address="0000:00:06.0"),
            ),
        ]
    )
    rendered = spec.to_dict()
    assert rendered["interfaces"][0] == raw_entry()
    assert rendered["interfaces"][1]["dpdk"] == {
        "driver": "igb_uio",
        "pciAddress": "0000:00:06.0",
    }
    assert parse_spec(rendered) == (spec, ())


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("eniID", "eni-xyz", 'spec.interfaces[1].eniID: "eni-xyz" is not an ENI id'),
        ("macAddress", "02:AB:00:00:00:01", "spec.interfaces[1].macAddress: "),
        ("deviceIndex", 0, "spec.interfaces[1].deviceIndex: 0 is out of range (1..255)"),
        ("deviceIndex", True, "spec.interfaces[1].deviceIndex: must be an integer, got boolean"),
        ("mtu", 9002, "spec.interfaces[1].mtu: 9002 is out of range (576..9001)"),
        ("mtu", "9001", "spec.interfaces[1].mtu: must be an integer, got string"),
        ("nodeENI", "Bad_Name", "spec.interfaces[1].nodeENI: "),
        ("dpdk", {"driver": "e1000"}, "spec.interfaces[1].dpdk.driver: "),
        ("dpdk", {}, "spec.interfaces[1].dpdk.driver: is required"),
        (
            "dpdk",
            {"driver": "vfio-pci", "pciAddress": "06.0"},
            "spec.interfaces[1].dpdk.pciAddress",
        ),
        ("dpdk", [], "spec.interfaces[1].dpdk: must be an object"),
    ],
)
def test_a_bad_entry_is_dropped_with_its_path_and_the_others_kept(
    field: str, value: object, problem: str
) -> None:
    bad = raw_entry(ENI_B, MAC_B, 2)
    bad[field] = value
    spec, problems = parse_spec({"interfaces": [raw_entry(), bad, raw_entry(ENI_C, MAC_C, 3)]})
    assert [e.eni_id for e in spec.interfaces] == [ENI_A, ENI_C]
    (found,) = problems
    assert found.message.startswith(problem), found.message
    # the entry's id and MAC are kept when readable, for the agent to report against
    assert found.eni_id == (None if field == "eniID" else ENI_B)
    assert found.mac_address == ("" if field == "macAddress" else MAC_B)


def test_missing_fields_are_each_named() -> None:
    spec, problems = parse_spec({"interfaces": [{"eniID": ENI_A}]})
    assert spec == ENINodeSpec()
    (found,) = problems
    assert found.message == (
        "spec.interfaces[0].macAddress: is required; spec.interfaces[0].deviceIndex: is required;"
        " spec.interfaces[0].nodeENI: is required"
    )


def test_an_eni_or_mac_listed_twice_keeps_the_first() -> None:
    entries = [raw_entry(), raw_entry(index=2), raw_entry(ENI_B, MAC_A, 3)]
    spec, problems = parse_spec({"interfaces": entries})
    assert spec == ENINodeSpec.of([wanted(ENI_A, MAC_A, 1)])
    assert [p.message for p in problems] == [
        f"spec.interfaces[1].eniID: {ENI_A} is listed twice",
        f"spec.interfaces[2].macAddress: {MAC_A} is also the MAC of {ENI_A}",
    ]


def test_more_entries_than_the_schema_allows_are_cut_with_a_problem() -> None:
    entries = [
        raw_entry(f"eni-{i:017x}", "02:00:00:00:" + f"{i:04x}"[:2] + ":" + f"{i:04x}"[2:], 1)
        for i in range(MAX_INTERFACES + 2)
    ]
    spec, problems = parse_spec({"interfaces": entries})
    assert len(spec.interfaces) == MAX_INTERFACES
    assert problems[0].message.startswith(f"spec.interfaces: {MAX_INTERFACES + 2} entries")


@pytest.mark.parametrize("empty", [None, {}, {"interfaces": None}, {"interfaces": []}])
def test_no_list_is_an_empty_spec(empty: object) -> None:
    assert parse_spec(empty) == (ENINodeSpec(), ())


@pytest.mark.parametrize("junk", [[], "x", 3, {"interfaces": "x"}, {"interfaces": [1, None]}])
def test_junk_spec_never_raises_and_says_why(junk: object) -> None:
    spec, problems = parse_spec(junk)
    assert spec == ENINodeSpec()
    assert problems
    assert all(p.message.startswith("spec") for p in problems)


def test_status_round_trips_and_omits_what_is_unknown() -> None:
    status = ENINodeStatus(
        observed_generation=3,
        summary=Summary(wanted=2, ready=1),
        interfaces=(
            InterfaceStatus(
                eni_id=ENI_A,
                mac_address=MAC_A,
                oper_state=OperState.UP,
                interface_name="ens6",
                mtu=9001,
                observed_at="2026-12-04T10:00:00Z",
            ),
            InterfaceStatus(
                eni_id=ENI_B,
                mac_address=MAC_B,
                oper_state=OperState.ABSENT,
                error="no link",
                observed_at="2026-12-04T10:00:01Z",
            ),
        ),
    )
    rendered = status.to_dict()
    assert rendered["interfaces"][0] == {
        "eniID": ENI_A,
        "macAddress": MAC_A,
        "interfaceName": "ens6",
        "mtu": 9001,
        "operState": "up",
        "dpdkBound": False,
        "observedAt": "2026-12-04T10:00:00Z",
    }
    assert "error" not in rendered["interfaces"][0]
    assert parse_status(rendered) == status


def test_status_is_read_tolerantly() -> None:
    raw = {
        "observedGeneration": "3",
        "summary": {"wanted": "x"},
        "interfaces": [
            {"eniID": ENI_A, "macAddress": MAC_A, "operState": "sideways"},
            {"eniID": ENI_B, "macAddress": MAC_B, "operState": "up", "mtu": "big", "dpdkBound": 1},
            "junk",
        ],
    }
    status = parse_status(raw)
    assert status.observed_generation is None
    assert status.summary == Summary()
    assert status.interfaces == (
        InterfaceStatus(eni_id=ENI_B, mac_address=MAC_B, oper_state=OperState.UP),
    )


def test_facts_ignore_the_timestamp_only() -> None:
    a = InterfaceStatus(eni_id=ENI_A, mac_address=MAC_A, oper_state=OperState.UP, observed_at="t1")
    b = InterfaceStatus(eni_id=ENI_A, mac_address=MAC_A, oper_state=OperState.UP, observed_at="t2")
    c = InterfaceStatus(
        eni_id=ENI_A, mac_address=MAC_A, oper_state=OperState.DOWN, observed_at="t1"
    )
    assert a.facts() == b.facts()
    assert a.facts() != c.facts()


def test_an_object_reads_into_spec_problems_and_status() -> None:
    body = eninode_body(
        node_name="node-1", node_uid="uid-1", spec=ENINodeSpec.of([wanted(ENI_A, MAC_A, 1)])
    )
    body["metadata"]["generation"] = 2
    body["spec"]["interfaces"].append({"eniID": ENI_B})
    body["status"] = {"summary": {"wanted": 1, "ready": 0}, "interfaces": []}
    node = ENINode.from_dict(body)
    assert node.name == "node-1"
    assert node.generation == 2
    assert node.spec == ENINodeSpec.of([wanted(ENI_A, MAC_A, 1)])
    assert [p.eni_id for p in node.spec_problems] == [ENI_B]
    assert node.raw_status == body["status"]
    (owner,) = body["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "v1",
        "kind": "Node",
        "name": "node-1",
        "uid": "uid-1",
        "blockOwnerDeletion": False,
        "controller": False,
    }


def test_the_crd_schema_and_the_model_agree() -> None:
    crd = load_crd(CRD_DIR / "networking.k8s.aws_eninodes.yaml")
    (version,) = crd["spec"]["versions"]
    assert crd["spec"]["names"]["plural"] == "eninodes"
    assert crd["spec"]["scope"] == "Cluster"
    assert version["subresources"] == {"status": {}}
    props = version["schema"]["openAPIV3Schema"]["properties"]
    interfaces = props["spec"]["properties"]["interfaces"]
    assert interfaces["maxItems"] == MAX_INTERFACES
    entry = interfaces["items"]["properties"]
    assert (entry["mtu"]["minimum"], entry["mtu"]["maximum"]) == (MTU_MIN, MTU_MAX)
    assert tuple(entry["dpdk"]["properties"]["driver"]["enum"]) == DPDK_DRIVERS
    reported = props["status"]["properties"]["interfaces"]["items"]["properties"]
    assert reported["operState"]["enum"] == [s.value for s in OperState]
    assert reported["error"]["maxLength"] == ERROR_MAX_LENGTH
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Node": ".metadata.name",
        "ENIs": ".status.summary.wanted",
        "Ready": ".status.summary.ready",
        "Age": ".metadata.creationTimestamp",
    }


def test_an_error_is_reported_on_one_bounded_line() -> None:
    assert one_line_error("set mtu 9001 on ens6:\n  Invalid argument ") == (
        "set mtu 9001 on ens6: Invalid argument"
    )
    long = one_line_error("x" * (ERROR_MAX_LENGTH * 2))
    assert len(long) == ERROR_MAX_LENGTH
    assert long.endswith("...")

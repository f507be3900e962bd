"""Unit tests for eni_controller.model: spec validation and status round trips."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from moto.ec2.models.instance_types import INSTANCE_TYPES

from eni_controller import model
from eni_controller.model import (
    Attachment,
    AttachmentState,
    Condition,
    ConditionStatus,
    NodeENI,
    NodeENIStatus,
)
from eni_controller.spec import (
    DEVICE_INDEX_MAX,
    DPDK_DRIVERS,
    DPDK_RESOURCE_NAME_MAX_LENGTH,
    NODE_SELECTOR_MAX_ENTRIES,
    SECURITY_GROUP_NAME_MAX_LENGTH,
    SECURITY_GROUPS_MAX,
    SUBNET_NAME_MAX_LENGTH,
    SUBNETS_MAX,
    NodeENISpec,
    parse_spec,
)
from tests.harness.kube import load_crd
from tests.samples import INVALID_SPECS, SG_A, SUBNET_A, SUBNET_B, VALID_SPECS

SG_B = "sg-0fedcba9876543210"
DROP = object()
"""A change that removes the field from the base spec."""

BASE: dict[str, Any] = {
    "nodeSelector": {"ng": "multus"},
    "subnetID": SUBNET_A,
    "securityGroupIDs": [SG_A],
}


def spec_with(**changes: object) -> dict[str, Any]:
    spec = {**BASE, **changes}
    return {key: value for key, value in spec.items() if value is not DROP}


def valid(raw: object, **defaults: Any) -> NodeENISpec:
    spec, problems = parse_spec(raw, **defaults)
    assert problems == ()
    assert spec is not None
    return spec


def problems_of(raw: object) -> tuple[str, ...]:
    spec, problems = parse_spec(raw)
    assert spec is None
    return problems


# --- accepted specs ---------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(VALID_SPECS))
def test_shared_spec_samples_are_accepted(case: str) -> None:
    valid(VALID_SPECS[case])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {
                "nodeSelector": {"ng": "multus"},
                "subnetID": SUBNET_A,
                "securityGroupIDs": [SG_A, SG_B],
            },
            NodeENISpec(
                node_selector={"ng": "multus"},
                subnet_ids=(SUBNET_A,),
                security_group_ids=(SG_A, SG_B),
            ),
            id="subnetID-and-sg-ids",
        ),
        pytest.param(
            {
                "nodeSelector": {"kubernetes.io/os": "linux", "ng": "multus"},
                "subnetIDs": [SUBNET_B, SUBNET_A],
                "securityGroupIDs": ["sg-1234abcd"],
                "deviceIndex": 3,
                "deleteOnTermination": False,
                "description": "Multus secondary network",
            },
            NodeENISpec(
                node_selector={"kubernetes.io/os": "linux", "ng": "multus"},
                subnet_ids=(SUBNET_B, SUBNET_A),
                security_group_ids=("sg-1234abcd",),
                device_index=3,
                delete_on_termination=False,
                description="Multus secondary network",
            ),
            id="multi-subnet-ids",
        ),
        pytest.param(
            {
                "nodeSelector": {"ng": "multus"},
                "subnetName": "multus-a",
                "subnetNames": ["multus-b", "multus-c"],
                "securityGroupNames": ["multus-sg", "allow-ssh"],
            },
            NodeENISpec(
                node_selector={"ng": "multus"},
                subnet_names=("multus-a", "multus-b", "multus-c"),
                security_group_names=("multus-sg", "allow-ssh"),
            ),
            id="names",
        ),
        pytest.param(
            {
                **BASE,
                "enableDPDK": True,
                "dpdkDriver": "igb_uio",
                "dpdkResourceName": "intel.com/sriov_dpdk",
                "dpdkPCIAddress": "0000:00:1F.7",
            },
            NodeENISpec(
                node_selector={"ng": "multus"},
                subnet_ids=(SUBNET_A,),
                security_group_ids=(SG_A,),
                enable_dpdk=True,
                dpdk_driver="igb_uio",
                dpdk_resource_name="intel.com/sriov_dpdk",
                dpdk_pci_address="0000:00:1F.7",
            ),
            id="dpdk",
        ),
        pytest.param(
            {**BASE, "mtu": 9001},
            NodeENISpec(
                node_selector={"ng": "multus"},
                subnet_ids=(SUBNET_A,),
                security_group_ids=(SG_A,),
                mtu=9001,
            ),
            id="jumbo-mtu",
        ),
        pytest.param(
            {**BASE, "nodeSelector": {}},
            NodeENISpec(node_selector={}, subnet_ids=(SUBNET_A,), security_group_ids=(SG_A,)),
            id="every-node",
        ),
        pytest.param(
            {
                **BASE,
                "nodeSelector": {
                    "node.kubernetes.io/instance-type": "c5n.18xlarge",
                    "example.com/empty": "",
                    "a_b.c-d": "X_y.z-1",
                    "a" * 63: "b" * 63,
                    "p" * 253 + "/name": "v",
                },
            },
            NodeENISpec(
                node_selector={
                    "node.kubernetes.io/instance-type": "c5n.18xlarge",
                    "example.com/empty": "",
                    "a_b.c-d": "X_y.z-1",
                    "a" * 63: "b" * 63,
                    "p" * 253 + "/name": "v",
                },
                subnet_ids=(SUBNET_A,),
                security_group_ids=(SG_A,),
            ),
            id="label-syntax-limits",
        ),
        pytest.param(
            {**BASE, "unknownField": {"anything": [1]}, "subnetIDs": []},
            NodeENISpec(
                node_selector={"ng": "multus"}, subnet_ids=(SUBNET_A,), security_group_ids=(SG_A,)
            ),
            id="unknown-fields-and-empty-list-ignored",
        ),
    ],
)
def test_spec_samples_are_parsed(raw: dict[str, Any], expected: NodeENISpec) -> None:
    assert valid(raw) == expected


# --- rejected specs: one rule per case, exact message -----------------------------


@pytest.mark.parametrize("case", sorted(INVALID_SPECS))
def test_specs_the_schema_rejects_are_rejected(case: str) -> None:
    assert problems_of(INVALID_SPECS[case])


LABEL_CHARS = (
    "must start and end with a letter or digit and contain only letters, digits, '-', '_' and '.'"
)
SUBNET_ID_FORMAT = '(expected "subnet-" followed by 8 or 17 lowercase hex digits)'
SG_ID_FORMAT = '(expected "sg-" followed by 8 or 17 lowercase hex digits)'
PCI_FORMAT = "(expected DDDD:BB:DD.F in hex, device 00-1f, function 0-7, e.g. 0000:00:06.0)"
NO_SUBNET = (
    "spec: at least one subnet is required (set subnetID, subnetIDs, subnetName or subnetNames)"
)
NO_SG = "spec: at least one security group is required (set securityGroupIDs or securityGroupNames)"

REJECTED: list[Any] = [
    # nodeSelector
    pytest.param(
        spec_with(nodeSelector=DROP),
        "spec.nodeSelector: is required (use {} to select every node)",
        id="selector-missing",
    ),
    pytest.param(
        spec_with(nodeSelector=["ng=multus"]),
        "spec.nodeSelector: must be an object mapping label keys to values,"
        ' got array ["ng=multus"]',
        id="selector-list",
    ),
    pytest.param(
        spec_with(nodeSelector={"ng": 1}),
        'spec.nodeSelector["ng"]: must be a string, got number 1',
        id="selector-value-number",
    ),
    pytest.param(
        spec_with(nodeSelector={"ng": True}),
        'spec.nodeSelector["ng"]: must be a string, got boolean true',
        id="selector-value-bool",
    ),
    pytest.param(
        spec_with(nodeSelector={"node group": "a"}),
        f'spec.nodeSelector: key "node group" is not a valid label key: the name {LABEL_CHARS}',
        id="selector-key-space",
    ),
    pytest.param(
        spec_with(nodeSelector={"": "a"}),
        'spec.nodeSelector: key "" is not a valid label key: the name must not be empty',
        id="selector-key-empty",
    ),
    pytest.param(
        spec_with(nodeSelector={"a" * 64: "a"}),
        f'spec.nodeSelector: key "{"a" * 57}..." is not a valid label key:'
        " the name is 64 characters long (at most 63 allowed)",
        id="selector-key-name-too-long",
    ),
    pytest.param(
        spec_with(nodeSelector={"example.com/": "a"}),
        'spec.nodeSelector: key "example.com/" is not a valid label key:'
        " the name must not be empty",
        id="selector-key-name-empty",
    ),
    pytest.param(
        spec_with(nodeSelector={"/ng": "a"}),
        'spec.nodeSelector: key "/ng" is not a valid label key:'
        " the prefix before '/' must not be empty",
        id="selector-key-prefix-empty",
    ),
    pytest.param(
        spec_with(nodeSelector={"a/b/c": "a"}),
        'spec.nodeSelector: key "a/b/c" is not a valid label key: use at most one'
        " '/', between an optional DNS subdomain prefix and the name",
        id="selector-key-two-slashes",
    ),
    pytest.param(
        spec_with(nodeSelector={"Example.com/ng": "a"}),
        'spec.nodeSelector: key "Example.com/ng" is not a valid label key: the prefix must'
        " be a lowercase DNS subdomain (letters, digits, '-' and '.', starting and ending"
        " with a letter or digit, e.g. example.com)",
        id="selector-key-prefix-uppercase",
    ),
    pytest.param(
        spec_with(nodeSelector={"p" * 254 + "/ng": "a"}),
        f'spec.nodeSelector: key "{"p" * 57}..." is not a valid label key:'
        " the prefix is 254 characters long (at most 253 allowed)",
        id="selector-key-prefix-too-long",
    ),
    pytest.param(
        spec_with(nodeSelector={"ng": "-multus"}),
        f'spec.nodeSelector["ng"]: "-multus" is not a valid label value: it {LABEL_CHARS}',
        id="selector-value-leading-dash",
    ),
    pytest.param(
        spec_with(nodeSelector={"ng": "a/b"}),
        f'spec.nodeSelector["ng"]: "a/b" is not a valid label value: it {LABEL_CHARS}',
        id="selector-value-slash",
    ),
    pytest.param(
        spec_with(nodeSelector={"ng": "v" * 64}),
        f'spec.nodeSelector["ng"]: "{"v" * 57}..." is not a valid label value:'
        " it is 64 characters long (at most 63 allowed)",
        id="selector-value-too-long",
    ),
    # subnets
    pytest.param(
        spec_with(subnetID="subnet-123"),
        f'spec.subnetID: "subnet-123" is not a valid subnet ID {SUBNET_ID_FORMAT}',
        id="subnetID-short",
    ),
    pytest.param(
        spec_with(subnetID="subnet-0123456789ABCDEF0"),
        f'spec.subnetID: "subnet-0123456789ABCDEF0" is not a valid subnet ID {SUBNET_ID_FORMAT}',
        id="subnetID-uppercase",
    ),
    pytest.param(
        spec_with(subnetID=SUBNET_A + "\n"),
        f'spec.subnetID: "{SUBNET_A}\\n" is not a valid subnet ID {SUBNET_ID_FORMAT}',
        id="subnetID-trailing-newline",
    ),
    pytest.param(
        spec_with(subnetID=SG_A),
        f'spec.subnetID: "{SG_A}" is not a valid subnet ID {SUBNET_ID_FORMAT}',
        id="subnetID-is-sg",
    ),
    pytest.param(
        spec_with(subnetID=[SUBNET_A]),
        f'spec.subnetID: must be a string, got array ["{SUBNET_A}"]',
        id="subnetID-list",
    ),
    pytest.param(
        spec_with(subnetID=DROP, subnetIDs=SUBNET_A),
        f'spec.subnetIDs: must be an array of strings, got string "{SUBNET_A}"',
        id="subnetIDs-string",
    ),
    pytest.param(
        spec_with(subnetIDs=[SUBNET_B, "subnet-zz"]),
        f'spec.subnetIDs[1]: "subnet-zz" is not a valid subnet ID {SUBNET_ID_FORMAT}',
        id="subnetIDs-item-format",
    ),
    pytest.param(
        spec_with(subnetIDs=[SUBNET_B, None]),
        "spec.subnetIDs[1]: must be a string, got null",
        id="subnetIDs-item-null",
    ),
    pytest.param(
        spec_with(subnetID=DROP, subnetIDs=[SUBNET_A, SUBNET_B, SUBNET_A]),
        f'spec.subnetIDs[2]: "{SUBNET_A}" is listed twice (first at spec.subnetIDs[0])',
        id="subnetIDs-duplicate",
    ),
    pytest.param(
        spec_with(subnetIDs=[SUBNET_B, SUBNET_A]),
        f'spec.subnetIDs[1]: "{SUBNET_A}" is listed twice (first at spec.subnetID)',
        id="subnetID-repeated-in-subnetIDs",
    ),
    pytest.param(
        spec_with(subnetName=""),
        "spec.subnetName: must not be empty",
        id="subnetName-empty",
    ),
    pytest.param(
        spec_with(subnetName="n" * 257),
        "spec.subnetName: is 257 characters long (at most 256 allowed)",
        id="subnetName-too-long",
    ),
    pytest.param(
        spec_with(subnetNames=["a", "b", "a"]),
        'spec.subnetNames[2]: "a" is listed twice (first at spec.subnetNames[0])',
        id="subnetNames-duplicate",
    ),
    pytest.param(
        spec_with(subnetName="a", subnetNames=["a"]),
        'spec.subnetNames[0]: "a" is listed twice (first at spec.subnetName)',
        id="subnetName-repeated-in-subnetNames",
    ),
    pytest.param(spec_with(subnetID=DROP), NO_SUBNET, id="no-subnet"),
    pytest.param(
        spec_with(subnetID=DROP, subnetIDs=[], subnetNames=[]), NO_SUBNET, id="empty-subnet-lists"
    ),
    # security groups
    pytest.param(
        spec_with(securityGroupIDs=["sg-123"]),
        f'spec.securityGroupIDs[0]: "sg-123" is not a valid security group ID {SG_ID_FORMAT}',
        id="sg-id-format",
    ),
    pytest.param(
        spec_with(securityGroupIDs=SG_A),
        f'spec.securityGroupIDs: must be an array of strings, got string "{SG_A}"',
        id="sg-ids-string",
    ),
    pytest.param(
        spec_with(securityGroupIDs=[SG_A, SG_B, SG_A]),
        f'spec.securityGroupIDs[2]: "{SG_A}" is listed twice (first at spec.securityGroupIDs[0])',
        id="sg-ids-duplicate",
    ),
    pytest.param(
        spec_with(securityGroupNames=["web", "web"]),
        'spec.securityGroupNames[1]: "web" is listed twice (first at spec.securityGroupNames[0])',
        id="sg-names-duplicate",
    ),
    pytest.param(
        spec_with(securityGroupNames=[""]),
        "spec.securityGroupNames[0]: must not be empty",
        id="sg-name-empty",
    ),
    pytest.param(
        spec_with(securityGroupNames=["g" * 256]),
        "spec.securityGroupNames[0]: is 256 characters long (at most 255 allowed)",
        id="sg-name-too-long",
    ),
    pytest.param(
        spec_with(securityGroupIDs=[f"sg-{n:017x}" for n in range(17)]),
        "spec.securityGroupIDs: has 17 items (at most 16 allowed)",
        id="sg-ids-too-many",
    ),
    pytest.param(
        spec_with(
            securityGroupIDs=[f"sg-{n:017x}" for n in range(9)],
            securityGroupNames=[f"g{n}" for n in range(8)],
        ),
        "spec: 17 security groups in securityGroupIDs and securityGroupNames together"
        " (at most 16 per ENI allowed)",
        id="sg-sum-too-many",
    ),
    pytest.param(
        spec_with(subnetID=DROP, subnetNames=[f"s{n}" for n in range(65)]),
        "spec.subnetNames: has 65 items (at most 64 allowed)",
        id="subnet-names-too-many",
    ),
    pytest.param(
        spec_with(nodeSelector={f"k{n}": "v" for n in range(33)}),
        "spec.nodeSelector: has 33 entries (at most 32 allowed)",
        id="selector-too-many-entries",
    ),
    pytest.param(
        spec_with(dpdkResourceName="r" * 254),
        "spec.dpdkResourceName: is 254 characters long (at most 253 allowed)",
        id="dpdk-resource-name-too-long",
    ),
    pytest.param(spec_with(securityGroupIDs=DROP), NO_SG, id="no-sg"),
    pytest.param(spec_with(securityGroupIDs=[]), NO_SG, id="empty-sg-list"),
    # deviceIndex
    pytest.param(
        spec_with(deviceIndex=0),
        "spec.deviceIndex: 0 is out of range (1..79; 0 is the instance's primary ENI)",
        id="deviceIndex-0",
    ),
    pytest.param(
        spec_with(deviceIndex=-1),
        "spec.deviceIndex: -1 is out of range (1..79; 0 is the instance's primary ENI)",
        id="deviceIndex-negative",
    ),
    pytest.param(
        spec_with(deviceIndex=80),
        "spec.deviceIndex: 80 is out of range (1..79; 0 is the instance's primary ENI)",
        id="deviceIndex-past-the-largest-instance-type",
    ),
    pytest.param(
        spec_with(deviceIndex="2"),
        'spec.deviceIndex: must be an integer, got string "2"',
        id="deviceIndex-string",
    ),
    pytest.param(
        spec_with(deviceIndex=True),
        "spec.deviceIndex: must be an integer, got boolean true",
        id="deviceIndex-bool",
    ),
    pytest.param(
        spec_with(deviceIndex=1.5),
        "spec.deviceIndex: must be an integer, got number 1.5",
        id="deviceIndex-float",
    ),
    # deleteOnTermination
    pytest.param(
        spec_with(deleteOnTermination=1),
        "spec.deleteOnTermination: must be true or false, got number 1",
        id="deleteOnTermination-int",
    ),
    pytest.param(
        spec_with(deleteOnTermination="false"),
        'spec.deleteOnTermination: must be true or false, got string "false"',
        id="deleteOnTermination-string",
    ),
    # description
    pytest.param(
        spec_with(description="d" * 256),
        "spec.description: is 256 characters long (at most 255 allowed)",
        id="description-too-long",
    ),
    pytest.param(
        spec_with(description={"text": "x"}),
        'spec.description: must be a string, got object {"text": "x"}',
        id="description-object",
    ),
    # mtu
    pytest.param(
        spec_with(mtu=10000), "spec.mtu: 10000 is out of range (576..9001)", id="mtu-too-big"
    ),
    pytest.param(spec_with(mtu=9002), "spec.mtu: 9002 is out of range (576..9001)", id="mtu-9002"),
    pytest.param(spec_with(mtu=575), "spec.mtu: 575 is out of range (576..9001)", id="mtu-575"),
    pytest.param(
        spec_with(mtu="1500"), 'spec.mtu: must be an integer, got string "1500"', id="mtu-string"
    ),
    pytest.param(
        spec_with(mtu=False), "spec.mtu: must be an integer, got boolean false", id="mtu-bool"
    ),
    # DPDK
    pytest.param(
        spec_with(enableDPDK="yes"),
        'spec.enableDPDK: must be true or false, got string "yes"',
        id="enableDPDK-string",
    ),
    pytest.param(
        spec_with(enableDPDK=1),
        "spec.enableDPDK: must be true or false, got number 1",
        id="enableDPDK-int",
    ),
    pytest.param(
        spec_with(enableDPDK=True, dpdkDriver="mlx5_core"),
        'spec.dpdkDriver: "mlx5_core" is not a supported DPDK driver'
        " (use vfio-pci, igb_uio, uio_pci_generic)",
        id="dpdkDriver-unknown",
    ),
    pytest.param(
        spec_with(dpdkDriver=""),
        'spec.dpdkDriver: "" is not a supported DPDK driver'
        " (use vfio-pci, igb_uio, uio_pci_generic)",
        id="dpdkDriver-empty",
    ),
    pytest.param(
        spec_with(dpdkResourceName=""),
        "spec.dpdkResourceName: must not be empty",
        id="dpdkResourceName-empty",
    ),
    pytest.param(
        spec_with(dpdkResourceName=["intel.com/x"]),
        'spec.dpdkResourceName: must be a string, got array ["intel.com/x"]',
        id="dpdkResourceName-list",
    ),
    pytest.param(
        spec_with(dpdkPCIAddress="0000:00:20.0"),
        f'spec.dpdkPCIAddress: "0000:00:20.0" is not a PCI address {PCI_FORMAT}',
        id="pci-device-20",
    ),
    pytest.param(
        spec_with(dpdkPCIAddress="0000:00:06.8"),
        f'spec.dpdkPCIAddress: "0000:00:06.8" is not a PCI address {PCI_FORMAT}',
        id="pci-function-8",
    ),
    pytest.param(
        spec_with(dpdkPCIAddress="0000:0g:06.0"),
        f'spec.dpdkPCIAddress: "0000:0g:06.0" is not a PCI address {PCI_FORMAT}',
        id="pci-bus-not-hex",
    ),
    pytest.param(
        spec_with(dpdkPCIAddress="00:06.0"),
        f'spec.dpdkPCIAddress: "00:06.0" is not a PCI address {PCI_FORMAT}',
        id="pci-no-domain",
    ),
    pytest.param(
        spec_with(dpdkPCIAddress="0000:00:06.0\n"),
        f'spec.dpdkPCIAddress: "0000:00:06.0\\n" is not a PCI address {PCI_FORMAT}',
        id="pci-trailing-newline",
    ),
    # the spec itself
    pytest.param(None, "spec: is missing", id="spec-missing"),
    pytest.param([], "spec: must be an object, got array []", id="spec-list"),
    pytest.param(
        "nodeSelector: {}",
        'spec: must be an object, got string "nodeSelector: {}"',
        id="spec-string",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), REJECTED)
def test_each_rule_is_reported_naming_its_field(raw: object, expected: str) -> None:
    assert problems_of(raw) == (expected,)


def test_every_problem_is_reported_in_field_order() -> None:
    raw = {
        "nodeSelector": {"bad key": "ok"},
        "subnetIDs": ["subnet-1", SUBNET_A, SUBNET_A],
        "securityGroupIDs": [],
        "deviceIndex": 0,
        "deleteOnTermination": "yes",
        "mtu": 10000,
        "dpdkPCIAddress": "junk",
    }
    assert problems_of(raw) == (
        f'spec.nodeSelector: key "bad key" is not a valid label key: the name {LABEL_CHARS}',
        f'spec.subnetIDs[0]: "subnet-1" is not a valid subnet ID {SUBNET_ID_FORMAT}',
        f'spec.subnetIDs[2]: "{SUBNET_A}" is listed twice (first at spec.subnetIDs[1])',
        NO_SG,
        "spec.deviceIndex: 0 is out of range (1..79; 0 is the instance's primary ENI)",
        'spec.deleteOnTermination: must be true or false, got string "yes"',
        "spec.mtu: 10000 is out of range (576..9001)",
        f'spec.dpdkPCIAddress: "junk" is not a PCI address {PCI_FORMAT}',
    )


def test_missing_selector_subnet_and_sg_are_all_reported() -> None:
    assert problems_of({}) == (
        "spec.nodeSelector: is required (use {} to select every node)",
        NO_SUBNET,
        NO_SG,
    )


FIELDS = (
    "nodeSelector",
    "subnetID",
    "subnetIDs",
    "subnetName",
    "subnetNames",
    "securityGroupIDs",
    "securityGroupNames",
    "deviceIndex",
    "deleteOnTermination",
    "description",
    "mtu",
    "enableDPDK",
    "dpdkDriver",
    "dpdkResourceName",
    "dpdkPCIAddress",
)


@pytest.mark.parametrize("junk", [1.5, [{"a": 1}], {"k": []}], ids=["float", "objects", "object"])
@pytest.mark.parametrize("field", FIELDS)
def test_wrong_json_types_are_reported_not_raised(field: str, junk: object) -> None:
    problems = problems_of(spec_with(**{field: junk}))
    assert len(problems) == 1
    assert problems[0].startswith(f"spec.{field}")
    assert "must be" in problems[0]


def test_huge_junk_is_shortened_in_the_message() -> None:
    (problem,) = problems_of(spec_with(description=list(range(1000))))
    assert problem == (
        "spec.description: must be a string, got array"
        " [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16..."
    )


# --- defaults -----------------------------------------------------------------------


def test_defaults() -> None:
    spec = valid(BASE)
    assert spec.device_index == 1
    assert spec.delete_on_termination is True
    assert spec.description is None
    assert spec.mtu is None
    assert spec.enable_dpdk is False
    assert spec.dpdk_driver is None
    assert spec.eni_description("ip-10-0-1-5.ec2.internal") == (
        "ENI created by nodeeni-controller for node ip-10-0-1-5.ec2.internal"
    )


def test_defaults_can_be_overridden_by_configuration() -> None:
    spec = valid(BASE, default_device_index=2, default_delete_on_termination=False)
    assert spec.device_index == 2
    assert spec.delete_on_termination is False


def test_spec_values_win_over_configured_defaults() -> None:
    raw = spec_with(deviceIndex=1, deleteOnTermination=True)
    spec = valid(raw, default_device_index=3, default_delete_on_termination=False)
    assert spec.device_index == 1
    assert spec.delete_on_termination is True


def test_description_from_spec_is_used_as_is() -> None:
    assert valid(spec_with(description="multus net1")).eni_description("n1") == "multus net1"
    assert valid(spec_with(description="")).eni_description("n1") == ""


@pytest.mark.parametrize(
    ("dpdk", "expected_driver"),
    [
        ({"enableDPDK": True}, "vfio-pci"),
        ({"enableDPDK": True, "dpdkDriver": "uio_pci_generic"}, "uio_pci_generic"),
        ({"enableDPDK": False}, None),
        ({"dpdkDriver": "igb_uio"}, "igb_uio"),
    ],
)
def test_dpdk_driver_default(dpdk: dict[str, Any], expected_driver: str | None) -> None:
    assert valid(spec_with(**dpdk)).dpdk_driver == expected_driver


def test_subnets_keep_order_single_field_first() -> None:
    spec = valid(
        spec_with(
            subnetID=SUBNET_B,
            subnetIDs=["subnet-1234abcd", SUBNET_A],
            subnetName="z-net",
            subnetNames=["b-net", "a-net"],
            securityGroupIDs=[SG_B, SG_A],
            securityGroupNames=["web", "db"],
        )
    )
    assert spec.subnet_ids == (SUBNET_B, "subnet-1234abcd", SUBNET_A)
    assert spec.subnet_names == ("z-net", "b-net", "a-net")
    assert spec.security_group_ids == (SG_B, SG_A)
    assert spec.security_group_names == ("web", "db")


# --- matching and immutability -------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({}, {"ng": "multus"}, True),
        ({"ng": "multus"}, {"ng": "multus", "zone": "a"}, True),
        ({"ng": "multus", "zone": "a"}, {"ng": "multus"}, False),
        ({"ng": "multus"}, {"ng": "other"}, False),
        ({"ng": ""}, {"ng": ""}, True),
        ({"ng": ""}, {}, False),
    ],
)
def test_matches(selector: dict[str, str], labels: dict[str, str], expected: bool) -> None:
    assert valid(spec_with(nodeSelector=selector)).matches(labels) is expected


def test_spec_is_immutable_and_detached_from_input() -> None:
    raw = spec_with(nodeSelector={"ng": "multus"})
    spec = valid(raw)
    raw["nodeSelector"]["ng"] = "changed"
    assert spec.node_selector == {"ng": "multus"}
    with pytest.raises(TypeError):
        spec.node_selector["ng"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.mtu = 1500  # type: ignore[misc]


# --- status ---------------------------------------------------------------------------

ATTACHMENT_RAW: dict[str, Any] = {
    "nodeID": "ip-10-0-1-5.ec2.internal",
    "instanceID": "i-0123456789abcdef0",
    "eniID": "eni-0123456789abcdef0",
    "attachmentID": "eni-attach-0123456789abcdef0",
    "subnetID": SUBNET_A,
    "subnetCIDR": "10.0.16.0/20",
    "macAddress": "02:42:ac:11:00:02",
    "privateIPAddress": "10.0.16.12",
    "deviceIndex": 2,
    "mtu": 9001,
    "status": "attached",
    "lastUpdated": "2024-05-01T12:00:00Z",
    "dpdkBound": True,
    "dpdkDriver": "vfio-pci",
    "dpdkResourceName": "intel.com/sriov_dpdk",
    "dpdkPCIAddress": "0000:00:06.0",
    "interfaceName": "ens6",
}

STATUS_RAW: dict[str, Any] = {
    "attachments": [
        ATTACHMENT_RAW,
        {"nodeID": "node-2", "eniID": "eni-0fedcba9876543210", "status": "attaching"},
    ],
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "InvalidSpec",
            "message": "spec.mtu: 10000 is out of range (576..9001)",
            "lastTransitionTime": "2024-05-01T12:00:00Z",
            "observedGeneration": 3,
        },
        {"type": "Degraded", "status": "Unknown"},
    ],
    "observedGeneration": 3,
    "attachedCount": 1,
    "desiredCount": 2,
}


def test_attachment_fields_are_typed() -> None:
    attachment = Attachment.from_dict(ATTACHMENT_RAW)
    assert attachment == Attachment(
        node_id="ip-10-0-1-5.ec2.internal",
        instance_id="i-0123456789abcdef0",
        eni_id="eni-0123456789abcdef0",
        attachment_id="eni-attach-0123456789abcdef0",
        subnet_id=SUBNET_A,
        subnet_cidr="10.0.16.0/20",
        mac_address="02:42:ac:11:00:02",
        private_ip_address="10.0.16.12",
        device_index=2,
        mtu=9001,
        status=AttachmentState.ATTACHED,
        last_updated="2024-05-01T12:00:00Z",
        dpdk_bound=True,
        dpdk_driver="vfio-pci",
        dpdk_resource_name="intel.com/sriov_dpdk",
        dpdk_pci_address="0000:00:06.0",
        interface_name="ens6",
    )


def test_status_round_trip_keeps_node_agent_fields() -> None:
    status = NodeENIStatus.from_dict(STATUS_RAW)
    assert status.to_dict() == STATUS_RAW
    assert status.attachments[0].dpdk_bound is True
    assert status.attachments[0].interface_name == "ens6"
    assert status.condition("Ready") == Condition(
        type="Ready",
        status=ConditionStatus.FALSE,
        reason="InvalidSpec",
        message="spec.mtu: 10000 is out of range (576..9001)",
        last_transition_time="2024-05-01T12:00:00Z",
        observed_generation=3,
    )
    assert status.condition("Missing") is None


def test_to_dict_emits_plain_strings_for_enums() -> None:
    emitted = Attachment(node_id="n", eni_id="e", status=AttachmentState.DETACHING).to_dict()
    assert emitted == {"nodeID": "n", "eniID": "e", "status": "detaching"}
    assert type(emitted["status"]) is str
    condition = Condition(type="Ready", status=ConditionStatus.TRUE).to_dict()
    assert condition == {"type": "Ready", "status": "True"}
    assert type(condition["status"]) is str


def test_empty_status_lists_are_emitted() -> None:
    assert NodeENIStatus().to_dict() == {"attachments": [], "conditions": []}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "attachment",
        ["nodeID", "eniID"],
        {},
        {"nodeID": "n"},
        {"eniID": "e"},
        {"nodeID": "", "eniID": "e"},
        {"nodeID": 5, "eniID": "e"},
        {"nodeID": "n", "eniID": ["e"]},
    ],
)
def test_attachment_without_identity_is_skipped(raw: object) -> None:
    assert Attachment.from_dict(raw) is None


def test_attachment_junk_fields_read_as_none() -> None:
    raw = {
        "nodeID": "n",
        "eniID": "e",
        "instanceID": 5,
        "deviceIndex": "2",
        "mtu": True,
        "status": "exploded",
        "lastUpdated": 1714564800,
        "dpdkBound": "true",
        "dpdkPCIAddress": {"bus": 0},
        "somethingNew": "x",
    }
    attachment = Attachment.from_dict(raw)
    assert attachment == Attachment(node_id="n", eni_id="e")
    assert attachment is not None
    assert attachment.to_dict() == {"nodeID": "n", "eniID": "e"}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {"type": "Ready"},
        {"status": "True"},
        {"type": "Ready", "status": "true"},
        {"type": "Ready", "status": True},
        {"type": "", "status": "True"},
    ],
)
def test_condition_without_type_or_valid_status_is_skipped(raw: object) -> None:
    assert Condition.from_dict(raw) is None


def test_status_from_junk() -> None:
    assert NodeENIStatus.from_dict(None) == NodeENIStatus()
    assert NodeENIStatus.from_dict(["x"]) == NodeENIStatus()
    status = NodeENIStatus.from_dict(
        {
            "attachments": [None, {"nodeID": "n"}, {"nodeID": "n", "eniID": "e"}, 7],
            "conditions": {"type": "Ready", "status": "True"},
            "observedGeneration": "3",
            "attachedCount": 1.0,
        }
    )
    assert status == NodeENIStatus(attachments=(Attachment(node_id="n", eni_id="e"),))


# --- whole objects --------------------------------------------------------------------

OBJECT_RAW: dict[str, Any] = {
    "apiVersion": f"{model.GROUP}/{model.VERSION}",
    "kind": model.KIND,
    "metadata": {
        "name": "multus-eni",
        "uid": "5e0c3c43-3a3a-4b0e-9d7c-3a9b1f0c2d11",
        "generation": 3,
        "resourceVersion": "12345",
        "labels": {"team": "net"},
        "annotations": {model.CLEANUP_START_ANNOTATION: "2024-05-01T12:00:00Z"},
        "finalizers": [model.FINALIZER],
        "deletionTimestamp": "2024-05-01T12:00:00Z",
        "creationTimestamp": "2024-04-01T00:00:00Z",
    },
    "spec": {**BASE, "deviceIndex": 1, "deleteOnTermination": True},
    "status": STATUS_RAW,
}


def test_nodeeni_from_dict() -> None:
    nodeeni = NodeENI.from_dict(OBJECT_RAW)
    assert nodeeni == NodeENI(
        name="multus-eni",
        uid="5e0c3c43-3a3a-4b0e-9d7c-3a9b1f0c2d11",
        generation=3,
        resource_version="12345",
        annotations={model.CLEANUP_START_ANNOTATION: "2024-05-01T12:00:00Z"},
        finalizers=(model.FINALIZER,),
        deletion_timestamp="2024-05-01T12:00:00Z",
        spec=valid(BASE),
        problems=(),
        status=NodeENIStatus.from_dict(STATUS_RAW),
    )
    assert nodeeni.being_deleted
    assert nodeeni.has_finalizer


def test_nodeeni_with_invalid_spec_keeps_metadata_and_problems() -> None:
    raw = {**OBJECT_RAW, "spec": spec_with(mtu=10000)}
    nodeeni = NodeENI.from_dict(raw)
    assert nodeeni.spec is None
    assert nodeeni.problems == ("spec.mtu: 10000 is out of range (576..9001)",)
    assert nodeeni.name == "multus-eni"
    assert len(nodeeni.status.attachments) == 2


def test_nodeeni_without_spec_or_metadata() -> None:
    nodeeni = NodeENI.from_dict({"metadata": "junk"})
    assert nodeeni == NodeENI(name="", spec=None, problems=("spec: is missing",))
    assert not nodeeni.being_deleted
    assert not nodeeni.has_finalizer


def test_nodeeni_passes_configured_defaults() -> None:
    nodeeni = NodeENI.from_dict(
        {"metadata": {"name": "x"}, "spec": BASE},
        default_device_index=4,
        default_delete_on_termination=False,
    )
    assert nodeeni.spec is not None
    assert nodeeni.spec.device_index == 4
    assert nodeeni.spec.delete_on_termination is False


def test_api_constants() -> None:
    assert (model.GROUP, model.VERSION, model.PLURAL, model.KIND) == (
        "networking.k8s.aws",
        "v1alpha1",
        "nodeenis",
        "NodeENI",
    )
    assert model.FINALIZER == "nodeeni.networking.k8s.aws/finalizer"
    assert model.CLEANUP_START_ANNOTATION == "aws-multi-eni-controller/cleanup-start-time"


def _crd_spec_schema() -> dict[str, Any]:
    crd = load_crd()
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"])


def test_the_crd_bounds_are_the_models() -> None:
    fields = _crd_spec_schema()
    assert fields["deviceIndex"]["maximum"] == DEVICE_INDEX_MAX
    for key in ("securityGroupIDs", "securityGroupNames"):
        assert fields[key]["maxItems"] == SECURITY_GROUPS_MAX
    for key in ("subnetIDs", "subnetNames"):
        assert fields[key]["maxItems"] == SUBNETS_MAX
    assert fields["nodeSelector"]["maxProperties"] == NODE_SELECTOR_MAX_ENTRIES
    assert fields["nodeSelector"]["additionalProperties"]["maxLength"] == 63
    assert fields["dpdkResourceName"]["maxLength"] == DPDK_RESOURCE_NAME_MAX_LENGTH
    assert fields["dpdkDriver"]["maxLength"] >= max(len(d) for d in DPDK_DRIVERS)
    assert fields["dpdkPCIAddress"]["maxLength"] == len("0000:00:06.0")
    assert fields["subnetID"]["maxLength"] == len("subnet-") + 17
    assert fields["securityGroupIDs"]["items"]["maxLength"] == len("sg-") + 17
    assert fields["subnetNames"]["items"]["maxLength"] == SUBNET_NAME_MAX_LENGTH
    assert fields["securityGroupNames"]["items"]["maxLength"] == (SECURITY_GROUP_NAME_MAX_LENGTH)
    # every string and list of the spec is bounded
    for key, field in fields.items():
        if field["type"] == "string":
            assert "maxLength" in field, key
        if field["type"] == "array":
            assert "maxItems" in field, key
            assert "maxLength" in field["items"], key


def test_the_device_index_bound_is_the_largest_instance_types_interface_count() -> None:
    # moto's catalogue of EC2 instance types (AWS's DescribeInstanceTypes data)
    largest = max(
        int(info.get("NetworkInfo", {}).get("MaximumNetworkInterfaces", 0))
        for info in INSTANCE_TYPES.values()
    )
    assert largest - 1 == DEVICE_INDEX_MAX  # indexes 0..count-1


def test_the_crd_defaults_neither_device_index_nor_delete_on_termination() -> None:
    # the controller's DEFAULT_DEVICE_INDEX / DEFAULT_DELETE_ON_TERMINATION are the
    # one source of an omitted field's value: a schema default would shadow them
    fields = _crd_spec_schema()
    assert "default" not in fields["deviceIndex"]
    assert "default" not in fields["deleteOnTermination"]

"""NodeENI specs shared by the model unit tests and the API contract tests,
and the well-formed AWS ids and NodeENI uid the unit tests build objects with.

The same samples go to the real API server (CRD schema) and to
eni_controller.model, so the two validators cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

SUBNET_A = "subnet-0123456789abcdef0"
SUBNET_B = "subnet-0fedcba9876543210"
SG_A = "sg-0123456789abcdef0"
VPC_A = "vpc-0123456789abcdef0"
VPC_B = "vpc-0fedcba9876543210"
INSTANCE_A = "i-0123456789abcdef0"
NODEENI_UID = "6f1c2d3e-0000-4000-8000-00000000abcd"

_BASE: dict[str, Any] = {
    "nodeSelector": {"ng": "multus"},
    "subnetID": SUBNET_A,
    "securityGroupIDs": [SG_A],
}

# SPEC §1 samples: accepted by the schema and by the model.
VALID_SPECS: dict[str, dict[str, Any]] = {
    "single-subnet": _BASE,
    "short-ids": {**_BASE, "subnetID": "subnet-1234abcd", "securityGroupIDs": ["sg-1234abcd"]},
    "multi-subnet": {
        "nodeSelector": {"ng": "multus", "kubernetes.io/os": "linux"},
        "subnetIDs": [SUBNET_A, SUBNET_B],
        "securityGroupIDs": [SG_A],
        "deviceIndex": 2,
        "mtu": 9001,
        "deleteOnTermination": False,
        "description": "Multus secondary network",
    },
    "by-names": {
        "nodeSelector": {"ng": "multus"},
        "subnetNames": ["multus-a", "multus-b"],
        "securityGroupNames": ["multus-sg"],
    },
    "dpdk": {
        **_BASE,
        "enableDPDK": True,
        "dpdkDriver": "vfio-pci",
        "dpdkResourceName": "intel.com/sriov_dpdk",
        "dpdkPCIAddress": "0000:00:06.0",
        "mtu": 576,
    },
    "every-node": {**_BASE, "nodeSelector": {}},
}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in _BASE.items() if k != key}


# Specs the API server must reject (422) through the CRD schema; the model must
# report at least one problem for each.
INVALID_SPECS: dict[str, dict[str, Any]] = {
    "missing-nodeSelector": _without("nodeSelector"),
    "no-subnet": _without("subnetID"),
    "empty-subnetIDs": {**_without("subnetID"), "subnetIDs": []},
    "no-security-group": _without("securityGroupIDs"),
    "empty-securityGroupIDs": {**_BASE, "securityGroupIDs": []},
    "mtu-too-big": {**_BASE, "mtu": 10000},
    "mtu-too-small": {**_BASE, "mtu": 100},
    "bad-pci-address": {**_BASE, "dpdkPCIAddress": "0000:00:1g.0"},
    "short-pci-address": {**_BASE, "dpdkPCIAddress": "00:06.0"},
    "device-index-0": {**_BASE, "deviceIndex": 0},
    "device-index-string": {**_BASE, "deviceIndex": "2"},
    "bad-subnet-id": {**_BASE, "subnetID": "subnet-xyz"},
    "bad-subnet-ids-item": {**_without("subnetID"), "subnetIDs": [SUBNET_A, "sub-123"]},
    "bad-sg-id": {**_BASE, "securityGroupIDs": ["sg-123"]},
    "selector-not-strings": {**_BASE, "nodeSelector": {"ng": 1}},
}

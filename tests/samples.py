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


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in _BASE.items() if k != key}


def _ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n:017x}" for n in range(1, count + 1)]


def _names(prefix: str, count: int, *, length: int) -> list[str]:
    return [f"{prefix}{n}".ljust(length, "x") for n in range(count)]


_LONGEST_LABEL_KEY = f"{'a' * 253}/{'n' * 63}"

# Every bound of the CRD reached at once (model.py's constants): accepted by the
# API server and by the model.
AT_BOUNDS_SPECS: dict[str, dict[str, Any]] = {
    "at-bounds": {
        "nodeSelector": {
            _LONGEST_LABEL_KEY: "v" * 63,
            **{f"k{n}": "v" * 63 for n in range(31)},
        },
        "subnetIDs": _ids("subnet", 64),
        "subnetNames": _names("subnet", 64, length=256),
        "securityGroupIDs": _ids("sg", 8),
        "securityGroupNames": _names("sg", 8, length=255),
        "deviceIndex": 79,
        "description": "d" * 255,
        "enableDPDK": True,
        "dpdkDriver": "uio_pci_generic",
        "dpdkResourceName": "r" * 253,
        "dpdkPCIAddress": "0000:00:1f.7",
    },
    "sixteen-security-group-ids": {**_BASE, "securityGroupIDs": _ids("sg", 16)},
    "sixteen-security-group-names": {
        **_without("securityGroupIDs"),
        "securityGroupNames": _names("sg", 16, length=8),
    },
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
    **AT_BOUNDS_SPECS,
}


# One past a bound each: refused by the API server (422), whose message names
# the field and the bound (the second item, found in the answer's body).
OVERSIZED_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "device-index-80": ({**_BASE, "deviceIndex": 80}, "spec.deviceIndex"),
    "17-security-group-ids": (
        {**_BASE, "securityGroupIDs": _ids("sg", 17)},
        "spec.securityGroupIDs",
    ),
    "17-security-group-names": (
        {**_BASE, "securityGroupNames": _names("sg", 17, length=8)},
        "spec.securityGroupNames",
    ),
    "65-subnet-ids": ({**_without("subnetID"), "subnetIDs": _ids("subnet", 65)}, "spec.subnetIDs"),
    "65-subnet-names": (
        {**_without("subnetID"), "subnetNames": _names("subnet", 65, length=8)},
        "spec.subnetNames",
    ),
    "33-selector-entries": (
        {**_BASE, "nodeSelector": {f"k{n}": "v" for n in range(33)}},
        "spec.nodeSelector",
    ),
    "long-selector-value": ({**_BASE, "nodeSelector": {"ng": "v" * 64}}, "spec.nodeSelector"),
    "long-dpdk-driver": ({**_BASE, "dpdkDriver": "d" * 33}, "spec.dpdkDriver"),
    "long-dpdk-resource-name": (
        {**_BASE, "dpdkResourceName": "r" * 254},
        "spec.dpdkResourceName",
    ),
    "long-dpdk-pci-address": ({**_BASE, "dpdkPCIAddress": "0000:00:06.00"}, "spec.dpdkPCIAddress"),
    "long-subnet-id": ({**_BASE, "subnetID": f"subnet-{'0' * 18}"}, "spec.subnetID"),
    "long-security-group-id": (
        {**_BASE, "securityGroupIDs": [f"sg-{'0' * 18}"]},
        "spec.securityGroupIDs",
    ),
}

# Within each list's bound, past AWS's 16 security groups per ENI together: the
# schema (1.20: no rule across fields) admits it, the controller reports it.
SECURITY_GROUPS_PAST_THE_SUM: dict[str, Any] = {
    **_BASE,
    "securityGroupIDs": _ids("sg", 9),
    "securityGroupNames": _names("sg", 8, length=8),
}


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
    **{case: spec for case, (spec, _) in OVERSIZED_SPECS.items()},
}

"""The NodeENI spec: its typed form, and every rule the controller enforces itself.

An object may predate the CRD's schema or live where it was never applied, and
some rules (label syntax, a subnet listed twice) cannot be written in a schema.
So ``parse_spec`` checks every rule and returns every problem, in words an
operator can act on (the ``Ready=False/InvalidSpec`` message). It never raises;
a spec it accepts is a frozen ``NodeENISpec``, defaults applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from eni_controller.fields import (
    Check,
    FieldReader,
    length_check,
    pattern_check,
    preview,
    wrong_type,
)

SUBNET_ID_PATTERN: Final = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
SECURITY_GROUP_ID_PATTERN: Final = re.compile(r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})")

MTU_MIN: Final = 576
MTU_MAX: Final = 9001
DESCRIPTION_MAX_LENGTH: Final = 255
SUBNET_NAME_MAX_LENGTH: Final = 256
SECURITY_GROUP_NAME_MAX_LENGTH: Final = 255
# The NodeENI CRD's bounds (tests/unit/test_model.py compares them with the CRD).
# trn1n.32xlarge, the largest instance type, has 80 network interfaces (0..79).
DEVICE_INDEX_MAX: Final = 79
SECURITY_GROUPS_MAX: Final = 16  # per ENI (AWS's limit), IDs and names together
SUBNETS_MAX: Final = 64  # per list, subnetIDs and subnetNames
NODE_SELECTOR_MAX_ENTRIES: Final = 32
DPDK_RESOURCE_NAME_MAX_LENGTH: Final = 253
DPDK_DRIVERS: Final = ("vfio-pci", "igb_uio", "uio_pci_generic")
DEFAULT_DPDK_DRIVER: Final = "vfio-pci"

# DDDD:BB:DD.F - the device number is 5 bits (00-1f), the function 3 bits (0-7).
_PCI_ADDRESS_PATTERN: Final = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\.[0-7]")
_LABEL_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
DNS_SUBDOMAIN_PATTERN: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
DNS_SUBDOMAIN_MAX_LENGTH: Final = 253
_AWS_ID_FORMAT: Final = "followed by 8 or 17 lowercase hex digits"


def default_eni_description(node_name: str) -> str:
    """The EC2 description of an ENI whose spec sets none."""
    return f"ENI created by nodeeni-controller for node {node_name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeENISpec:
    """A valid NodeENI spec, defaults applied. ``subnet_ids`` holds ``subnetID`` then
    ``subnetIDs`` (``subnet_names`` likewise), each once, in the order given: a
    subnet's position decides its device index."""

    node_selector: Mapping[str, str]
    subnet_ids: tuple[str, ...] = ()
    subnet_names: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    security_group_names: tuple[str, ...] = ()
    device_index: int = 1
    delete_on_termination: bool = True
    description: str | None = None
    mtu: int | None = None
    enable_dpdk: bool = False
    dpdk_driver: str | None = None
    dpdk_resource_name: str | None = None
    dpdk_pci_address: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_selector", MappingProxyType(dict(self.node_selector)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.node_selector.items())

    def eni_description(self, node_name: str) -> str:
        return default_eni_description(node_name) if self.description is None else self.description


def parse_spec(
    raw: object,
    *,
    default_device_index: int = 1,
    default_delete_on_termination: bool = True,
) -> tuple[NodeENISpec | None, tuple[str, ...]]:
    """``(spec, ())`` when valid, else ``(None, problems)``, each naming its field
    (``spec.mtu: 10000 is out of range (576..9001)``). Unknown fields are ignored."""
    if not isinstance(raw, Mapping):
        message = "is missing" if raw is None else wrong_type("an object", raw)
        return None, (f"spec: {message}",)
    reader = FieldReader(raw, path="spec")
    node_selector = _read_node_selector(reader)
    subnet_ids = _read_unique_values(
        reader, "subnetID", "subnetIDs", _SUBNET_ID_CHECK, max_items=SUBNETS_MAX
    )
    subnet_names = _read_unique_values(
        reader, "subnetName", "subnetNames", _SUBNET_NAME_CHECK, max_items=SUBNETS_MAX
    )
    _require_one_of(reader, "subnet", ("subnetID", "subnetIDs", "subnetName", "subnetNames"))
    security_group_ids = _read_unique_values(
        reader, None, "securityGroupIDs", _SG_ID_CHECK, max_items=SECURITY_GROUPS_MAX
    )
    security_group_names = _read_unique_values(
        reader, None, "securityGroupNames", _SG_NAME_CHECK, max_items=SECURITY_GROUPS_MAX
    )
    _require_one_of(reader, "security group", ("securityGroupIDs", "securityGroupNames"))
    groups = len(security_group_ids) + len(security_group_names)
    if groups > SECURITY_GROUPS_MAX >= max(len(security_group_ids), len(security_group_names)):
        # (a list past the bound on its own was reported as such)
        reader.report(
            "spec",
            f"{groups} security groups in securityGroupIDs and securityGroupNames together"
            f" (at most {SECURITY_GROUPS_MAX} per ENI allowed)",
        )
    device_index = reader.integer(
        "deviceIndex", 1, DEVICE_INDEX_MAX, note="0 is the instance's primary ENI"
    )
    delete_on_termination = reader.boolean("deleteOnTermination")
    description = reader.string("description", length_check(0, DESCRIPTION_MAX_LENGTH))
    mtu = reader.integer("mtu", MTU_MIN, MTU_MAX)
    enable_dpdk = reader.boolean("enableDPDK") or False
    dpdk_driver = reader.string("dpdkDriver", check_dpdk_driver)
    dpdk_resource_name = reader.string(
        "dpdkResourceName", length_check(1, DPDK_RESOURCE_NAME_MAX_LENGTH)
    )
    dpdk_pci_address = reader.string("dpdkPCIAddress", check_pci_address)

    if reader.problems or node_selector is None:
        return None, tuple(reader.problems)
    if dpdk_driver is None and enable_dpdk:
        dpdk_driver = DEFAULT_DPDK_DRIVER
    spec = NodeENISpec(
        node_selector=node_selector,
        subnet_ids=subnet_ids,
        subnet_names=subnet_names,
        security_group_ids=security_group_ids,
        security_group_names=security_group_names,
        device_index=default_device_index if device_index is None else device_index,
        delete_on_termination=(
            default_delete_on_termination
            if delete_on_termination is None
            else delete_on_termination
        ),
        description=description,
        mtu=mtu,
        enable_dpdk=enable_dpdk,
        dpdk_driver=dpdk_driver,
        dpdk_resource_name=dpdk_resource_name,
        dpdk_pci_address=dpdk_pci_address,
    )
    return spec, ()


def _read_node_selector(reader: FieldReader) -> dict[str, str] | None:
    path = "spec.nodeSelector"
    raw = reader.get("nodeSelector")
    if raw is None:
        reader.report(path, "is required (use {} to select every node)")
        return None
    if not isinstance(raw, Mapping):
        reader.report(path, wrong_type("an object mapping label keys to values", raw))
        return None
    if len(raw) > NODE_SELECTOR_MAX_ENTRIES:
        reader.report(path, f"has {len(raw)} entries (at most {NODE_SELECTOR_MAX_ENTRIES} allowed)")
    selector: dict[str, str] = {}
    for key, value in raw.items():  # JSON: every key is a string
        key_problem = label_key_problem(key)
        if key_problem is not None:
            reader.report(path, f"key {preview(key)} is not a valid label key: {key_problem}")
        checked = reader.checked_string(f"{path}[{preview(key)}]", value, check_label_value)
        if key_problem is None and checked is not None:
            selector[key] = checked
    return selector


def _read_unique_values(
    reader: FieldReader, single_key: str | None, list_key: str, check: Check, *, max_items: int
) -> tuple[str, ...]:
    """A subnet or security-group field pair, the single field first; each value once."""
    entries: list[tuple[str, str]] = []
    if single_key is not None:
        single = reader.string(single_key, check)
        if single is not None:
            entries.append((f"spec.{single_key}", single))
    entries.extend(reader.string_list(list_key, check, max_items=max_items))
    first_path: dict[str, str] = {}
    for path, value in entries:
        if value in first_path:
            reader.report(path, f"{preview(value)} is listed twice (first at {first_path[value]})")
        else:
            first_path[value] = path
    return tuple(first_path)


def _require_one_of(reader: FieldReader, what: str, keys: Sequence[str]) -> None:
    if any(reader.get(key) not in (None, [], ()) for key in keys):
        return
    choices = ", ".join(keys[:-1]) + f" or {keys[-1]}"
    reader.report("spec", f"at least one {what} is required (set {choices})")


_SUBNET_ID_CHECK: Final = pattern_check(
    SUBNET_ID_PATTERN, f'a valid subnet ID (expected "subnet-" {_AWS_ID_FORMAT})'
)
_SG_ID_CHECK: Final = pattern_check(
    SECURITY_GROUP_ID_PATTERN, f'a valid security group ID (expected "sg-" {_AWS_ID_FORMAT})'
)
_SUBNET_NAME_CHECK: Final = length_check(1, SUBNET_NAME_MAX_LENGTH)
_SG_NAME_CHECK: Final = length_check(1, SECURITY_GROUP_NAME_MAX_LENGTH)
_LABEL_NAME_LENGTH: Final = length_check(1, 63)  # Kubernetes' limit on a label name


check_dpdk_driver: Final = pattern_check(
    re.compile("|".join(map(re.escape, DPDK_DRIVERS))),
    f"a supported DPDK driver (use {', '.join(DPDK_DRIVERS)})",
)
check_pci_address: Final = pattern_check(
    _PCI_ADDRESS_PATTERN,
    "a PCI address (expected DDDD:BB:DD.F in hex, device 00-1f, function 0-7, e.g. 0000:00:06.0)",
)


def check_label_value(value: str) -> str | None:
    if value == "":
        return None
    problem = _label_name_problem(value, "it")
    return None if problem is None else f"{preview(value)} is not a valid label value: {problem}"


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label key (``[prefix/]name``), or None."""
    if key.count("/") > 1:
        return "use at most one '/', between an optional DNS subdomain prefix and the name"
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "the prefix before '/' must not be empty"
        if len(prefix) > DNS_SUBDOMAIN_MAX_LENGTH:
            return (
                f"the prefix is {len(prefix)} characters long"
                f" (at most {DNS_SUBDOMAIN_MAX_LENGTH} allowed)"
            )
        if not DNS_SUBDOMAIN_PATTERN.fullmatch(prefix):
            return (
                "the prefix must be a lowercase DNS subdomain (letters, digits, '-' and '.',"
                " starting and ending with a letter or digit, e.g. example.com)"
            )
    return _label_name_problem(name, "the name")


def _label_name_problem(text: str, subject: str) -> str | None:
    problem = _LABEL_NAME_LENGTH(text)
    if problem is None and not _LABEL_NAME_PATTERN.fullmatch(text):
        problem = (
            "must start and end with a letter or digit"
            " and contain only letters, digits, '-', '_' and '.'"
        )
    return None if problem is None else f"{subject} {problem}"

"""Hypothesis strategies for NodeENI specs and Nodes as users and clouds write them.

Why: the controller must never crash, stall or call EC2 on a spec it cannot
serve, and the CRD schema only rejects part of what users write. These
strategies produce the awkward inputs (extreme and unicode strings, duplicate
entries, huge lists, odd selectors; Nodes of other clouds, malformed and unknown
AWS providerIDs) for the pure fuzz tests and for the ones against the real API
server, from one place.

Invariants:
- `nodeeni_specs()` draws plain camelCase dicts, biased to pass the CRD's OpenAPI
  schema (helm/.../crds/networking.k8s.aws_nodeenis.yaml): most draws follow its
  types, patterns and bounds; `schema_breaking=True` mixes in values it refuses,
  which the API server must reject (see `schema_accepts`).
- No drawn subnet or security group exists in any EC2 world the harness seeds:
  IDs are random hex, names carry `FUZZ_NAME_MARK` or are random text that
  `nodeeni_specs(avoid_names=...)` keeps away from real names. So a drawn spec
  the controller deems valid can only end in a lookup failure, never in an
  EC2 mutation.
- `node_labels()` draws only labels the API server accepts for a Node;
  `provider_ids()` draws any string a Node's spec.providerID may hold.
- `raw_json_specs()` goes beyond the schema (any JSON type in any field): what an
  object stored before the schema existed may hold. `parse_spec` must
  still answer with problems, never raise.

Empty strings: the test kube-apiserver refuses `""` where the schema says
`type: string` (a nodeSelector value, a description) with 422 `must be of type
string: "null"`. `schema_accepts(as_served=True)` predicts that; the cluster
fuzz (tests/chaos/test_fuzz.py) first asks the server which way it goes. It is
the server's doing, not our CRD's or client's:

- raw HTTP, no kubernetes_asyncio: the same 422, also for a minimal CRD of one
  string and one map of strings with no other rule;
- a CRD with `x-kubernetes-preserve-unknown-fields` and no types stores `""` as
  `""` (create, merge patch, YAML body): the body is decoded right, only the
  type check fails; built-in objects (a ConfigMap's data, labels) keep `""`;
- the cause: Kubernetes 1.20.2's vendored kube-openapi type validator takes a
  value equal to `reflect.Zero` of its type for null, which with Go >= 1.16 is
  true of an empty string decoded from JSON (kubernetes/kubernetes#99804, fixed
  by kube-openapi#230 for 1.21). Upstream built 1.20 with Go 1.15; our binary
  is built with Debian's Go 1.19 (scripts/build-kube-apiserver.sh). A Go 1.19
  program making that comparison prints true for a `""` decoded by
  encoding/json, false for a literal `""`.

A conformant API server accepts `""`, and so must the controller (it does: a
selector value `""` matches a label of value `""`). Patching the vendored
validate/type.go in the build script would make the test server conformant.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Final

from hypothesis import strategies as st

from eni_controller.spec import (
    DEVICE_INDEX_MAX,
    DPDK_DRIVERS,
    DPDK_RESOURCE_NAME_MAX_LENGTH,
    MTU_MAX,
    MTU_MIN,
    NODE_SELECTOR_MAX_ENTRIES,
    SECURITY_GROUPS_MAX,
    SUBNETS_MAX,
)
from tests.harness.ec2world import AZ_A

FUZZ_NAME_MARK: Final = "fuzz"
"""Part of most drawn subnet and group names: nothing seeded is named like it."""

SUBNET_ID_RE: Final = r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})"
SG_ID_RE: Final = r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})"
PCI_RE: Final = r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]"
SUBNET_NAME_MAX: Final = 256
SG_NAME_MAX: Final = 255
DESCRIPTION_MAX: Final = 255
LABEL_VALUE_MAX: Final = 63  # the CRD's nodeSelector value maxLength
DPDK_DRIVER_MAX: Final = 32  # the CRD's dpdkDriver maxLength
INT64_MAX: Final = 2**63 - 1

# Surrogates cannot be encoded as UTF-8 and never come out of a JSON decoder.
_CHARS: Final = st.characters(codec="utf-8")
_ODD_STRINGS: Final = (
    " ",
    "\t",
    "\n",
    "\x00",
    "-",
    "_",
    ".",
    "a" * 63,
    "a" * 64,
    "é",
    "名前",
    "🙂",
    "\u200b",
    "\u202e",
    "default",
    "null",
    "true",
    "0",
    "${HOME}",
    "'; DROP TABLE subnets; --",
    "subnet-00000000",
    "sg-00000000",
)


def text(min_size: int = 0, max_size: int = 64) -> st.SearchStrategy[str]:
    """Any unicode text, with odd fixed strings and the bounds themselves likelier."""
    odd = [s for s in _ODD_STRINGS if min_size <= len(s) <= max_size]
    return st.one_of(
        st.text(_CHARS, min_size=min_size, max_size=max_size),
        st.sampled_from(odd),
        st.just("x" * max_size),
        st.just("ü" * max_size),
        st.text(_CHARS, min_size=max(min_size, 1), max_size=max_size).map(
            lambda s: (s * max_size)[:max_size]
        ),
    )


def subnet_ids() -> st.SearchStrategy[str]:
    return st.from_regex(SUBNET_ID_RE, fullmatch=True)


def security_group_ids() -> st.SearchStrategy[str]:
    return st.from_regex(SG_ID_RE, fullmatch=True)


def _aws_names(max_size: int, avoid: Collection[str]) -> st.SearchStrategy[str]:
    marked = text(0, max_size - len(FUZZ_NAME_MARK) - 1).map(
        lambda s: f"{FUZZ_NAME_MARK}-{s}"[:max_size]
    )
    return st.one_of(marked, text(1, max_size)).filter(lambda s: s not in avoid)


def _lists(
    items: st.SearchStrategy[str], *, max_items: int, min_size: int = 0, huge: bool = True
) -> st.SearchStrategy[list[str]]:
    """Short lists mostly; some with duplicates; some huge: up to the CRD's
    `max_items` (past it only in `_schema_breakers`)."""
    short = st.lists(items, min_size=min_size, max_size=6)
    duplicated = st.lists(items, min_size=max(min_size, 1), max_size=4).map(lambda xs: xs + xs[:2])
    choices = [short] * 6 + [duplicated] * 2
    if huge:  # one draw in nine
        choices.append(st.lists(items, min_size=max(min_size, max_items - 4), max_size=max_items))
    return st.one_of(choices)


def label_name() -> st.SearchStrategy[str]:
    """A label name as Kubernetes accepts it: 1..63 chars, alnum at both ends."""
    return st.from_regex(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True)


def dns_subdomain() -> st.SearchStrategy[str]:
    label = st.from_regex(r"[a-z0-9](?:[-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
    return st.lists(label, min_size=1, max_size=4).map(".".join).filter(lambda s: len(s) <= 253)


def valid_label_keys() -> st.SearchStrategy[str]:
    return st.one_of(
        label_name(),
        st.tuples(dns_subdomain(), label_name()).map(lambda t: f"{t[0]}/{t[1]}"),
        st.sampled_from(
            [
                "kubernetes.io/hostname",
                "topology.kubernetes.io/zone",
                "node.kubernetes.io/instance-type",
                "a" * 63,
            ]
        ),
    )


def valid_label_values() -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), label_name())


def label_keys() -> st.SearchStrategy[str]:
    """Selector keys: valid ones, and the ones only the controller refuses."""
    odd = st.one_of(
        text(0, 80),
        st.sampled_from(["bad key!", "/name", "prefix/", "a/b/c", "UPPER.example.com/x", "-x"]),
        st.just("a" * 64),
        st.just("p" * 254 + "/n"),
    )
    valid = valid_label_keys()
    return st.one_of(valid, valid, valid, valid, valid, odd)


def label_values() -> st.SearchStrategy[str]:
    """Selector values but "" (drawn on its own by `node_selectors`: the test API
    server refuses it, see the module docstring)."""
    name = label_name()
    return st.one_of(name, name, name, text(1, LABEL_VALUE_MAX))


def node_selectors(*, avoid_key: str | None = None) -> st.SearchStrategy[dict[str, str]]:
    """Equality selectors: empty, small, large; keys and values odd or not.

    `avoid_key` is a label key the selector never uses (so a fuzzed selector cannot
    pick a test's real nodes by the label those carry).
    """
    keys = label_keys()
    if avoid_key is not None:
        keys = keys.filter(lambda k: k != avoid_key)
    small = st.dictionaries(keys, label_values(), max_size=4)
    return st.one_of(
        st.just({}),
        *[small] * 3,
        # "" values, about one selector in nine: refused by the test API server
        # (module docstring), accepted by a conformant one; rare enough that most
        # draws still pass the schema as that server applies it. Not the last
        # branch: hypothesis favours the ends of a range when it picks one.
        st.dictionaries(keys, st.just(""), min_size=1, max_size=2),
        *[small] * 3,
        st.dictionaries(keys, label_values(), min_size=20, max_size=NODE_SELECTOR_MAX_ENTRIES),
    )


def _dpdk_fields() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "enableDPDK": st.booleans(),
            "dpdkDriver": st.one_of(*[st.sampled_from(DPDK_DRIVERS)] * 3, text(1, DPDK_DRIVER_MAX)),
            "dpdkResourceName": text(1, 100),
            "dpdkPCIAddress": st.from_regex(PCI_RE, fullmatch=True),
        },
    )


@st.composite
def nodeeni_specs(
    draw: st.DrawFn,
    *,
    avoid_names: Collection[str] = (),
    avoid_selector_key: str | None = None,
    schema_breaking: bool = False,
) -> dict[str, Any]:
    """A NodeENI spec dict. Without `schema_breaking` it passes the CRD schema
    (see `schema_accepts`); with it, about one draw in five does not."""
    # decided first and away from the ends of the range: drawn after the big lists
    # as `== 0`, hypothesis leaned to the simplest value and broke about half the
    # specs instead of one in five
    breaking = schema_breaking and draw(st.integers(1, 5)) == 3
    names = _aws_names(SUBNET_NAME_MAX, avoid_names)
    sg_names = _aws_names(SG_NAME_MAX, avoid_names)
    spec: dict[str, Any] = {"nodeSelector": draw(node_selectors(avoid_key=avoid_selector_key))}
    # at least one subnet field, then any others
    subnet_fields = {
        "subnetID": subnet_ids(),
        "subnetIDs": _lists(subnet_ids(), min_size=1, max_items=SUBNETS_MAX),
        "subnetName": names,
        "subnetNames": _lists(names, min_size=1, max_items=SUBNETS_MAX),
    }
    first = draw(st.sampled_from(sorted(subnet_fields)))
    spec[first] = draw(subnet_fields[first])
    for key, strategy in subnet_fields.items():
        if key != first and draw(st.integers(0, 3)) == 0:
            # duplicates across the single and the list field, and empty lists beside a given one
            if key == "subnetIDs" and "subnetID" in spec and draw(st.booleans()):
                spec[key] = [spec["subnetID"], *draw(_lists(subnet_ids(), huge=False, max_items=6))]
            elif key.endswith("s") and draw(st.integers(0, 3)) == 0:
                spec[key] = []
            else:
                spec[key] = draw(strategy)
    group_fields = {
        "securityGroupIDs": _lists(security_group_ids(), min_size=1, max_items=SECURITY_GROUPS_MAX),
        "securityGroupNames": _lists(sg_names, min_size=1, max_items=SECURITY_GROUPS_MAX),
    }
    for key in draw(
        st.sampled_from([["securityGroupIDs"], ["securityGroupNames"], sorted(group_fields)])
    ):
        spec[key] = draw(group_fields[key])
    spec.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "deviceIndex": st.one_of(st.integers(1, 16), st.integers(1, DEVICE_INDEX_MAX)),
                    "deleteOnTermination": st.booleans(),
                    # "" in about one description in six: see node_selectors
                    "description": st.one_of(*[text(1, DESCRIPTION_MAX)] * 5, st.just("")),
                    "mtu": st.one_of(
                        st.sampled_from([MTU_MIN, 1500, 9000, MTU_MAX]),
                        st.integers(MTU_MIN, MTU_MAX),
                    ),
                },
            )
        )
    )
    spec.update(draw(_dpdk_fields()))
    if breaking:
        spec.update(draw(_schema_breakers()))
    return spec


def _schema_breakers() -> st.SearchStrategy[dict[str, Any]]:
    """One field the CRD schema refuses."""
    return st.one_of(
        st.builds(lambda v: {"deviceIndex": v}, st.integers(-5, 0)),
        st.builds(lambda v: {"deviceIndex": v}, st.integers(DEVICE_INDEX_MAX + 1, INT64_MAX)),
        st.builds(
            lambda v: {"securityGroupIDs": v},
            st.lists(security_group_ids(), min_size=SECURITY_GROUPS_MAX + 1, max_size=40),
        ),
        st.builds(
            lambda v: {"subnetIDs": v},
            st.lists(subnet_ids(), min_size=SUBNETS_MAX + 1, max_size=300),
        ),
        st.builds(
            lambda v: {"nodeSelector": v},
            st.dictionaries(
                label_name(),
                label_name(),
                min_size=NODE_SELECTOR_MAX_ENTRIES + 1,
                max_size=60,
            ),
        ),
        st.just({"nodeSelector": {"k": "v" * (LABEL_VALUE_MAX + 1)}}),
        st.just({"dpdkDriver": "d" * (DPDK_DRIVER_MAX + 1)}),
        st.just({"dpdkResourceName": "r" * (DPDK_RESOURCE_NAME_MAX_LENGTH + 1)}),
        st.builds(lambda v: {"mtu": v}, st.one_of(st.integers(0, 575), st.integers(9002, 10**6))),
        st.builds(
            lambda v: {"subnetID": v}, text(0, 30).filter(lambda s: not _full(SUBNET_ID_RE, s))
        ),
        st.builds(
            lambda v: {"securityGroupIDs": [v]},
            st.sampled_from(["sg-XYZ", "sg-0123456789ABCDEF0", "", "sg-123"]),
        ),
        st.builds(lambda v: {"description": v}, st.just("d" * (DESCRIPTION_MAX + 1))),
        st.builds(
            lambda v: {"dpdkPCIAddress": v}, st.sampled_from(["0000:00:20.0", "0:0:0.0", ""])
        ),
        st.just({"subnetName": ""}),
        st.just({"nodeSelector": {"k": 1}}),
    )


def _full(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def schema_accepts(spec: dict[str, Any], *, as_served: bool = True) -> bool:
    """Whether the CRD's OpenAPI schema admits `spec` (a drawn one: the fields and
    types `nodeeni_specs` draws). The API server's verdict must agree.

    `as_served`: as the test API server applies it, which refuses "" in
    nodeSelector values and in description as if it were null (see the module
    docstring); False: the schema as written (and as a conformant API server
    applies it), where "" is a string like any other.
    """
    empty_ok = not as_served

    def strings(key: str) -> list[Any]:
        value = spec.get(key)
        return [value] if isinstance(value, str) or key[-1] != "s" else list(value or [])

    def ok_list(key: str, check: Any) -> bool:
        return all(isinstance(v, str) and check(v) for v in strings(key)) if key in spec else True

    def given(key: str) -> bool:
        return key in spec and not (isinstance(spec[key], list) and not spec[key])

    selector = spec.get("nodeSelector")
    checks = [
        # The test kube-apiserver validates "" as null ("must be of type string"), so
        # there a selector on an empty label value is refused: module docstring.
        isinstance(selector, dict)
        and len(selector) <= NODE_SELECTOR_MAX_ENTRIES
        and all(
            isinstance(v, str) and (v or empty_ok) and len(v) <= LABEL_VALUE_MAX
            for v in selector.values()
        ),
        len(spec.get("subnetIDs", ())) <= SUBNETS_MAX,
        len(spec.get("subnetNames", ())) <= SUBNETS_MAX,
        len(spec.get("securityGroupIDs", ())) <= SECURITY_GROUPS_MAX,
        len(spec.get("securityGroupNames", ())) <= SECURITY_GROUPS_MAX,
        any(given(k) for k in ("subnetID", "subnetIDs", "subnetName", "subnetNames")),
        any(given(k) for k in ("securityGroupIDs", "securityGroupNames")),
        ok_list("subnetID", lambda v: _full(SUBNET_ID_RE, v)),
        ok_list("subnetIDs", lambda v: _full(SUBNET_ID_RE, v)),
        ok_list("subnetName", lambda v: 1 <= len(v) <= SUBNET_NAME_MAX),
        ok_list("subnetNames", lambda v: 1 <= len(v) <= SUBNET_NAME_MAX),
        ok_list("securityGroupIDs", lambda v: _full(SG_ID_RE, v)),
        ok_list("securityGroupNames", lambda v: 1 <= len(v) <= SG_NAME_MAX),
        1 <= spec.get("deviceIndex", 1) <= DEVICE_INDEX_MAX,
        MTU_MIN <= spec.get("mtu", MTU_MIN) <= MTU_MAX,
        # "" again refused as null, as in nodeSelector
        (0 if empty_ok else 1) <= len(spec.get("description", "x")) <= DESCRIPTION_MAX,
        _full(PCI_RE, spec.get("dpdkPCIAddress", "0000:00:00.0")),
        1 <= len(spec.get("dpdkDriver", "x")) <= DPDK_DRIVER_MAX,
        1 <= len(spec.get("dpdkResourceName", "x")) <= DPDK_RESOURCE_NAME_MAX_LENGTH,
    ]
    return all(checks)


_JSON: Final = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text(0, 20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(text(0, 10), children, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def raw_json_specs(draw: st.DrawFn) -> Any:
    """Anything a spec field may hold once the schema is out of the picture: a
    drawn spec with some fields swapped for any JSON value, or no object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_JSON)
    spec = draw(nodeeni_specs(schema_breaking=True))
    keys = [*spec, "nodeSelector", "deviceIndex", "mtu", "enableDPDK", "subnetIDs"]
    for key in draw(st.lists(st.sampled_from(keys), max_size=3)):
        spec[key] = draw(_JSON)
    return spec


# --- Nodes ----------------------------------------------------------------------------

NON_EC2_PROVIDER_IDS: Final = (
    "",
    "gce://my-project/us-central1-a/node-1",
    "azure:///subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/z",
    "kind://docker/kind/kind-worker",
    "aws:///",
    "aws://",
    "aws:///us-east-1a/",
    "aws:///us-east-1a/i-",
    "aws:///us-east-1a/i-XYZ",
    "aws:///US-EAST-1A/i-0123456789abcdef0",
    "aws://us-east-1a/i-0123456789abcdef0",
    "aws:///us-east-1a/i-0123456789abcdef0/extra",
    "aws:///us-east-1a/i-0123456789abcdef0\n",
    "i-0123456789abcdef0",
)


def unknown_ec2_provider_ids(az: str = AZ_A) -> st.SearchStrategy[str]:
    """Well-formed AWS providerIDs of instances that do not exist."""
    return st.from_regex(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})", fullmatch=True).map(
        lambda i: f"aws:///{az}/{i}"
    )


def non_ec2_provider_ids() -> st.SearchStrategy[str]:
    """ProviderIDs that name no EC2 instance: empty, other clouds, malformed AWS ones."""
    return st.one_of(
        st.sampled_from(NON_EC2_PROVIDER_IDS),
        text(0, 80).filter(lambda s: not s.startswith("aws:///")),
    )


def provider_ids() -> st.SearchStrategy[str]:
    return st.one_of(non_ec2_provider_ids(), unknown_ec2_provider_ids())


def node_labels(*, required: dict[str, str] | None = None) -> st.SearchStrategy[dict[str, str]]:
    """Labels the API server accepts on a Node, plus `required` ones."""
    extra = st.dictionaries(valid_label_keys(), valid_label_values(), max_size=8)
    return extra.map(lambda labels: {**labels, **(required or {})})


@st.composite
def valid_nodeeni_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A drawn spec made valid for the controller too: a syntactically valid
    selector, each subnet and group once, at most SECURITY_GROUPS_MAX groups in
    all, a supported DPDK driver."""
    spec = draw(nodeeni_specs())
    spec["nodeSelector"] = draw(
        st.dictionaries(valid_label_keys(), valid_label_values(), max_size=4)
    )
    seen: set[str] = set()
    for key in ("subnetID", "subnetIDs", "subnetName", "subnetNames"):
        if isinstance(spec.get(key), str):
            if spec[key] in seen:
                del spec[key]
            else:
                seen.add(spec[key])
        elif key in spec:
            spec[key] = [v for v in dict.fromkeys(spec[key]) if v not in seen]
            seen.update(spec[key])
    room = SECURITY_GROUPS_MAX  # per ENI, IDs and names together
    for key in ("securityGroupIDs", "securityGroupNames"):
        if key in spec:
            kept = list(dict.fromkeys(spec[key]))[:room]
            if kept:
                spec[key] = kept
                room -= len(kept)
            else:  # securityGroupIDs holds them all
                del spec[key]
    if "dpdkDriver" in spec:
        spec["dpdkDriver"] = draw(st.sampled_from(DPDK_DRIVERS))
    return spec

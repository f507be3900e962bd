"""Fuzzed input (issue 16, case 6): generated NodeENI specs and odd Nodes.

Why: users write specs by hand and clusters hold Nodes of other clouds. Whatever
passes the CRD schema, the controller must answer, never crash or stall on, and
never act on in EC2 unless the spec is valid and its subnets exist.

Two levels:
- pure (no servers, many examples): `NodeENI.from_dict` never raises and answers
  a spec or plain-words problems; the CRD schema and the controller's own rules
  agree where both apply; `plan` never raises on valid specs with odd Nodes, and
  a non-EC2 Node or an unknown instance is never evidence that an ENI is stale.
- against the real API server + moto: drawn specs created beside one valid
  NodeENI on a real node and odd Nodes; the API server refuses what the schema
  refuses (and only that); every accepted invalid spec gets Ready=False
  InvalidSpec with its problems and a Warning event; every other drawn spec a
  lookup failure (no drawn subnet exists); no EC2 mutation beyond the valid
  NodeENI's one slot; the controller stays live with no unexpected reconcile
  error; and everything is deleted again, finalizers released.

The cluster cases are chaos case 6: seeded from the chaos suite's seed
(`CHAOS_SEED=<n>` or `--chaos-seed <n>`, printed first), each run writes a row
to bench/results/chaos/ (`fuzz-seed<n>.json`; the smoke's `fuzz-smoke-...` is
left out of docs/reliability.md): specs tried, accepted, InvalidSpec answers
and their events, lookup failures, EC2 mutating calls the fuzzed specs caused
(0), the valid NodeENI converged, the controller live. The pure cases use
hypothesis' derandomized examples.

Empty strings: the test kube-apiserver refuses `""` where the schema says
`type: string`; a conformant one does not. Each cluster run asks the server
first (`server_refuses_empty_strings`, a dry-run create) and predicts its
verdicts accordingly; why the server does it: tests/harness/fuzz.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final, cast
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.aws.ec2 import FILTER_VALUES_PER_CALL
from eni_controller.aws.lookup import LookupReason
from eni_controller.aws.resources import ENIAttachment, Instance, NetworkInterface, Subnet
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from eni_controller.reconcile.nodes import NodeView
from eni_controller.reconcile.planner import (
    Attach,
    CreateAndAttach,
    PlanInput,
    ProblemReason,
    plan,
)
from eni_controller.reconcile.tags import eni_tags
from eni_controller.spec import parse_spec
from tests.harness import fuzz
from tests.harness.chaos import ChaosResult, chaos_case
from tests.harness.controller import (
    AWSEnv,
    condition,
    controller_config,
    is_ready,
    quiet,
    read_nodeeni,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, AZ_B, World, ec2_client
from tests.harness.fleet import make_nodes, nodeeni_spec, wait_gone
from tests.harness.kube import nodeeni_body

SMOKE_SPECS: Final = 30
FULL_SPECS: Final = 500
MUTATING: Final = (
    "CreateNetworkInterface",
    "AttachNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
    "DeleteNetworkInterface",
    "DetachNetworkInterface",
)
# The valid NodeENI's one slot (one node, one subnet), deleteOnTermination left at
# its default (true, where an attach defaults to false): one of each, no delete.
VALID_SLOT_CALLS: Final = {
    "CreateNetworkInterface": 1,
    "AttachNetworkInterface": 1,
    "ModifyNetworkInterfaceAttribute": 1,
    "DeleteNetworkInterface": 0,
    "DetachNetworkInterface": 0,
}
LOOKUP_REASONS: Final = frozenset(r.value for r in LookupReason)
# drawn valid specs never reach a lookup that succeeds, so none of them is Ready
SEEDED_NAMES: Final = ("multus-sg", "default")

SMOKE_PURE: Final = settings(
    max_examples=int(os.environ.get("ENI_FUZZ_PURE_EXAMPLES", "100")),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FULL_PURE: Final = settings(SMOKE_PURE, max_examples=2000)


# --- pure: the model --------------------------------------------------------------------


def _assert_plain_problems(problems: Sequence[str]) -> None:
    for problem in problems:
        assert isinstance(problem, str)
        assert problem.startswith("spec"), problem
        assert ": " in problem, problem
        assert "Traceback" not in problem
        assert " object at 0x" not in problem, problem


def check_from_dict(raw: Any) -> None:
    obj = {"metadata": {"name": "fuzz", "uid": "u", "generation": 1}, "spec": raw}
    nodeeni = model.NodeENI.from_dict(obj)
    assert (nodeeni.spec is None) == bool(nodeeni.problems)
    _assert_plain_problems(nodeeni.problems)
    spec, problems = parse_spec(raw)
    assert (spec, problems) == (nodeeni.spec, nodeeni.problems)


# What only the controller checks: everything else the CRD schema refuses first.
_CONTROLLER_ONLY: Final = (
    "spec.nodeSelector",
    "is listed twice",
    "is not a supported DPDK driver",
    "security groups in securityGroupIDs and securityGroupNames together",
)


def check_rules_agree(raw: dict[str, Any]) -> None:
    """The controller refuses what the schema refuses, and past the schema only
    the rules the schema cannot express (label syntax, duplicates, DPDK driver)."""
    spec, problems = parse_spec(raw)
    if not fuzz.schema_accepts(raw, as_served=False):
        assert spec is None, f"the controller accepts what the CRD schema refuses: {raw!r}"
        return
    for problem in problems:
        assert any(marker in problem for marker in _CONTROLLER_ONLY), problem


# --- pure: the planner ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Fleet:
    """Nodes for the planner: one EC2 node with its instance, and odd ones."""

    nodes: tuple[NodeView, ...]
    instances: dict[str, Instance] = field(default_factory=dict)


def _instance(instance_id: str, az: str) -> Instance:
    return Instance(
        instance_id=instance_id,
        availability_zone=az,
        state="running",
        instance_type="m5.large",
        vpc_id="vpc-01",
        occupied_device_indexes=frozenset({0}),
    )


@st.composite
def _fleets(draw: st.DrawFn, selector: dict[str, str]) -> _Fleet:
    nodes = [
        NodeView(
            name="real",
            labels=dict(selector),
            instance_id="i-0000000000000001",
            availability_zone=AZ_A,
        )
    ]
    count = draw(st.integers(1, 8))
    for i in range(count):
        raw: dict[str, Any] = {
            "metadata": {
                "name": f"odd{i}",
                "labels": draw(
                    fuzz.node_labels(required=selector if draw(st.booleans()) else None)
                ),
            },
            "spec": {},
        }
        provider = draw(st.one_of(st.none(), fuzz.provider_ids()))
        if provider is not None:
            raw["spec"]["providerID"] = provider
        nodes.append(NodeView.from_api(raw))
    return _Fleet(
        nodes=tuple(nodes), instances={"i-0000000000000001": _instance("i-0000000000000001", AZ_A)}
    )


def _our_eni(eni_id: str, *, node: NodeView, subnet: Subnet) -> NetworkInterface:
    """An ENI of ours tagged for `node` and attached to the instance in its tags."""
    instance_id = node.instance_id or "i-0fffffffffffffff0"
    return NetworkInterface(
        eni_id=eni_id,
        subnet_id=subnet.subnet_id,
        vpc_id="vpc-01",
        availability_zone=subnet.availability_zone,
        status="in-use",
        mac_address="0a:00:00:00:00:01",
        private_ip_address="10.0.0.1",
        description="",
        security_group_ids=(),
        tags=eni_tags(
            nodeeni="fuzz",
            uid="u",
            node=node.name,
            instance_id=instance_id,
            subnet_id=subnet.subnet_id,
            cluster_name=None,
        ),
        attachment=ENIAttachment(
            attachment_id=f"eni-attach-{eni_id[4:]}",
            instance_id=instance_id,
            device_index=1,
            status="attached",
            delete_on_termination=True,
        ),
    )


def check_plan(data: st.DataObject, raw: dict[str, Any]) -> None:
    spec, problems = parse_spec(raw)
    assert spec is not None, problems  # the valid-spec strategy draws only valid specs
    azs = [AZ_A, AZ_B]
    subnets = [
        Subnet(
            subnet_id=subnet_id,
            vpc_id="vpc-01",
            availability_zone=data.draw(st.sampled_from(azs)),
            cidr=f"10.{n % 250}.0.0/24",
            name=None,
        )
        for n, subnet_id in enumerate(spec.subnet_ids)
    ]
    fleet = data.draw(_fleets(dict(spec.node_selector)))
    odd = [n for n in fleet.nodes if n.name != "real"]
    # an ENI of ours on each odd node, in the first subnet if there is one
    enis = [
        _our_eni(f"eni-{i:017x}", node=n, subnet=subnets[0]) for i, n in enumerate(odd) if subnets
    ]
    result = plan(
        PlanInput(
            nodeeni="fuzz",
            spec=spec,
            subnets=subnets,
            security_group_ids=spec.security_group_ids,
            nodes=fleet.nodes,
            instances=fleet.instances,
            max_enis={"m5.large": 3},
            enis=enis,
            previous=(),
        )
    )
    odd_names = {n.name for n in odd}
    for action in result.actions:
        assert isinstance(action, CreateAndAttach | Attach)
        assert action.slot.node == "real", action
    # a non-EC2 node is never evidence, nor an unknown instance of a node still selected
    kept = {n.name for n in odd if not n.on_ec2 or spec.matches(n.labels)}
    stale_nodes = {e.tags.get(tags.NODE_KEY) for e in result.stale}
    assert not stale_nodes & kept, f"counted as gone: {stale_nodes & kept}"
    for problem in result.problems:
        if problem.node in odd_names:
            node = next(n for n in odd if n.name == problem.node)
            # only an AWS providerID of an unknown instance is worth a word
            assert node.on_ec2, problem
            assert problem.reason == ProblemReason.INSTANCE_NOT_FOUND, problem
    for node in odd:
        if node.on_ec2 and spec.matches(node.labels):
            assert any(p.node == node.name for p in result.problems), node


PURE_CASES: Final = (
    (given(raw=fuzz.raw_json_specs()), check_from_dict),
    (given(raw=fuzz.nodeeni_specs(schema_breaking=True)), check_rules_agree),
    (given(data=st.data(), raw=fuzz.valid_nodeeni_specs()), check_plan),
)


@pytest.mark.parametrize("case", range(len(PURE_CASES)), ids=["from_dict", "rules", "plan"])
def test_pure_smoke(case: int) -> None:
    """`from_dict` answers a spec or problems, never raises; the schema and the
    controller agree; `plan` never raises and odd nodes are never gone."""
    given_, check = PURE_CASES[case]
    SMOKE_PURE(given_(check))()


@pytest.mark.slow
@pytest.mark.chaos
@pytest.mark.parametrize("case", range(len(PURE_CASES)), ids=["from_dict", "rules", "plan"])
def test_pure_full(case: int) -> None:
    given_, check = PURE_CASES[case]
    FULL_PURE(given_(check))()


# --- against the API server and moto ---------------------------------------------------


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Hypothesis mixes literals found in the project's imported modules into its
    draws (`providers._get_local_constants`: eni_controller's and bench's, not the
    tests'), so the same seed drew other specs depending on which modules a test
    selection had imported (a full `make test` imports bench.pipeline, a single
    file does not). Drawing without them makes a seed replay anywhere. A private
    hook: should hypothesis rename it, this fails loudly rather than drift."""
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        with mock.patch.object(providers, "_get_local_constants", return_value=Constants()):
            yield
    finally:
        providers.CONSTANTS_CACHE.cache.clear()


def draw_examples(strategy: st.SearchStrategy[Any], count: int, at_seed: int) -> list[Any]:
    """`count` examples of `strategy`, the same ones for the same seed, whatever
    else is imported."""
    drawn: list[Any] = []

    @seed(at_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    with _without_local_constants():
        collect()
    return drawn[:count]


def test_a_seed_draws_the_same_specs_whatever_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chaos seed replays case 6 only if it draws the same specs in any test
    selection: a module of the project imported meanwhile must not change them."""
    strategy = fuzz.nodeeni_specs(avoid_names=SEEDED_NAMES, schema_breaking=True)
    first = draw_examples(strategy, 40, 7)
    probe = "fuzz_constants_probe"  # a project-local module, as hypothesis sees it
    (tmp_path / f"{probe}.py").write_text(
        f"WORDS = {[f'subnet-probe-{i}' for i in range(300)]!r}\n"
        f"NUMBERS = {list(range(1000, 1300))!r}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, probe, importlib.import_module(probe))
    assert draw_examples(strategy, 40, 7) == first


@dataclass(kw_only=True, slots=True)
class _Tally:
    tried: int = 0
    accepted: int = 0
    rejected: int = 0
    invalid: int = 0  # Ready=False InvalidSpec
    lookup: Counter[str] = field(default_factory=Counter)  # Ready=False, a lookup reason
    invalid_events: int = 0  # InvalidSpec ones with a Warning InvalidSpec event
    verdict_mismatch: list[str] = field(default_factory=list)


async def _create_odd_nodes(
    api: client.ApiClient, unique: str, selector: dict[str, str], at_seed: int
) -> list[str]:
    """Nodes the valid NodeENI selects that are not on EC2 (must be ignored), and
    Nodes on unknown instances it does not select."""
    core = client.CoreV1Api(api)
    odd = draw_examples(
        st.tuples(fuzz.non_ec2_provider_ids(), fuzz.node_labels(required=selector)), 6, at_seed
    )
    unknown = draw_examples(
        st.tuples(fuzz.unknown_ec2_provider_ids(AZ_A), fuzz.node_labels(required={"fuzz": unique})),
        3,
        at_seed + 1,
    )
    names: list[str] = []
    for i, (provider_id, labels) in enumerate([*odd, *unknown]):
        name = f"{unique}-odd{i}"
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"providerID": provider_id} if provider_id else {},
        }
        await core.create_node(cast(Any, body))
        names.append(name)
    return names


async def _delete_nodes(api: client.ApiClient, names: Sequence[str]) -> None:
    core = client.CoreV1Api(api)
    for name in names:
        try:
            await core.delete_node(name)
        except ApiException as err:
            if err.status != HTTPStatus.NOT_FOUND:
                raise


async def _list_ours(custom: client.CustomObjectsApi, unique: str) -> dict[str, dict[str, Any]]:
    listed = await custom.list_cluster_custom_object(model.GROUP, model.VERSION, model.PLURAL)
    return {
        o["metadata"]["name"]: o
        for o in listed["items"]
        if o["metadata"]["name"].startswith(f"{unique}-f")
    }


def _answered(obj: dict[str, Any], expected: str | None) -> bool:
    ready = condition(obj, "Ready")
    if ready.get("status") != "False":
        return False
    if expected is None:
        return ready.get("reason") in LOOKUP_REASONS
    return ready.get("reason") == "InvalidSpec" and ready.get("message") == expected


def _mutations(calls: dict[str, int]) -> dict[str, int]:
    return {name: calls.get(name, 0) for name in MUTATING}


def _errors(metrics: Metrics) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in metrics.reconcile_errors.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                found[next(iter(sample.labels.values()))] = sample.value
    return found


async def server_refuses_empty_strings(api: client.ApiClient) -> bool:
    """Whether this API server refuses "" where the CRD schema says string (a
    dry-run create, nothing stored). The test kube-apiserver does, a conformant
    one does not: see the module docstring."""
    body = nodeeni_body(
        "fuzz-empty-string-probe",
        {
            "nodeSelector": {"probe": ""},
            "subnetID": "subnet-00000000",
            "securityGroupIDs": ["sg-00000000"],
        },
    )
    try:
        await client.CustomObjectsApi(api).create_cluster_custom_object(
            model.GROUP, model.VERSION, model.PLURAL, body, dry_run="All"
        )
    except ApiException as err:
        if err.status == HTTPStatus.UNPROCESSABLE_ENTITY:
            return True
        raise
    return False


def _enis_by_uid(world: World, uids: Sequence[str]) -> Counter[str]:
    """How many ENIs carry each NodeENI uid, in a few batched describes (blocking;
    as an observer, outside the realism layer's counters)."""
    ec2 = ec2_client(world.endpoint, observer=True)
    found: Counter[str] = Counter()
    for start in range(0, len(uids), FILTER_VALUES_PER_CALL):
        enis = ec2.describe_network_interfaces(
            Filters=[
                {
                    "Name": f"tag:{tags.NODEENI_UID_KEY}",
                    "Values": list(uids[start : start + FILTER_VALUES_PER_CALL]),
                }
            ]
        )["NetworkInterfaces"]
        for eni in enis:
            found.update(t["Value"] for t in eni["TagSet"] if t["Key"] == tags.NODEENI_UID_KEY)
    return found


async def fuzz_against_cluster(
    env: AWSEnv, *, count: int, at_seed: int, within: float, result: ChaosResult
) -> _Tally:
    """Create `count` drawn NodeENIs beside one valid one and check every answer.

    Figures go to `result` (the chaos row) as they are known, and the checks are
    made at the end, so a failing run still records what it saw."""
    api, nodes, nodeenis, world, realism, unique = env
    print(f"fuzz seed {at_seed} ({count} specs; replay with CHAOS_SEED={at_seed})")
    specs: list[dict[str, Any]] = draw_examples(
        fuzz.nodeeni_specs(avoid_names=SEEDED_NAMES, schema_breaking=True), count, at_seed
    )
    tally = _Tally()
    figures = result.details
    custom = client.CustomObjectsApi(api)
    await make_nodes(nodes, world, unique, az=AZ_A, count=1)
    odd_nodes = await _create_odd_nodes(api, unique, {"test": unique}, at_seed)
    metrics = Metrics()
    valid_name = f"{unique}-valid"
    expected: dict[str, str | None] = {}  # accepted name: InvalidSpec message, None: lookup
    pending: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    refuses_empty = await server_refuses_empty_strings(api)
    figures["server_refuses_empty_strings"] = refuses_empty
    try:
        config = controller_config(world)
        async with running_controller(api, config, metrics=metrics) as controller:
            await quiet(controller, unique)
            before = _mutations(realism.calls())
            started = time.monotonic()
            for i, spec in enumerate(specs):
                if i == len(specs) // 2:
                    valid = await nodeenis.create(
                        valid_name, nodeeni_spec(unique, world, "multus-a")
                    )
                name = f"{unique}-f{i:04d}"
                tally.tried += 1
                predicted = fuzz.schema_accepts(spec, as_served=refuses_empty)
                try:
                    stored = await nodeenis.create(name, spec)
                except ApiException as err:
                    if err.status != HTTPStatus.UNPROCESSABLE_ENTITY:
                        raise AssertionError(
                            f"{err.status} {err.body!s:.300} for {spec!r:.300}"
                        ) from err
                    tally.rejected += 1
                    if predicted:
                        tally.verdict_mismatch.append(f"rejected {spec!r:.300}: {err.body!s:.300}")
                    continue
                tally.accepted += 1
                if not predicted:
                    tally.verdict_mismatch.append(f"accepted {spec!r:.300}")
                # as stored: the API server's JSON orders map keys, and so the problems
                parsed, problems_found = parse_spec(stored["spec"])
                expected[name] = "; ".join(problems_found) if parsed is None else None
            created = time.monotonic() - started
            last_created = time.monotonic()
            figures.update(
                specs_tried=tally.tried,
                accepted=tally.accepted,
                rejected=tally.rejected,
                verdict_mismatches=len(tally.verdict_mismatch),
                created_seconds=round(created, 2),
            )

            deadline = time.monotonic() + within
            while True:
                listed = await _list_ours(custom, unique)
                pending = {
                    n: listed.get(n, {})
                    for n, want in expected.items()
                    if not _answered(listed.get(n, {}), want)
                }
                if not pending or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            answered = time.monotonic() - last_created
            figures.update(unanswered=len(pending), answered_seconds=round(answered, 2))
            if pending:
                problems.append(_describe_pending(pending, expected))
            try:
                await wait_for_nodeeni(api, valid_name, is_ready, within=within)
            except AssertionError as err:
                problems.append(str(err))
            else:
                result.converge_seconds = round(time.monotonic() - last_created, 2)
            # a little longer: nothing that answered acts late
            await asyncio.sleep(2)
            after = _mutations(realism.calls())
            live = controller.live()
            unexpected = {k: v for k, v in _errors(metrics).items() if k != "Conflict"}

            final = await _list_ours(custom, unique)
            for name, want in expected.items():
                if want is None:
                    tally.lookup[condition(final[name], "Ready").get("reason", "-")] += 1
                else:
                    tally.invalid += 1
            invalid = {n for n, w in expected.items() if w is not None}
            warned = await _warned(api, unique)
            tally.invalid_events = len(invalid & warned)
            mutations = {k: after[k] - before[k] for k in MUTATING}
            uids = {n: final[n]["metadata"]["uid"] for n in expected}
            enis = await asyncio.to_thread(
                _enis_by_uid, world, [valid["metadata"]["uid"], *uids.values()]
            )
            valid_enis = enis[valid["metadata"]["uid"]]
            fuzzed_enis = {n: enis[uid] for n, uid in uids.items() if enis[uid]}
            by_fuzzed = sum(max(0, mutations[k] - VALID_SLOT_CALLS[k]) for k in MUTATING)
            ready = is_ready(await read_nodeeni(api, valid_name))
            figures.update(
                invalid_spec=tally.invalid,
                invalid_spec_events=tally.invalid_events,
                lookup_errors=dict(sorted(tally.lookup.items())),
                mutating_calls=mutations,
                mutating_calls_by_fuzzed=by_fuzzed,
                enis_of_fuzzed=sum(fuzzed_enis.values()),
                valid_converged=int(ready and valid_enis == 1),
                valid_nodeenis=1,
                controller_live=list(live),
                unexpected_reconcile_errors=unexpected,
            )
            result.leaks = sum(fuzzed_enis.values())
            result.duplicates = max(0, valid_enis - 1)
            result.extra_mutating_calls = by_fuzzed

            # deleting every fuzzed NodeENI releases its finalizer
            deleting = time.monotonic()
            await nodeenis.cleanup()
            for name in [*expected, valid_name]:
                try:
                    await wait_gone(api, name, within=within)
                except TimeoutError:
                    problems.append(f"{name} still there {within:.0f}s after its deletion")
            deleted = time.monotonic() - deleting
            figures["deleted_seconds"] = round(deleted, 2)
            figures["controller_live_after_deletion"] = list(controller.live())
        print(
            f"FIGURE fuzz seed={at_seed}: tried {tally.tried}, API accepted {tally.accepted}, "
            f"rejected {tally.rejected}; InvalidSpec {tally.invalid} "
            f"({tally.invalid_events} with an event), lookup failures {dict(tally.lookup)}; "
            f"EC2 mutating calls by fuzzed specs {by_fuzzed}; created in {created:.1f}s, "
            f"all answered {answered:.1f}s after the last, deleted in {deleted:.1f}s"
        )
    finally:
        result.violations = [*problems, *tally.verdict_mismatch[:5]]
        with contextlib.suppress(Exception):
            await nodeenis.cleanup()
        await _delete_nodes(api, odd_nodes)
    assert not pending, problems[0]
    assert ready, problems
    assert live == (True, ""), live
    assert not unexpected, f"reconciles failed: {unexpected}"
    missing = sorted(invalid - warned)
    assert not missing, (
        f"{len(missing)} invalid NodeENIs without an InvalidSpec event: {missing[:5]}"
    )
    # no EC2 mutation but the valid NodeENI's one slot; no ENI of a fuzzed one
    assert mutations == VALID_SLOT_CALLS
    assert valid_enis == 1
    assert fuzzed_enis == {}
    assert problems == []
    assert not tally.verdict_mismatch, "\n".join(tally.verdict_mismatch[:5])
    return tally


def _describe_pending(pending: dict[str, dict[str, Any]], expected: dict[str, str | None]) -> str:
    lines = [f"{len(pending)} fuzzed NodeENIs never answered, e.g.:"]
    for name, obj in list(pending.items())[:5]:
        ready = condition(obj, "Ready")
        lines.append(
            f"  {name}: expected={expected[name]!r:.600}\n    ready={ready!r:.600}"
            f"\n    spec={obj.get('spec')!r:.300}"
        )
    return "\n".join(lines)


async def _warned(api: client.ApiClient, unique: str) -> set[str]:
    """The NodeENIs (of this test) that got a Warning InvalidSpec event."""
    events = await client.CoreV1Api(api).list_namespaced_event("default")
    return {
        e.involved_object.name
        for e in events.items
        if e.type == "Warning"
        and e.reason == "InvalidSpec"
        and (e.involved_object.name or "").startswith(unique)
    }


def _check_tally(tally: _Tally, count: int) -> None:
    assert tally.tried == count
    assert tally.accepted + tally.rejected == count
    assert tally.accepted >= count // 4, tally  # biased to pass the schema
    assert tally.invalid > 0, tally
    if count >= FULL_SPECS:
        assert sum(tally.lookup.values()) > 0, tally


@pytest.mark.timeout(90)
async def test_fuzz_smoke(aws_env: AWSEnv, chaos_seed: int) -> None:
    async with chaos_case("fuzz-smoke", chaos_seed, bound=80) as case:
        tally = await fuzz_against_cluster(
            aws_env, count=SMOKE_SPECS, at_seed=chaos_seed, within=30, result=case.result
        )
        _check_tally(tally, SMOKE_SPECS)


@pytest.mark.slow
@pytest.mark.chaos
@pytest.mark.timeout(600)
async def test_fuzz_full(aws_env: AWSEnv, chaos_seed: int) -> None:
    async with chaos_case("fuzz", chaos_seed, bound=580) as case:
        tally = await fuzz_against_cluster(
            aws_env, count=FULL_SPECS, at_seed=chaos_seed, within=180, result=case.result
        )
        _check_tally(tally, FULL_SPECS)

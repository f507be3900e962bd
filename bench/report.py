"""docs/performance.md, generated: hand-written text around tables made from the JSON.

Figures in the doc must be the ones a script printed, so nobody edits numbers
by hand: `bench/performance.md.in` holds the prose (and the older benchmark
sections, whose figures come from their own scripts), and the line
`<!-- suite -->` in it is replaced by tables built from bench/results/suite/*.json,
including a targets table that says which targets this run met.

    python -m bench.report   # regenerate without re-running anything
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.floor import IDS_PER_DESCRIBE, POLL_SECONDS

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "bench" / "performance.md.in"
RESULTS = ROOT / "bench" / "results" / "suite"
OUTPUT = ROOT / "docs" / "performance.md"
MARKER = "<!-- suite -->"
PACING_MARKER = "<!-- ec2_pacing -->"
ROLLOUT_MARKER = "<!-- rollout -->"
SPREAD_MARKER = "<!-- spread -->"
COSTS_MARKER = "<!-- server_costs -->"
XL_MARKER = "<!-- xl -->"
NEIGHBOUR_MARKER = "<!-- neighbour -->"
NEIGHBOUR_RESULT = ROOT / "bench" / "results" / "neighbour.json"
XL_RESULT = ROOT / "bench" / "results" / "xl.json"
COSTS_RESULT = ROOT / "bench" / "results" / "server_costs.json"
SPREAD_RESULTS = ROOT / "bench" / "results" / "spread"  # one directory per repeated run
PACING_RESULT = ROOT / "bench" / "results" / "ec2_pacing.json"
ROLLOUT_RESULTS = (
    ROOT / "bench" / "results" / "rollout.json",
    ROOT / "bench" / "results" / "rollout-20x2-latency1s.json",
)
ORDER = (
    "basic",
    "concurrent",
    "scaleup",
    "burst",
    "cleanup",
    "enterprise",
    "large",
    "latency",
    "throttled",
)
FLOORED = ("enterprise", "large", "latency")  # the scenarios run against the floor

Result = Mapping[str, Any]


def load(results: Path = RESULTS) -> dict[str, Result]:
    found: dict[str, Result] = {}
    for path in sorted(results.glob("*.json")):
        found[path.stem] = json.loads(path.read_text())
    return found


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _s(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _calls(calls: Mapping[str, float]) -> str:
    short = {
        "CreateNetworkInterface": "Create",
        "AttachNetworkInterface": "Attach",
        "ModifyNetworkInterfaceAttribute": "Modify",
        "DetachNetworkInterface": "Detach",
        "DeleteNetworkInterface": "Delete",
        "DescribeNetworkInterfaces": "DescribeENIs",
        "DescribeInstances": "DescribeInstances",
        "DescribeInstanceTypes": "DescribeInstanceTypes",
        "DescribeSubnets": "DescribeSubnets",
        "DescribeSecurityGroups": "DescribeSGs",
    }
    return ", ".join(f"{short.get(a, a)} {v:g}" for a, v in sorted(calls.items()))


def scenarios_section(results: Mapping[str, Result]) -> str:
    rows = []
    calls = []
    for name in ORDER:
        r = results.get(name)
        if r is None:
            continue
        c, d = r["create"], r["delete"]
        initial = r.get("initial")
        ok = c["succeeded"] + (initial["succeeded"] if initial else 0)
        t = c["time_to_attached"]
        rows.append(
            [
                r["title"],
                f"{r['enis']:,}",
                f"{c['seconds']:.2f} s" + (" ¹" if initial else ""),
                f"{c['enis_per_second']:.1f}",
                f"{_s(t['p50'])} / {_s(t['p95'])} / {_s(t['max'])} s",
                f"{d['seconds']:.2f} s",
                f"{ok:,} / {c['failed'] + (initial['failed'] if initial else 0)}",
                f"{r['duplicates']} / {r['leaks']}",
                f"{r['controller_cpu_seconds']:.1f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['settings']['max_concurrent_reconciles']} / "
                f"{r['settings']['max_concurrent_eni_cleanup']}",
            ]
        )
        calls.append(
            [
                r["title"].split(":")[0],
                _calls(c["ec2_calls_per_eni"]),
                f"{c['mutating_per_eni']:g} / {c['describes_per_eni']:g}",
                _calls(d["ec2_calls_per_eni"]),
                f"{d['mutating_per_eni']:g} / {d['describes_per_eni']:g}",
                f"{c['status_writes_per_eni']:g} / {d['status_writes_per_eni']:g}",
            ]
        )
    if not rows:
        return ""
    scaleup = results.get("scaleup")
    footnote = (
        f"\n\n¹ ScaleUp: from adding {scaleup['nodes'] // 2} nodes to Ready; the first "
        f"{scaleup['initial']['enis']} ENIs took {scaleup['initial']['seconds']:.2f} s."
        if scaleup and scaleup.get("initial")
        else ""
    )
    return (
        "### Scenarios\n\n"
        + _table(
            [
                "scenario",
                "ENIs",
                "apply → all Ready",
                "ENIs/s",
                "per-ENI time to attached p50 / p95 / max",
                "delete → all gone",
                "attached / failed",
                "duplicates / leaks",
                "controller CPU s",
                "peak RSS MB",
                "reconciles / cleanup workers",
            ],
            rows,
        )
        + footnote
        + "\n\n### EC2 calls and status writes per ENI\n\n"
        + "Counted by the realism layer in front of moto (every request the controller "
        "sent, retries and refused ones included); status writes are the API server's "
        "own count of PATCHes to `nodeenis/status`.\n\n"
        + _table(
            [
                "scenario",
                "create: calls per ENI",
                "create: mutating / describes per ENI",
                "teardown: calls per ENI",
                "teardown: mutating / describes per ENI",
                "status writes per ENI (create / teardown)",
            ],
            calls,
        )
    )


def floor_section(results: Mapping[str, Result]) -> str:
    rows = []
    for name in FLOORED:
        r = results.get(name)
        if r is None or not r.get("floor"):
            continue
        f = r["floor"]
        rows.append(
            [
                r["title"].split(":")[0],
                f"{r['create']['seconds']:.2f} s",
                f"{f['create_seconds']:.2f} s{_floor_runs(f, 'create')} "
                f"(concurrency {f['create_concurrency']})",
                f"**{f['create_ratio']:.2f}**",
                f"{r['delete']['seconds']:.2f} s",
                f"{f['delete_seconds']:.2f} s{_floor_runs(f, 'delete')} "
                f"(concurrency {f['delete_concurrency']})",
                f"**{f['delete_ratio']:.2f}**",
            ]
        )
    if not rows:
        return ""
    latency = results.get("latency")
    under_latency = (
        f"\n\nLatency runs the controller and its floor alike under "
        f"{latency['settings']['realism'].removeprefix('AWS rules on, latencies ')}; its floor "
        "also waits for each ENI to be `attached` (create) and `available` (before its "
        f"delete), polling every waiting ENI with one describe per {IDS_PER_DESCRIBE} of them, "
        f"at most every {POLL_SECONDS:g} s ({latency['floor'].get('describes', 0):g} "
        "describes per floor run)."
        if latency and latency.get("floor")
        else ""
    )
    return (
        "### Controller against the floor\n\n"
        "The floor (`bench/floor.py`) is a bare aiobotocore script making only create + "
        "attach + modify per ENI, then detach + delete, at the controller's concurrency "
        "(creates: min(NodeENIs, reconcile workers) x 16 per reconcile; teardown: the "
        "cleanup workers), against the same moto server, on fresh instances of the same "
        "shape. It runs once before the scenario and once after; the ratio is to the mean "
        "of the two (shown as mean [before, after]), so that the server's drift over the "
        "run does not land on one side (until 2026-11-27 it ran after only). Its creates "
        "carry the controller's tags and description, so both make the same requests.\n\n"
        + _table(
            [
                "scenario",
                "controller create",
                "floor create",
                "ratio",
                "controller delete",
                "floor delete",
                "ratio",
            ],
            rows,
        )
        + under_latency
    )


def _floor_runs(floor: Result, phase: str) -> str:
    runs = floor.get("runs") or []
    if len(runs) < 2:
        return ""
    return " [" + ", ".join(f"{run[f'{phase}_seconds']:.2f}" for run in runs) + "]"


def throttled_section(results: Mapping[str, Result]) -> str:
    r = results.get("throttled")
    if r is None or not r.get("throttle"):
        return ""
    t = r["throttle"]
    head = [
        "shape",
        "apply → all Ready",
        "theoretical minimum",
        "ratio",
        "RequestLimitExceeded",
        "EC2 requests",
        "share throttled",
    ]
    row = [
        f"{r['enis']:,} ENIs",
        f"{r['create']['seconds']:.1f} s",
        f"{t['theoretical_min_seconds']:.1f} s ({t['mutating_calls_needed']:,} mutating "
        f"calls at AWS's {t['aws_mutating_bucket']})",
        f"**{t['ratio_to_theoretical']:.3f}**",
        f"{t['request_limit_exceeded']:,}",
        f"{t['ec2_requests']:,}",
        f"{100 * t['request_limit_exceeded_share']:.2f}%",
    ]
    if t.get("ratio_to_share_minimum") is not None:  # measured with EC2_BUDGET_SHARE
        head[2:4] = ["minimum for its share", "ratio"]
        row[2:4] = [
            f"{t['client_paced_min_seconds']:.1f} s (at {t['client_mutating_bucket']}: "
            f"{t['budget_share']:g} of the product buckets)",
            f"**{t['ratio_to_share_minimum']:.3f}**",
        ]
    return "### Throttled\n\n" + _table(head, [row])


def idle_section(results: Mapping[str, Result]) -> str:
    r = results.get("large")
    if r is None or not r.get("idle"):
        return ""
    i = r["idle"]
    return "### Idle\n\n" + _table(
        [
            "after",
            "resyncs",
            "EC2 calls in all",
            "mutating per resync",
            "describes per resync",
            "ceil(ENIs / page size)",
            "status writes per resync",
            "controller CPU s",
        ],
        [
            [
                f"Large converged ({i['enis']:,} ENIs)",
                f"{i['resyncs']} x {r['settings']['reconcile_period_seconds']} s",
                _calls(i["ec2_calls"]) or "none",
                f"{i['mutating_per_resync']:g}",
                f"{i['describes_per_resync']:g}",
                f"{i['describe_target_per_resync']}",
                f"{i['status_writes_per_resync']:g}",
                f"{i['controller_cpu_seconds']:.2f}",
            ]
        ],
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    name: str
    figure: Callable[[Mapping[str, Result]], tuple[str, bool] | None]


def _get(results: Mapping[str, Result], *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, Mapping) or key not in value or value[key] is None:
            return None
        value = value[key]
    return value


def _ratio(
    name: str, phase: str, limit: float = 1.25
) -> Callable[[Mapping[str, Result]], tuple[str, bool] | None]:
    def figure(results: Mapping[str, Result]) -> tuple[str, bool] | None:
        ratio = _get(results, name, "floor", f"{phase}_ratio")
        return None if ratio is None else (f"{ratio:.2f}", ratio <= limit)

    return figure


def _correct(name: str) -> Callable[[Mapping[str, Result]], tuple[str, bool] | None]:
    def figure(results: Mapping[str, Result]) -> tuple[str, bool] | None:
        r = results.get(name)
        if r is None:
            return None
        ok = r["create"]["succeeded"]
        text = f"{ok:,}/{r['enis']:,} attached, {r['duplicates']} duplicates, {r['leaks']} leaks"
        return text, bool(r["correct"])

    return figure


def _per_eni(
    phase: str, kind: str, limit: float
) -> Callable[[Mapping[str, Result]], tuple[str, bool] | None]:
    def figure(results: Mapping[str, Result]) -> tuple[str, bool] | None:
        values = {
            n: results[n][phase][f"{kind}_per_eni"] for n in ("enterprise", "large") if n in results
        }
        if not values:
            return None
        text = ", ".join(f"{n} {v:g}" for n, v in values.items())
        return text, all(v <= limit for v in values.values())

    return figure


def _throttled(key: str, limit: float) -> Callable[[Mapping[str, Result]], tuple[str, bool] | None]:
    def figure(results: Mapping[str, Result]) -> tuple[str, bool] | None:
        value = _get(results, "throttled", "throttle", key)
        if value is None:
            return None
        text = f"{100 * value:.2f}%" if key.endswith("share") else f"{value:.3f}"
        return text, value <= limit

    return figure


def _idle(results: Mapping[str, Result]) -> tuple[str, bool] | None:
    i = _get(results, "large", "idle")
    if i is None:
        return None
    text = (
        f"mutating {i['mutating_per_resync']:g}, status writes {i['status_writes_per_resync']:g}, "
        f"describes {i['describes_per_resync']:g} (limit {i['describe_target_per_resync']})"
    )
    ok = (
        i["mutating_per_resync"] == 0
        and i["status_writes_per_resync"] == 0
        and i["describes_per_resync"] <= i["describe_target_per_resync"]
    )
    return text, ok


def _rss(results: Mapping[str, Result]) -> tuple[str, bool] | None:
    rss = _get(results, "large", "peak_rss_mb")
    return None if rss is None else (f"{rss:.0f} MB", rss <= 200)


def _large_time(results: Mapping[str, Result]) -> tuple[str, bool] | None:
    r = results.get("large")
    if r is None:
        return None
    seconds = r["create"]["seconds"] + r["delete"]["seconds"]
    return f"{seconds:.0f} s create + delete", seconds <= 900


TARGETS = (
    Target(
        name="controller/floor ≤ 1.25, Enterprise create", figure=_ratio("enterprise", "create")
    ),
    Target(
        name="controller/floor ≤ 1.25, Enterprise delete", figure=_ratio("enterprise", "delete")
    ),
    Target(name="controller/floor ≤ 1.25, Large create", figure=_ratio("large", "create")),
    Target(name="controller/floor ≤ 1.25, Large delete", figure=_ratio("large", "delete")),
    Target(name="Large: 100% success, no duplicates, no leaks", figure=_correct("large")),
    Target(name="controller/floor ≤ 1.2, Latency create", figure=_ratio("latency", "create", 1.2)),
    Target(name="controller/floor ≤ 1.2, Latency delete", figure=_ratio("latency", "delete", 1.2)),
    Target(name="Latency: 100% success, no duplicates, no leaks", figure=_correct("latency")),
    Target(name="create ≤ 3 mutating calls per ENI", figure=_per_eni("create", "mutating", 3)),
    Target(name="teardown ≤ 2 mutating calls per ENI", figure=_per_eni("delete", "mutating", 2)),
    Target(name="create: describes ≤ 0.25 per ENI", figure=_per_eni("create", "describes", 0.25)),
    Target(name="teardown: describes ≤ 0.25 per ENI", figure=_per_eni("delete", "describes", 0.25)),
    Target(
        name="Throttled ≤ 1.15 x the bucket minimum (for its share, once there is one)",
        figure=lambda results: (
            _throttled("ratio_to_share_minimum", 1.15)(results)
            or _throttled("ratio_to_theoretical", 1.15)(results)
        ),
    ),
    Target(
        name="Throttled ≤ 1% RequestLimitExceeded",
        figure=_throttled("request_limit_exceeded_share", 0.01),
    ),
    Target(name="Idle: 0 mutating, 0 status writes, describes ≤ ceil(ENIs/page)", figure=_idle),
    Target(name="controller peak RSS ≤ 200 MB at Large", figure=_rss),
    Target(name="Large within 15 minutes", figure=_large_time),
)


def targets_section(results: Mapping[str, Result]) -> str:
    rows = []
    for target in TARGETS:
        found = target.figure(results)
        if found is not None:
            text, met = found
            rows.append([target.name, text, "met" if met else "**missed**"])
    return "### Targets\n\n" + _table(["target", "this run", ""], rows) if rows else ""


def pacing_section(pacing: Result) -> str:
    """bench.ec2_pacing's table and the sentence comparing its two clients."""
    paced, unpaced = pacing["paced"], pacing["unpaced_baseline"]

    def row(name: str, r: Result) -> list[str]:
        requests = sum(r["ec2_requests_by_action"].values())
        return [
            name,
            f"{r['seconds']:.1f} s",
            f"{r['ratio_to_theoretical']:.3f}",
            f"{r['request_limit_exceeded']:,}",
            f"{requests:,}",
        ]

    table = _table(
        ["client", "wall time", "ratio to minimum", "RequestLimitExceeded answers", "EC2 requests"],
        [
            row("paced (product buckets, 90% of AWS's, EC2_BUDGET_SHARE=1)", paced),
            row("unpaced baseline (retries only)", unpaced),
        ],
    )
    cost = 100 * (paced["seconds"] / unpaced["seconds"] - 1)
    per_useful = sum(unpaced["ec2_requests_by_action"].values()) / unpaced["calls"]
    return (
        f"{table}\n\nPacing costs {cost:.0f}% of wall time against an unpaced client that "
        f"hammers the account with {per_useful:.1f} requests per useful one."
    )


def rollout_section(rollouts: Sequence[Result]) -> str:
    rows = []
    for r in rollouts:
        calls = r["ec2_calls"]
        describes = sum(n for a, n in calls.items() if a.startswith("Describe"))
        mutating = {
            a: n / r["enis_attached"] for a, n in calls.items() if not a.startswith("Describe")
        }
        rows.append(
            [
                f"{r['nodes']} nodes x {r['subnets']} subnets = {r['enis_attached']} ENIs",
                f"{r['attach_latency_seconds']:g} s",
                f"{r['apply_to_ready_seconds']:.2f} s",
                f"{_calls(mutating)}; describes {describes} in all "
                f"({describes / r['enis_attached']:.2f} per ENI)",
            ]
        )
    return _table(["shape", "attach latency", "apply → Ready", "EC2 calls per ENI"], rows)


def spread_section(runs: Sequence[Mapping[str, Result]]) -> str:
    """One row per run of Enterprise and Large: controller / floor seconds = ratio."""

    def cell(run: Mapping[str, Result], name: str, phase: str) -> str:
        result = run.get(name)
        if result is None:
            return "-"
        floor = result["floor"]
        return (
            f"{result[phase]['seconds']:.2f} / {floor[f'{phase}_seconds']:.2f} = "
            f"{floor[f'{phase}_ratio']:.2f}"
        )

    rows = [
        [
            str(n),
            *(
                cell(run, name, phase)
                for name in ("enterprise", "large")
                for phase in ("create", "delete")
            ),
        ]
        for n, run in enumerate(runs, start=1)
    ]
    head = ["run", "Enterprise create", "Enterprise delete", "Large create", "Large delete"]
    return _table(head, rows)


def costs_sentence(costs: Result) -> str:
    """The server_costs figures as one sentence of the prose."""
    parts = [
        f"{kind} {ms:.0f} ms ({costs['attach_calls_equivalent'][kind]:.0f} attaches)"
        for kind, ms in costs["ms_per_call"].items()
        if not kind.startswith("AttachNetworkInterface")
    ]
    attach = next(ms for kind, ms in costs["ms_per_call"].items() if kind.startswith("Attach"))
    return f"one attach {attach:.1f} ms; " + "; ".join(parts) + "."


def _judged(targets: Mapping[str, Result]) -> str:
    """A bench's own targets (each `target`, `value`, `met`) as a table."""
    return _table(
        ["target", "this run", ""],
        [
            [t["target"], f"{t['value']:g}", "met" if t["met"] else "**missed**"]
            for t in targets.values()
        ],
    )


def xl_section(xl: Result) -> str:
    """bench.xl's tables: baseline and candidate side by side, then its targets."""
    shape = xl["shape"]

    def row(v: Result) -> list[str]:
        storm = v["storm"]
        return [
            v["name"],
            v["code"],
            f"{v['synced_seconds']:.1f} s",
            f"{v['rss_after_sync_mb']:.0f} MB",
            f"{v['peak_rss_mb']:.0f} MB",
            f"{storm['cpu_ms_per_1000_updates']:.0f} ms",
            f"{storm['reconciles']} / {storm['ec2_calls']}",
        ]

    variants = [v for v in (xl.get("baseline"), xl["candidate"]) if v]
    rows = [row(v) for v in variants]
    ratios = xl.get("ratios") or {}
    if ratios:
        rows.append(
            [
                "candidate / baseline",
                "",
                f"{ratios['synced']:.2f}",
                "",
                f"{ratios['peak_rss']:.2f}",
                f"{ratios['cpu_per_update']:.2f}",
                "",
            ]
        )
    table = _table(
        [
            "controller",
            "code",
            "spawn → informers synced",
            "RSS after sync",
            "peak RSS (after the storm)",
            "CPU per 1,000 Node updates",
            "reconciles / EC2 calls in the storm",
        ],
        rows,
    )
    targets = _judged(xl["targets"])
    setup = xl["setup"]
    load = xl.get("load") or {}
    return (
        f"{shape['nodes']:,} Nodes of {xl['node_json_bytes']:,} bytes each as the API server "
        f"serves them, {shape['nodeenis']} NodeENIs over {shape['selected']:,} of them "
        f"({setup['enis']:,} ENIs, rolled out by the setup controller in "
        f"{setup['rollout_seconds']:.0f} s at a peak RSS of {setup['peak_rss_mb']:.0f} MB); "
        f"EC2: {xl['ec2']}. Load average (/proc/loadavg) at the start "
        f"`{load.get('start', '-')}`, at the end `{load.get('end', '-')}`.\n\n"
        f"{table}\n\n{targets}"
    )


def neighbour_section(r: Result) -> str:
    """bench.neighbour's table: the neighbour and the controller sharing one account."""
    n, c = r["neighbour"], r["controller"]
    ratio = c["ratio_to_share_minimum"]
    table = _table(
        ["client", "demand", "achieved", "throttled answers", "time"],
        [
            [
                "neighbour (CreateTags, open loop, no retries)",
                f"{n['demanded_per_second']:g} per s",
                f"{n['achieved_per_second']:.2f} per s ({100 * n['rate_share']:.1f}%)",
                f"{n['throttled']:,} of {n['sent']:,} ({100 * n['throttled_share']:.2f}%)",
                f"{n['seconds']:.0f} s (the rollout)",
            ],
            [
                f"controller ({c['enis']:,} ENIs, {c['mutating_calls_needed']:,} mutating calls)",
                f"its share: {c['client_mutating_bucket']}",
                f"{c['succeeded']:,} / {c['enis']:,} ENIs attached",
                f"{c['throttled']:,} of {c['ec2_requests']:,} ({100 * c['throttled_share']:.2f}%)",
                f"{c['seconds']:.1f} s; minimum for its share {c['share_min_seconds']:.1f} s"
                + (f", ratio **{ratio:.3f}**" if ratio is not None else ""),
            ],
        ],
    )
    targets = _judged(r["targets"])
    load = r.get("load") or {}
    return (
        f"{r['shape']}; AWS's mutating bucket ({r['aws_mutating_bucket']}) shared by both. "
        f"Load average at the start `{load.get('start', '-')}`, at the end "
        f"`{load.get('end', '-')}`.\n\n{table}\n\n{targets}"
    )


def render(
    template: str,
    results: Mapping[str, Result],
    *,
    pacing: Result | None = None,
    rollouts: Sequence[Result] = (),
    spread: Sequence[Mapping[str, Result]] = (),
    costs: Result | None = None,
    xl: Result | None = None,
    neighbour: Result | None = None,
) -> str:
    sections = [
        targets_section(results),
        scenarios_section(results),
        floor_section(results),
        throttled_section(results),
        idle_section(results),
    ]
    generated = "\n\n".join(s for s in sections if s)
    text = template.replace(MARKER, generated)
    if pacing is not None:
        text = text.replace(PACING_MARKER, pacing_section(pacing))
    if rollouts:
        text = text.replace(ROLLOUT_MARKER, rollout_section(rollouts))
    if spread:
        text = text.replace(SPREAD_MARKER, spread_section(spread))
    if costs is not None:
        text = text.replace(COSTS_MARKER, costs_sentence(costs))
    if xl is not None:
        text = text.replace(XL_MARKER, xl_section(xl))
    if neighbour is not None:
        text = text.replace(NEIGHBOUR_MARKER, neighbour_section(neighbour))
    return text


def write(*, template: Path = TEMPLATE, results: Path = RESULTS, output: Path = OUTPUT) -> Path:
    pacing = json.loads(PACING_RESULT.read_text()) if PACING_RESULT.exists() else None
    rollouts = [json.loads(p.read_text()) for p in ROLLOUT_RESULTS if p.exists()]
    # the suite's own run first, then the repeats
    runs = [load(results)] + [load(d) for d in sorted(SPREAD_RESULTS.glob("*")) if d.is_dir()]
    output.write_text(
        render(
            template.read_text(),
            load(results),
            pacing=pacing,
            rollouts=rollouts,
            spread=[r for r in runs if "enterprise" in r or "large" in r],
            costs=json.loads(COSTS_RESULT.read_text()) if COSTS_RESULT.exists() else None,
            xl=json.loads(XL_RESULT.read_text()) if XL_RESULT.exists() else None,
            neighbour=(
                json.loads(NEIGHBOUR_RESULT.read_text()) if NEIGHBOUR_RESULT.exists() else None
            ),
        )
    )
    return output


def save(figures: Mapping[str, Any], *, out: Path, regenerate: bool) -> None:
    """Write one bench's figures to `out` as JSON; then, unless told not to,
    regenerate the doc from every result there is."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"saved {out}")
    if regenerate:
        print(f"regenerated {write()}")


if __name__ == "__main__":
    print(f"regenerated {write()}")

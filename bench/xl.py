"""XL: 5,000 EKS-shaped Nodes, NodeENIs over 2,000 of them, a heartbeat storm.

What bounds a real rollout at scale is not CPU per ENI but what the informers
hold and how much every kubelet heartbeat costs: the chart limits the
controller to 256 Mi. This bench measures, against the real local API server
and the moto server (with the realism layer's AWS rules on, the controller's
client buckets opened wide: throttling is not what is measured here), each
controller as its own process:

- time from spawn to `/readyz` answering 200 (the informers have synced:
  5,000 Nodes of ~12 KB listed);
- controller CPU (utime + stime from /proc) per 1,000 Node status updates
  during a storm in which every Node gets one kubelet heartbeat (a
  strategic-merge status patch of its conditions), net of the controller's
  idle CPU over the same time;
- peak RSS (VmHWM from /proc) after the sync and after the storm.

Both controllers start from the same converged state: a setup controller (the
working tree's code) first rolls the NodeENIs out (each selecting its share
of the 2,000 nodes, one ENI per node, moto instances behind them; the 3,000
other Nodes name instances moto does not have: no NodeENI selects them, and
the controller only asks EC2 about them once, when it starts leading), and
its rollout time and peak RSS are reported too. Then the baseline (the code
at --baseline-ref, checked out with `git archive`, run from that directory
so its package wins on sys.path) and the candidate (the working tree) each
start, sync, reconcile once (nothing to do), sit idle, take the storm and are
stopped. Both see the same Nodes and NodeENIs in the same servers.

    python -m bench.xl [--nodes 5000 --selected 2000 --nodeenis 2]
        [--baseline-ref c2f7149 | --baseline-ref none] [--out bench/results/xl.json]

Prints the figures, saves JSON, regenerates docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import os
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from kubernetes_asyncio import client

from bench import measure, report
from bench.eks_nodes import eks_node_body, eks_node_status, heartbeat
from bench.scenarios import INSTANCE_TYPE, MAX_SUBNETS, WIDE_OPEN, BenchEnv, start_env
from eni_controller import model
from tests.harness.controller import CONTROLLER_COMMAND, controller_env
from tests.harness.ec2world import AZ_A, FAKE_CREDENTIALS, ec2_client
from tests.harness.kube import nodeeni_body
from tests.harness.procs import free_port, stop_pid_file

DEFAULT_OUT: Final = Path("bench/results/xl.json")
# main before issue 19 (informer transforms): the "was 419 MB" controller
BASELINE_REF: Final = "c2f7149"
GROUP_LABEL: Final = "bench.eni-controller/xl-group"
XL_LABEL: Final = "bench.eni-controller/xl"
STRATEGIC_MERGE: Final = "application/strategic-merge-patch+json"
IN_FLIGHT: Final = 32  # API requests the bench keeps in flight (TEST-INFRA: ~25 s for 5,000)
LAUNCH_BATCH: Final = 500  # moto instances per RunInstances
QUIET_SECONDS: Final = 2.0  # the controller's CPU is "quiet" after this long without work
SAMPLE_SECONDS: Final = 0.5
IDLE_SECONDS: Final = 5.0
ROOT: Final = Path(__file__).resolve().parents[1]
MAX_INSTANCES: Final = 4000  # the bench's node subnet is a /20
ENIS_PER_SUBNET: Final = 1000  # each NodeENI's subnet is a /22

Target = tuple[str, float]
TARGETS: Final[dict[str, Target]] = {
    "peak_rss_mb": ("peak RSS ≤ 200 MB", 200.0),
    "cpu_ms_per_1000_updates": ("CPU ≤ 100 ms per 1,000 Node updates", 100.0),
    "synced_seconds": ("synced ≤ 10 s after start", 10.0),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Shape:
    nodes: int = 5000
    selected: int = 2000
    nodeenis: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.selected <= min(self.nodes, MAX_INSTANCES):
            raise ValueError(f"--selected must be from 1 to --nodes and at most {MAX_INSTANCES}")
        if not 0 < self.nodeenis <= MAX_SUBNETS:
            raise ValueError(f"--nodeenis must be from 1 to {MAX_SUBNETS} (a subnet each)")
        if -(-self.selected // self.nodeenis) > ENIS_PER_SUBNET:
            raise ValueError(
                f"--selected / --nodeenis must be at most {ENIS_PER_SUBNET} (a /22 each)"
            )


@dataclass(kw_only=True)
class Storm:
    updates: int
    seconds: float  # the bench's patches, first sent to last answered
    cpu_seconds: float  # the controller's, from the first patch until it was quiet again
    idle_cpu_per_second: float
    net_cpu_seconds: float
    cpu_ms_per_1000_updates: float
    reconciles: int
    ec2_calls: int


@dataclass(kw_only=True)
class Variant:
    name: str
    code: str
    synced_seconds: float
    rss_after_sync_mb: float
    peak_rss_after_sync_mb: float
    peak_rss_mb: float  # VmHWM at the end: after the storm
    storm: Storm
    reconciles_after_start: int
    # after the first reconciles, before the storm (not in results saved before 2026-12-04)
    rss_before_storm_mb: float | None = None


@dataclass(kw_only=True)
class Setup:
    rollout_seconds: float
    enis: int
    peak_rss_mb: float
    controller_cpu_seconds: float


@dataclass(kw_only=True)
class XLResult:
    shape: dict[str, int]
    node_json_bytes: int  # one Node as the API server serves it (managedFields included)
    create_nodes_seconds: float
    setup: Setup
    candidate: Variant
    baseline: Variant | None
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    load: dict[str, str] = field(default_factory=dict)
    ec2: str = "moto server over HTTP, realism AWS rules on, client buckets opened wide"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- the world ---------------------------------------------------------------------


def fake_instance_id(index: int) -> str:
    """A well-formed id of an instance moto does not have (nodes outside the selection)."""
    return "i-" + hashlib.sha256(f"xl/{index}".encode()).hexdigest()[:17]


def launch_instances(env: BenchEnv, count: int) -> list[str]:
    ec2 = ec2_client(env.world.endpoint)
    ids: list[str] = []
    while len(ids) < count:
        batch = min(LAUNCH_BATCH, count - len(ids))
        reservation = ec2.run_instances(
            ImageId=env.image_id,
            InstanceType=INSTANCE_TYPE,
            MinCount=batch,
            MaxCount=batch,
            SubnetId=env.node_subnet,
        )
        ids += [i["InstanceId"] for i in reservation["Instances"]]
    return ids


def node_name(index: int) -> str:
    return f"xl-node-{index:05d}"


def group_of(index: int, shape: Shape) -> str | None:
    """The NodeENI group of node `index`; None for nodes no NodeENI selects."""
    return f"g{index % shape.nodeenis}" if index < shape.selected else None


async def _in_flight(
    calls: Sequence[Callable[[], Awaitable[None]]], *, limit: int = IN_FLIGHT
) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


async def create_nodes(api: client.ApiClient, shape: Shape, instances: Sequence[str]) -> None:
    # Any: the stubs admit model classes only and omit _content_type
    core: Any = client.CoreV1Api(api)

    def create(index: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            name = node_name(index)
            group = group_of(index, shape)
            body = eks_node_body(
                name=name,
                index=index,
                instance_id=instances[index] if group else fake_instance_id(index),
                az=AZ_A,
                extra_labels={XL_LABEL: "true", **({GROUP_LABEL: group} if group else {})},
                instance_type=INSTANCE_TYPE if group else "m5.4xlarge",
            )
            await measure.expect_ok(core.create_node(body, _preload_content=False))
            await measure.expect_ok(
                core.patch_node_status(
                    name,
                    eks_node_status(name=name, index=index),
                    _content_type=STRATEGIC_MERGE,
                    _preload_content=False,
                )
            )

        return run

    await _in_flight([create(i) for i in range(shape.nodes)])


async def storm(api: client.ApiClient, shape: Shape, *, at: str) -> None:
    """Every Node reports in once: one heartbeat status patch each."""
    core: Any = client.CoreV1Api(api)

    def beat(index: int) -> Callable[[], Awaitable[None]]:
        def run() -> Awaitable[None]:
            return measure.expect_ok(
                core.patch_node_status(
                    node_name(index),
                    heartbeat(at),
                    _content_type=STRATEGIC_MERGE,
                    _preload_content=False,
                )
            )

        return run

    await _in_flight([beat(i) for i in range(shape.nodes)])


async def served_node_bytes(api: client.ApiClient) -> int:
    response: Any = await client.CoreV1Api(api).read_node(node_name(0), _preload_content=False)
    try:
        return len(await response.read())
    finally:
        response.release()


def nodeeni_bodies(env: BenchEnv, shape: Shape) -> list[dict[str, Any]]:
    return [
        nodeeni_body(
            f"xl-{g}",
            {
                "nodeSelector": {GROUP_LABEL: f"g{g}"},
                "subnetIDs": [env.eni_subnets[g]],
                "securityGroupIDs": [env.security_group],
                "deviceIndex": 1,
            },
            labels={XL_LABEL: "true"},
        )
        for g in range(shape.nodeenis)
    ]


# --- a controller process ----------------------------------------------------------


class ControllerProcess:
    """`eni-controller run` from `cwd` (its eni_controller package wins on sys.path)."""

    def __init__(self, env: BenchEnv, *, name: str, cwd: Path, **settings: str) -> None:
        self.metrics_port, self.health_port = free_port(), free_port()
        self.pid_path = env.state / f"{name}.pid"
        log = (env.state / f"{name}.log").open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(CONTROLLER_COMMAND),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=controller_env(
                env.world,
                env.endpoint.kubeconfig,
                METRICS_PORT=str(self.metrics_port),
                HEALTH_PROBE_PORT=str(self.health_port),
                ENABLE_LEADER_ELECTION="false",
                LOG_LEVEL="warning",
                RECONCILE_PERIOD="30m",  # no resync inside the measured windows
                ORPHAN_SWEEP_INTERVAL="30m",
                EC2_MUTATING_BURST=WIDE_OPEN,
                EC2_MUTATING_RATE=WIDE_OPEN,
                EC2_DESCRIBE_BURST=WIDE_OPEN,
                EC2_DESCRIBE_RATE=WIDE_OPEN,
                EC2_BUDGET_SHARE="1",
                **settings,
            ),
        )
        log.close()
        self.pid_path.write_text(str(self.proc.pid))

    def ready(self) -> bool:
        """/readyz answers 200: the informers have synced."""
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        with (
            contextlib.suppress(OSError, urllib.error.HTTPError),
            urllib.request.urlopen(url, timeout=1) as response,
        ):
            return bool(response.status == 200)
        return False

    async def wait_ready(self, *, within: float = 120.0) -> float:
        """Seconds from spawn to the first 200 from /readyz."""
        async with asyncio.timeout(within):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"controller exited with {self.proc.returncode}")
                if self.ready():
                    return time.perf_counter() - self.started
                await asyncio.sleep(0.05)

    def sample(self) -> measure.ProcessSample:
        return measure.process_sample(self.proc.pid)

    def reconciles(self) -> int:
        samples = measure.scrape(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)
        return int(measure.total(samples, "eni_controller_reconcile_total"))

    async def quiet(self, *, idle_per_second: float = 0.0, within: float = 120.0) -> None:
        """Until the process has used no more than its idle CPU (plus one clock
        tick) for QUIET_SECONDS."""
        window = round(QUIET_SECONDS / SAMPLE_SECONDS)
        history = [self.sample().cpu_seconds]
        tick = 1 / os.sysconf("SC_CLK_TCK")
        async with asyncio.timeout(within):
            while True:
                await asyncio.sleep(SAMPLE_SECONDS)
                history.append(self.sample().cpu_seconds)
                if len(history) > window:
                    used = history[-1] - history[-1 - window]
                    if used <= idle_per_second * QUIET_SECONDS + tick:
                        return

    def stop(self) -> None:
        stop_pid_file(self.pid_path)


# --- the phases --------------------------------------------------------------------


async def setup_rollout(env: BenchEnv, shape: Shape) -> Setup:
    """The working tree's controller rolls the NodeENIs out; then it is stopped."""
    controller = ControllerProcess(env, name="xl-setup", cwd=ROOT)
    try:
        await controller.wait_ready()
        bodies = nodeeni_bodies(env, shape)
        expected = {
            b["metadata"]["name"]: len(
                [i for i in range(shape.selected) if group_of(i, shape) == f"g{g}"]
            )
            for g, b in enumerate(bodies)
        }
        custom = client.CustomObjectsApi(env.api)
        async with measure.NodeENITracker(
            api=env.api, label_selector=f"{XL_LABEL}=true"
        ) as tracker:
            start = time.perf_counter()
            for body in bodies:
                await custom.create_cluster_custom_object(
                    model.GROUP, model.VERSION, model.PLURAL, body
                )

            await tracker.wait(lambda objects: measure.converged(objects, expected), within=1800)
            seconds = time.perf_counter() - start
        sample = controller.sample()
        return Setup(
            rollout_seconds=round(seconds, 1),
            enis=sum(expected.values()),
            peak_rss_mb=sample.peak_rss_mb,
            controller_cpu_seconds=round(sample.cpu_seconds, 2),
        )
    finally:
        controller.stop()


async def measure_variant(
    env: BenchEnv, shape: Shape, *, name: str, code: str, cwd: Path, storm_at: str
) -> Variant:
    controller = ControllerProcess(env, name=f"xl-{name}", cwd=cwd)
    try:
        synced = await controller.wait_ready()
        after_sync = controller.sample()
        # leading starts with a resync: each NodeENI reconciled once (nothing to do)
        async with asyncio.timeout(300):
            while True:
                if controller.reconciles() >= shape.nodeenis:
                    break
                await asyncio.sleep(0.2)
        await controller.quiet()
        reconciles = controller.reconciles()
        idle_start = controller.sample()
        await asyncio.sleep(IDLE_SECONDS)
        idle_rate = (controller.sample().cpu_seconds - idle_start.cpu_seconds) / IDLE_SECONDS

        calls_before = sum(env.realism.calls().values())
        before = controller.sample()  # after the first reconciles and the idle window
        started = time.perf_counter()
        await storm(env.api, shape, at=storm_at)
        patched = time.perf_counter() - started
        await controller.quiet(idle_per_second=idle_rate)
        after = controller.sample()
        elapsed = time.perf_counter() - started
        cpu = after.cpu_seconds - before.cpu_seconds
        net = max(0.0, cpu - idle_rate * elapsed)
        return Variant(
            name=name,
            code=code,
            synced_seconds=round(synced, 2),
            rss_after_sync_mb=after_sync.rss_mb,
            peak_rss_after_sync_mb=after_sync.peak_rss_mb,
            peak_rss_mb=after.peak_rss_mb,
            reconciles_after_start=reconciles,
            rss_before_storm_mb=before.rss_mb,
            storm=Storm(
                updates=shape.nodes,
                seconds=round(patched, 2),
                cpu_seconds=round(cpu, 3),
                idle_cpu_per_second=round(idle_rate, 4),
                net_cpu_seconds=round(net, 3),
                cpu_ms_per_1000_updates=round(1000 * net / (shape.nodes / 1000), 1),
                reconciles=controller.reconciles() - reconciles,
                ec2_calls=sum(env.realism.calls().values()) - calls_before,
            ),
        )
    finally:
        controller.stop()


def checkout(ref: str, into: Path) -> Path:
    """The eni_controller package as of `ref`, under `into` (git archive, no worktree)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "eni_controller"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as tar:
        tar.write(archive)
        tar.seek(0)
        with tarfile.open(fileobj=tar) as files:
            files.extractall(into, filter="data")
    return into


def head() -> str:
    described = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        check=True,
        capture_output=True,
        text=True,
    )
    return f"working tree at {described.stdout.strip()}"


def _judge(result: XLResult) -> None:
    c = result.candidate
    figures = {
        "peak_rss_mb": c.peak_rss_mb,
        "cpu_ms_per_1000_updates": c.storm.cpu_ms_per_1000_updates,
        "synced_seconds": c.synced_seconds,
    }
    result.targets = {
        key: {"target": text, "value": figures[key], "met": figures[key] <= limit}
        for key, (text, limit) in TARGETS.items()
    }
    b = result.baseline
    if b is not None:
        result.ratios = {
            "peak_rss": round(c.peak_rss_mb / b.peak_rss_mb, 3),
            "cpu_per_update": round(
                c.storm.cpu_ms_per_1000_updates / b.storm.cpu_ms_per_1000_updates, 3
            )
            if b.storm.cpu_ms_per_1000_updates
            else 0.0,
            "synced": round(c.synced_seconds / b.synced_seconds, 3),
        }


async def run(shape: Shape, *, state: Path, baseline_ref: str | None) -> XLResult:
    load = {"start": measure.loadavg()}
    env = await start_env(state)
    try:
        env.realism.reset()
        env.realism.aws_rules()
        started = time.perf_counter()
        instances = launch_instances(env, shape.selected)
        await create_nodes(env.api, shape, instances)
        created = time.perf_counter() - started
        print(f"{shape.nodes} Nodes created in {created:.1f}s", flush=True)
        setup = await setup_rollout(env, shape)
        print(f"setup: {setup}", flush=True)
        baseline = None
        if baseline_ref is not None:
            baseline = await measure_variant(
                env,
                shape,
                name="baseline",
                code=f"git archive {baseline_ref}",
                cwd=checkout(baseline_ref, state / "baseline"),
                storm_at="2026-11-01T09:01:00Z",
            )
            print(f"baseline: {baseline}", flush=True)
        candidate = await measure_variant(
            env, shape, name="candidate", code=head(), cwd=ROOT, storm_at="2026-11-01T09:02:00Z"
        )
        print(f"candidate: {candidate}", flush=True)
        load["end"] = measure.loadavg()
        result = XLResult(
            shape=dataclasses.asdict(shape),
            node_json_bytes=await served_node_bytes(env.api),
            create_nodes_seconds=round(created, 1),
            setup=setup,
            candidate=candidate,
            baseline=baseline,
            load=load,
        )
        _judge(result)
        return result
    finally:
        await env.close()


def summary(result: XLResult) -> str:
    lines = [
        f"XL: {result.shape['nodes']:,} Nodes ({result.node_json_bytes:,} B each as served), "
        f"NodeENIs over {result.shape['selected']:,}; setup rollout of {result.setup.enis:,} "
        f"ENIs {result.setup.rollout_seconds}s, peak RSS {result.setup.peak_rss_mb} MB"
    ]
    for v in (result.baseline, result.candidate):
        if v is None:
            continue
        lines.append(
            f"  {v.name:9} synced {v.synced_seconds}s, RSS after sync {v.rss_after_sync_mb} MB "
            f"(peak {v.peak_rss_after_sync_mb}), peak RSS {v.peak_rss_mb} MB, storm "
            f"{v.storm.updates:,} updates in {v.storm.seconds}s: "
            f"{v.storm.cpu_ms_per_1000_updates} ms CPU per 1,000 (net of idle "
            f"{v.storm.idle_cpu_per_second:.4f} s/s), reconciles {v.storm.reconciles}, "
            f"EC2 calls {v.storm.ec2_calls}"
        )
    for t in result.targets.values():
        lines.append(f"  {t['target']}: {t['value']} {'met' if t['met'] else 'MISSED'}")
    lines.append(f"  load average {result.load}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Shape()
    parser.add_argument("--nodes", type=int, default=default.nodes)
    parser.add_argument("--selected", type=int, default=default.selected)
    parser.add_argument("--nodeenis", type=int, default=default.nodeenis)
    parser.add_argument(
        "--baseline-ref", default=BASELINE_REF, help="git ref of the baseline, or 'none'"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    try:
        shape = Shape(nodes=args.nodes, selected=args.selected, nodeenis=args.nodeenis)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    os.environ.setdefault("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    ref = None if args.baseline_ref == "none" else args.baseline_ref
    with tempfile.TemporaryDirectory(prefix="eni-bench-xl-") as state:
        result = asyncio.run(run(shape, state=Path(state), baseline_ref=ref))
    print(summary(result))
    report.save(result.to_json(), out=args.out, regenerate=not args.no_report)


if __name__ == "__main__":
    main()

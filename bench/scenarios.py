"""The suite's end-to-end scenarios: the controller as its own process, against
the real kube-apiserver and the moto server over HTTP, timed from outside.

Layout: a scenario of N nodes x M ENIs per node applies M NodeENIs, NodeENI s
selecting every node of the scenario with one subnet of its own at device
index s + 1 (10 NodeENIs x 10 subnets for Large), so ten reconciles share the
same instances and the per-instance index allocator is exercised. Every
scenario ends with the deletion of all its NodeENIs, timed to the moment the
last ENI is gone from EC2 and the last NodeENI from the API server.

Each scenario gets a fresh controller process (so its CPU seconds and peak RSS
are its own), fresh EC2 instances and Nodes; the API server and moto are
shared by the whole run. The floor (bench.floor) runs before the controller
starts and again after it has stopped, each time on fresh instances of the
same shape on the same server; ratios are to the mean of the two.

Latency is Large's shape under EC2's own latencies (AWS_LATENCIES, realism
switches set for the controller's run and both floors alike): the floor then
waits for `attached` and `available` as any client must.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from bench import measure
from bench.floor import FloorResult, FloorSlot, run_floor
from eni_controller import model
from eni_controller.aws.ratelimit import (
    AWS_DEFAULT_LIMITS,
    DEFAULT_BUDGET_SHARE,
    DEFAULT_LIMITS,
    BucketSpec,
)
from tests.harness.apiserver import APIServerEndpoint, LocalAPIServer
from tests.harness.controller import spawn_controller
from tests.harness.ec2world import (
    AZ_A,
    LARGE_INSTANCE_TYPE,
    Instance,
    World,
    ec2_client,
    seed_world,
)
from tests.harness.kube import (
    api_client_from_kubeconfig,
    install_crd,
    node_body,
    nodeeni_body,
)
from tests.harness.motoserver import MotoServer
from tests.harness.procs import free_port, stop_pid_file
from tests.harness.realism.control import RealismControl

INSTANCE_TYPE = LARGE_INSTANCE_TYPE  # 15 ENIs: the primary + 10 of ours fit
EXECUTOR_CONCURRENCY = 16  # eni_controller.reconcile.executor.Executor's default, per reconcile
PAGE_SIZE = 1000  # eni_controller.aws.ec2._PAGE_SIZE
MAX_SUBNETS = 10
RESYNC_SETTLE_SECONDS = 5.0  # a resync's describe and reconciles are done by then
WIDE_OPEN = "1000"  # config.MAX_COUNT: the largest bucket the controller accepts
# the bench's own EC2 requests (instances for the nodes), not the controller's
BENCH_ACTIONS = frozenset({"RunInstances", "TerminateInstances", "DescribeImages"})
# EC2 as it answers in a region, roughly: a create answers in ~300 ms, a describe
# in ~150 ms; an attachment is `attached` ~2 s after its attach, a detached ENI
# `available` ~5 s after its detach. Other answers (attach, modify, detach,
# delete) come at moto's speed: issue 19 gives no figure for them.
AWS_LATENCIES: Mapping[str, Any] = {
    "attach_latency": 2.0,
    "detach_latency": 5.0,
    "answer_latencies": {"CreateNetworkInterface": 0.3, "describe": 0.15},
}
SCENARIO_LABEL = "bench.eni-controller/scenario"
NODE_LABEL = "bench.eni-controller/node"


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """What a run is parameterised by (flags of `python -m bench.suite`)."""

    max_concurrent_reconciles: int = 5
    max_concurrent_eni_cleanup: int = 3
    timeout_seconds: float = 900.0
    # Idle measures three of these. Long enough that the timed phases (under a
    # minute at Large) are laid out between two resyncs, as they fall with the
    # product default (5 m); with 10 s, two resyncs fell inside every Large
    # create, each one describe of every managed ENI that the floor never makes.
    reconcile_period_seconds: int = 60


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    name: str
    title: str
    nodes: int
    enis_per_node: int
    per_node: bool = False  # NodeENI i selects node i only, one ENI each (Concurrent, Cleanup)
    add_nodes: int = 0  # ScaleUp: nodes added once the first ones are Ready
    throttled: bool = False  # AWS-default buckets in the realism layer, product client buckets
    idle_resyncs: int = 0  # after convergence, this many RECONCILE_PERIODs of nothing to do
    floor: bool = False  # also run the bare aiobotocore floor on the same shape
    # realism switches (EC2's latencies) for the controller's run and its floors
    latencies: Mapping[str, Any] | None = None

    @property
    def nodeenis(self) -> int:
        return self.nodes if self.per_node else self.enis_per_node

    @property
    def enis(self) -> int:
        return (self.nodes + self.add_nodes) * self.enis_per_node


@dataclass(kw_only=True)
class PhaseResult:
    """One timed phase: apply → all Ready, or delete → all gone."""

    seconds: float
    enis: int
    succeeded: int
    failed: int
    enis_per_second: float
    time_to_attached: dict[str, float | None] = field(default_factory=dict)
    ec2_calls: dict[str, int] = field(default_factory=dict)
    ec2_calls_per_eni: dict[str, float] = field(default_factory=dict)
    mutating_per_eni: float = 0.0
    describes_per_eni: float = 0.0
    ec2_error_answers: dict[str, int] = field(default_factory=dict)
    status_writes: int = 0
    status_writes_per_eni: float = 0.0
    metadata_patches: int = 0
    events_created: int = 0
    eninode_writes: int = 0  # ENINode creates and spec patches (the node agents' specs)
    reconciles: dict[str, int] = field(default_factory=dict)
    controller_cpu_seconds: float = 0.0


@dataclass(kw_only=True)
class IdleResult:
    resyncs: int
    seconds: float
    enis: int
    ec2_calls: dict[str, int]
    mutating_per_resync: float
    describes_per_resync: float
    status_writes_per_resync: float
    describe_target_per_resync: int  # ceil(ENIs / page size)
    controller_cpu_seconds: float


@dataclass(kw_only=True)
class ScenarioResult:
    name: str
    title: str
    nodes: int
    enis_per_node: int
    nodeenis: int
    enis: int
    settings: dict[str, Any]
    create: PhaseResult
    delete: PhaseResult
    initial: PhaseResult | None = None  # ScaleUp: the first nodes, before the added ones
    enis_in_ec2_after_create: int = 0
    duplicates: int = 0
    leaks: int = 0
    peak_rss_mb: float = 0.0
    controller_cpu_seconds: float = 0.0
    idle: IdleResult | None = None
    floor: dict[str, Any] | None = None
    throttle: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        first = self.initial.succeeded if self.initial else 0
        return (
            self.create.failed == 0
            and first + self.create.succeeded == self.enis
            and self.enis_in_ec2_after_create == self.enis
            and self.duplicates == 0
            and self.leaks == 0
            and self.delete.failed == 0
        )

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "correct": self.correct}


SEED_SCENARIOS = (
    Scenario(name="basic", title="Basic: 3 nodes x 3 ENIs", nodes=3, enis_per_node=3),
    Scenario(
        name="concurrent",
        title="Concurrent: 5 NodeENIs created at once",
        nodes=5,
        enis_per_node=1,
        per_node=True,
    ),
    Scenario(
        name="scaleup",
        title="ScaleUp: 2 nodes x 2 ENIs, then 2 nodes added",
        nodes=2,
        enis_per_node=2,
        add_nodes=2,
    ),
    Scenario(name="burst", title="Burst: 2 nodes x 3 ENIs at once", nodes=2, enis_per_node=3),
    Scenario(
        name="cleanup",
        title="Cleanup: delete 4 NodeENIs",
        nodes=4,
        enis_per_node=1,
        per_node=True,
    ),
)


def scale_scenarios(*, nodes: int, enis_per_node: int) -> dict[str, Scenario]:
    large = Scenario(
        name="large",
        title=f"Large: {nodes} nodes x {enis_per_node} ENIs",
        nodes=nodes,
        enis_per_node=enis_per_node,
        floor=True,
        idle_resyncs=3,
    )
    return {
        "enterprise": Scenario(
            name="enterprise",
            title="Enterprise: 10 nodes x 10 ENIs",
            nodes=10,
            enis_per_node=10,
            floor=True,
        ),
        "large": large,
        # Large's shape and floor under EC2's latencies (Idle is Large's to measure)
        "latency": dataclasses.replace(
            large,
            name="latency",
            title=f"Realistic latency: {nodes} nodes x {enis_per_node} ENIs, AWS-like latencies",
            idle_resyncs=0,
            latencies=AWS_LATENCIES,
        ),
        "throttled": Scenario(
            name="throttled",
            title=f"Throttled: {nodes} nodes x {enis_per_node} ENIs under AWS-default buckets",
            nodes=nodes,
            enis_per_node=enis_per_node,
            throttled=True,
        ),
    }


# --- the servers -----------------------------------------------------------------


@dataclass(kw_only=True)
class BenchEnv:
    """The API server, moto with the realism layer, and the bench's own subnets."""

    state: Path
    endpoint: APIServerEndpoint
    world: World
    realism: RealismControl
    api: client.ApiClient
    node_subnet: str
    eni_subnets: tuple[str, ...]
    security_group: str
    servers: tuple[LocalAPIServer, MotoServer]
    image_id: str

    async def close(self) -> None:
        await self.api.close()
        for server in self.servers:
            server.stop()


async def start_env(state: Path) -> BenchEnv:
    api_server, moto = LocalAPIServer(state / "api"), MotoServer(state / "moto")
    try:
        endpoint = api_server.start()
        world = seed_world(moto.start())
        ec2 = ec2_client(world.endpoint)
        # a /20 for up to ~4,000 instances and a /22 per ENI subnet: room for Large
        node_subnet = _subnet(ec2, world.vpc_id, "10.0.128.0/20", "bench-nodes")
        eni_subnets = tuple(
            _subnet(ec2, world.vpc_id, f"10.0.{160 + 4 * i}.0/22", f"bench-eni-{i}")
            for i in range(MAX_SUBNETS)
        )
        api = await api_client_from_kubeconfig(endpoint.kubeconfig)
        await install_crd(api)
    except BaseException:
        moto.stop()
        api_server.stop()
        raise
    return BenchEnv(
        state=state,
        endpoint=endpoint,
        world=world,
        realism=RealismControl(world.endpoint),
        api=api,
        node_subnet=node_subnet,
        eni_subnets=eni_subnets,
        security_group=world.security_group("multus-sg").id,
        servers=(api_server, moto),
        image_id=ec2.describe_images()["Images"][0]["ImageId"],
    )


def _subnet(ec2: Any, vpc_id: str, cidr: str, name: str) -> str:
    subnet_id: str = ec2.create_subnet(
        VpcId=vpc_id,
        CidrBlock=cidr,
        AvailabilityZone=AZ_A,
        TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": name}]}],
    )["Subnet"]["SubnetId"]
    return subnet_id


# --- one scenario ---------------------------------------------------------------------


@dataclass(kw_only=True)
class _Snapshot:
    at: float
    calls: dict[str, int]
    errors: dict[str, int]
    apiserver: measure.Samples
    controller: measure.Samples
    process: measure.ProcessSample


class ScenarioRun:
    """One scenario's controller, nodes and NodeENIs."""

    def __init__(self, env: BenchEnv, scenario: Scenario, settings: Settings) -> None:
        self.env = env
        self.scenario = scenario
        self.settings = settings
        self.ec2 = ec2_client(env.world.endpoint)
        self.core = client.CoreV1Api(env.api)
        self.custom = client.CustomObjectsApi(env.api)
        self.instances: list[str] = []
        self.node_names: list[str] = []
        self.metrics_port = 0
        self.pid = 0
        self.controllers = 0
        self.leading_at = 0.0  # perf_counter when the controller began to lead: its resync clock

    # controller process ------------------------------------------------------------

    def controller_settings(self, *, product_buckets: bool) -> dict[str, str]:
        settings = {
            "MAX_CONCURRENT_RECONCILES": str(self.settings.max_concurrent_reconciles),
            "MAX_CONCURRENT_ENI_CLEANUP": str(self.settings.max_concurrent_eni_cleanup),
            "RECONCILE_PERIOD": f"{self.settings.reconcile_period_seconds}s",
            "ENABLE_LEADER_ELECTION": "false",
            "LOG_LEVEL": "warning",
        }
        if not product_buckets:
            # the floor has no client-side pacing; neither does the controller here
            settings |= {
                "EC2_MUTATING_BURST": WIDE_OPEN,
                "EC2_MUTATING_RATE": WIDE_OPEN,
                "EC2_DESCRIBE_BURST": WIDE_OPEN,
                "EC2_DESCRIBE_RATE": WIDE_OPEN,
                "EC2_BUDGET_SHARE": "1",  # all of those wide buckets
            }
        return settings

    async def start_controller(self, *, product_buckets: bool) -> None:
        self.controllers += 1
        self.metrics_port = free_port()
        proc = spawn_controller(
            self.env.world,
            self.env.endpoint.kubeconfig,
            state_dir=self.env.state,
            name=f"controller-{self.scenario.name}-{self.controllers}",
            METRICS_PORT=str(self.metrics_port),
            **self.controller_settings(product_buckets=product_buckets),
        )
        self.pid = proc.pid
        async with asyncio.timeout(60):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"controller exited with {proc.returncode}")
                try:
                    if measure.total(self.controller_metrics(), "eni_controller_leader") == 1:
                        self.leading_at = time.perf_counter()
                        return
                except OSError:
                    pass
                await asyncio.sleep(0.1)

    async def clear_of_resync(self) -> None:
        """Wait, if need be, until the middle of a RECONCILE_PERIOD.

        A phase started at least half a period before the next resync, and 5 s
        after the last one (its describe and reconciles done), has no periodic
        resync in it unless it runs longer than half a period; an Idle window
        of three periods started so holds exactly three.
        """
        period = self.settings.reconcile_period_seconds
        elapsed = time.perf_counter() - self.leading_at
        since = elapsed % period  # the first period starts with no resync behind it
        settling = elapsed >= period and since < RESYNC_SETTLE_SECONDS
        if settling or period - since < period / 2:
            await asyncio.sleep((period / 2 - since) % period)

    def stop_controller(self) -> None:
        stop_pid_file(self.env.state / f"controller-{self.scenario.name}-{self.controllers}.pid")

    def controller_metrics(self) -> measure.Samples:
        return measure.scrape(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)

    # world ---------------------------------------------------------------------------

    async def add_nodes(self, count: int) -> None:
        first = len(self.node_names)
        reservation = self.ec2.run_instances(
            ImageId=self.env.image_id,
            InstanceType=INSTANCE_TYPE,
            MinCount=count,
            MaxCount=count,
            SubnetId=self.env.node_subnet,
        )
        ids = [i["InstanceId"] for i in reservation["Instances"]]
        self.instances += ids
        gate = asyncio.Semaphore(16)

        async def create(index: int, instance_id: str) -> None:
            name = f"{self.scenario.name}-node-{index}"
            body = node_body(
                name=name,
                instance=_instance(instance_id),
                labels={SCENARIO_LABEL: self.scenario.name, NODE_LABEL: name},
            )
            async with gate:
                await self.core.create_node(cast(Any, body))
            self.node_names.append(name)

        await asyncio.gather(*(create(first + i, iid) for i, iid in enumerate(ids)))

    def nodeeni_bodies(self) -> list[dict[str, Any]]:
        s = self.scenario
        bodies = []
        for i in range(s.nodeenis):
            if s.per_node:
                selector = {NODE_LABEL: f"{s.name}-node-{i}"}
                subnet, index = self.env.eni_subnets[0], 1
            else:
                selector = {SCENARIO_LABEL: s.name}
                subnet, index = self.env.eni_subnets[i], i + 1
            bodies.append(
                nodeeni_body(
                    f"{s.name}-{i}",
                    {
                        "nodeSelector": selector,
                        "subnetIDs": [subnet],
                        "securityGroupIDs": [self.env.security_group],
                        "deviceIndex": index,
                    },
                    labels={SCENARIO_LABEL: s.name},
                )
            )
        return bodies

    def enis_in_ec2(self) -> list[dict[str, Any]]:
        names = [f"{self.scenario.name}-{i}" for i in range(self.scenario.nodeenis)]
        found: list[dict[str, Any]] = self.ec2.describe_network_interfaces(
            Filters=[{"Name": "tag:NodeENI", "Values": names}]
        )["NetworkInterfaces"]
        return found

    async def cleanup_world(self) -> None:
        for name in self.node_names:
            try:
                await self.core.delete_node(name)
            except ApiException as err:
                if err.status != HTTPStatus.NOT_FOUND:
                    raise
        self.node_names.clear()
        if self.instances:
            self.ec2.terminate_instances(InstanceIds=self.instances)
            self.instances.clear()

    # measurement ----------------------------------------------------------------------

    def snapshot(self) -> _Snapshot:
        counters = self.env.realism.counters()
        return _Snapshot(
            at=time.perf_counter(),
            calls=dict(counters["calls"]),
            errors=dict(counters["errors"]),
            apiserver=measure.scrape(
                f"{self.env.endpoint.url}/metrics", token=self.env.endpoint.token
            ),
            controller=self.controller_metrics(),
            process=measure.process_sample(self.pid),
        )

    def phase(
        self,
        before: _Snapshot,
        after: _Snapshot,
        *,
        seconds: float,
        enis: int,
        succeeded: int,
        attached_times: list[float] | None = None,
    ) -> PhaseResult:
        calls = _controller_calls(after, before)
        mutating = sum(n for action, n in calls.items() if not action.startswith("Describe"))
        describes = sum(n for action, n in calls.items() if action.startswith("Describe"))
        status_writes = _apiserver_patches(after.apiserver, status=True) - _apiserver_patches(
            before.apiserver, status=True
        )
        per = max(enis, 1)
        return PhaseResult(
            seconds=round(seconds, 3),
            enis=enis,
            succeeded=succeeded,
            failed=enis - succeeded,
            enis_per_second=round(succeeded / seconds, 2) if seconds else 0.0,
            time_to_attached=measure.percentiles(attached_times or []),
            ec2_calls=calls,
            ec2_calls_per_eni={a: round(n / per, 3) for a, n in calls.items()},
            mutating_per_eni=round(mutating / per, 3),
            describes_per_eni=round(describes / per, 3),
            ec2_error_answers=measure.delta(after.errors, before.errors),
            status_writes=status_writes,
            status_writes_per_eni=round(status_writes / per, 3),
            metadata_patches=_apiserver_patches(after.apiserver, status=False)
            - _apiserver_patches(before.apiserver, status=False),
            events_created=int(
                measure.total(
                    after.apiserver, "apiserver_request_total", verb="POST", resource="events"
                )
                - measure.total(
                    before.apiserver, "apiserver_request_total", verb="POST", resource="events"
                )
            ),
            eninode_writes=sum(
                int(
                    measure.total(
                        after.apiserver, "apiserver_request_total", verb=verb, resource="eninodes"
                    )
                    - measure.total(
                        before.apiserver, "apiserver_request_total", verb=verb, resource="eninodes"
                    )
                )
                for verb in ("POST", "PATCH")
            ),
            reconciles=measure.delta(
                measure.by_label(after.controller, "eni_controller_reconcile_total", "result"),
                measure.by_label(before.controller, "eni_controller_reconcile_total", "result"),
            ),
            controller_cpu_seconds=round(after.process.cpu_seconds - before.process.cpu_seconds, 2),
        )

    async def converge(
        self, tracker: measure.NodeENITracker, *, expected: Mapping[str, int]
    ) -> None:
        await tracker.wait(
            lambda objects: measure.converged(objects, expected),
            within=self.settings.timeout_seconds,
        )

    async def apply(self, bodies: list[dict[str, Any]]) -> None:
        """Create these NodeENIs at once, as `kubectl apply` of one file would."""
        await asyncio.gather(
            *(
                self.custom.create_cluster_custom_object(
                    model.GROUP, model.VERSION, model.PLURAL, body
                )
                for body in bodies
            )
        )


def _controller_calls(after: _Snapshot, before: _Snapshot) -> dict[str, int]:
    calls = measure.delta(after.calls, before.calls)
    return {a: n for a, n in calls.items() if a not in BENCH_ACTIONS}


def _instance(instance_id: str) -> Instance:
    return Instance(id=instance_id, az=AZ_A, instance_type=INSTANCE_TYPE)


def _apiserver_patches(samples: measure.Samples, *, status: bool) -> int:
    return int(
        measure.total(
            samples,
            "apiserver_request_total",
            verb="PATCH",
            resource="nodeenis",
            subresource="status" if status else "",
        )
    )


async def run_scenario(env: BenchEnv, scenario: Scenario, settings: Settings) -> ScenarioResult:
    run = ScenarioRun(env, scenario, settings)
    realism = env.realism
    notes: list[str] = []
    floors = [await _floor(env, run, scenario, settings)] if scenario.floor else []
    _world_rules(realism, scenario)
    try:
        await run.add_nodes(scenario.nodes)
        await run.start_controller(product_buckets=scenario.throttled)
        if scenario.throttled:
            realism.configure(throttle=RealismControl.AWS_THROTTLE)
        bodies = run.nodeeni_bodies()
        per_nodeeni = scenario.enis_per_node if scenario.per_node else scenario.nodes
        expected = {b["metadata"]["name"]: per_nodeeni for b in bodies}
        async with measure.NodeENITracker(
            api=env.api, label_selector=f"{SCENARIO_LABEL}={scenario.name}"
        ) as tracker:
            # --- create ---
            await run.clear_of_resync()
            before = run.snapshot()
            start = time.perf_counter()
            await run.apply(bodies)
            await run.converge(tracker, expected=expected)
            seconds = time.perf_counter() - start
            after = run.snapshot()
            first_enis = set(tracker.first_attached)
            initial_count = scenario.nodes * scenario.enis_per_node
            create = run.phase(
                before,
                after,
                seconds=seconds,
                enis=initial_count,
                succeeded=measure.attached_count(tracker.objects.values()),
                attached_times=[t - start for t in tracker.first_attached.values()],
            )
            initial: PhaseResult | None = None
            if scenario.add_nodes:
                initial = create
                before = after
                start = time.perf_counter()
                await run.add_nodes(scenario.add_nodes)
                expected = dict.fromkeys(expected, scenario.nodes + scenario.add_nodes)
                await run.converge(tracker, expected=expected)
                seconds = time.perf_counter() - start
                after = run.snapshot()
                create = run.phase(
                    before,
                    after,
                    seconds=seconds,
                    enis=scenario.add_nodes * scenario.enis_per_node,
                    succeeded=measure.attached_count(tracker.objects.values()) - initial_count,
                    attached_times=[
                        t - start for e, t in tracker.first_attached.items() if e not in first_enis
                    ],
                )
                notes.append(
                    "create: from adding the nodes to Ready; the first nodes are under `initial`"
                )
            in_ec2 = run.enis_in_ec2()
            slots = [
                (e["TagSet"], e.get("SubnetId")) for e in in_ec2 if e.get("Status") != "available"
            ]
            keys = [
                (dict((t["Key"], t["Value"]) for t in tags).get("Node"), s) for tags, s in slots
            ]
            duplicates = len(in_ec2) - len(set(keys))
            throttle: dict[str, Any] | None = None
            if scenario.throttled:
                throttle = _throttle_figures(create, enis=scenario.enis)
                realism.configure(throttle=None)
                # teardown is not what this scenario measures: a fresh controller with
                # open buckets does it (at the product default it takes another
                # (2 x ENIs - 45) / 4.5 s, pure arithmetic)
                run.stop_controller()
                await run.start_controller(product_buckets=False)
                notes.append(
                    "teardown by a second controller with open client buckets and no throttle"
                )

            idle: IdleResult | None = None
            if scenario.idle_resyncs:
                await run.clear_of_resync()
                before_idle = run.snapshot()
                await asyncio.sleep(scenario.idle_resyncs * settings.reconcile_period_seconds)
                after_idle = run.snapshot()
                idle = _idle(before_idle, after_idle, scenario=scenario, enis=scenario.enis)

            # --- delete ---
            await run.clear_of_resync()
            before = run.snapshot()
            start = time.perf_counter()
            await asyncio.gather(
                *(
                    run.custom.delete_cluster_custom_object(
                        model.GROUP, model.VERSION, model.PLURAL, name
                    )
                    for name in expected
                )
            )
            # the finalizer goes only once the NodeENI's ENIs are gone (or on timeout)
            await tracker.wait(lambda objects: not objects, within=settings.timeout_seconds)
            seconds = time.perf_counter() - start
            after = run.snapshot()
            left = run.enis_in_ec2()  # leaks: counted in EC2 itself
            delete = run.phase(
                before, after, seconds=seconds, enis=scenario.enis, succeeded=scenario.enis
            )
        result = ScenarioResult(
            name=scenario.name,
            title=scenario.title,
            nodes=scenario.nodes + scenario.add_nodes,
            enis_per_node=scenario.enis_per_node,
            nodeenis=scenario.nodeenis,
            enis=scenario.enis,
            settings={
                **dataclasses.asdict(settings),
                "client_buckets": (
                    f"product default at EC2_BUDGET_SHARE {DEFAULT_BUDGET_SHARE:g} (mutating "
                    f"{bucket_text(PRODUCT_LIMITS.mutating)}, describe "
                    f"{bucket_text(PRODUCT_LIMITS.describe)})"
                    if scenario.throttled
                    else "opened wide (1000 burst / 1000 per s, the whole share)"
                ),
                "executor_concurrency_per_reconcile": EXECUTOR_CONCURRENCY,
                "instance_type": INSTANCE_TYPE,
                "realism": "AWS rules on"
                + (", AWS-default throttle" if scenario.throttled else "")
                + (f", latencies {latency_text(scenario.latencies)}" if scenario.latencies else ""),
            },
            create=create,
            delete=delete,
            initial=initial,
            enis_in_ec2_after_create=len(in_ec2),
            duplicates=duplicates,
            leaks=len(left),
            peak_rss_mb=after.process.peak_rss_mb,
            controller_cpu_seconds=round(after.process.cpu_seconds, 2),
            idle=idle,
            throttle=throttle,
            notes=notes,
        )
    finally:
        run.stop_controller()
        await run.cleanup_world()
    if scenario.floor:
        floors.append(await _floor(env, run, scenario, settings))
        result.floor = _floor_figures(result, floors)
    return result


def create_concurrency(scenario: Scenario, settings: Settings) -> int:
    """The most create-and-attach sequences the controller runs at once for this shape."""
    per_nodeeni = scenario.enis_per_node if scenario.per_node else scenario.nodes
    return min(scenario.nodeenis, settings.max_concurrent_reconciles) * min(
        EXECUTOR_CONCURRENCY, per_nodeeni
    )


def _world_rules(realism: RealismControl, scenario: Scenario) -> None:
    """The realism switches of `scenario`, from a reset: AWS's rules, its latencies."""
    realism.reset()
    realism.aws_rules()
    if scenario.latencies:
        realism.configure(**scenario.latencies)


def latency_text(latencies: Mapping[str, Any]) -> str:
    answers = ", ".join(f"{k} {v:g} s" for k, v in latencies.get("answer_latencies", {}).items())
    return (
        f"attach → attached {latencies.get('attach_latency', 0):g} s, detach → available "
        f"{latencies.get('detach_latency', 0):g} s, answers: {answers or 'at once'}"
    )


async def _floor(
    env: BenchEnv, run: ScenarioRun, scenario: Scenario, settings: Settings
) -> FloorResult:
    _world_rules(env.realism, scenario)
    await run.add_nodes(scenario.nodes)  # fresh instances, same shape
    instances = run.instances[-scenario.nodes :]
    slots = [
        FloorSlot(instance_id=iid, subnet_id=env.eni_subnets[s], device_index=s + 1)
        for s in range(scenario.enis_per_node)
        for iid in instances
    ]
    try:
        floor = await run_floor(
            endpoint=env.world.endpoint,
            region=env.world.region,
            slots=slots,
            security_group_id=env.security_group,
            create_concurrency=create_concurrency(scenario, settings),
            delete_concurrency=settings.max_concurrent_eni_cleanup,
            settle=scenario.latencies is not None,
        )
    finally:
        await run.cleanup_world()
    return floor


def _floor_figures(result: ScenarioResult, runs: list[FloorResult]) -> dict[str, Any]:
    """The floor's runs before and after the controller's, and the ratios to their mean.

    The test server's speed drifts by up to a third over a run on these
    machines; a floor on each side of the controller's phases cancels a drift
    that one floor on one side would put into the ratio.
    """
    create = statistics.fmean(f.create_seconds for f in runs)
    delete = statistics.fmean(f.delete_seconds for f in runs)
    return {
        "enis": runs[0].enis,
        "create_concurrency": runs[0].create_concurrency,
        "delete_concurrency": runs[0].delete_concurrency,
        "create_seconds": round(create, 3),
        "delete_seconds": round(delete, 3),
        "errors": sum(f.errors for f in runs),
        "enis_per_second": round(runs[0].enis / create, 2),
        "runs": [
            {"when": when, "create_seconds": f.create_seconds, "delete_seconds": f.delete_seconds}
            for when, f in zip(("before", "after"), runs, strict=True)
        ],
        "calls": "create + attach + modify per ENI; detach + delete on teardown; "
        + ("batched describes while waiting" if any(f.describes for f in runs) else "no describes"),
        "describes": round(statistics.fmean(f.describes for f in runs), 1),
        "create_ratio": round(result.create.seconds / create, 3),
        "delete_ratio": round(result.delete.seconds / delete, 3),
    }


PRODUCT_LIMITS = DEFAULT_LIMITS.paced(DEFAULT_BUDGET_SHARE)
"""The client's buckets at the product defaults: EC2_* buckets times EC2_BUDGET_SHARE."""


def minimum_seconds(calls: int, bucket: BucketSpec) -> float:
    """The bucket arithmetic: `calls` through `bucket`, starting full."""
    return max(0.0, (calls - bucket.capacity) / bucket.refill_per_second)


def bucket_text(bucket: BucketSpec) -> str:
    return f"{bucket.capacity:g} burst, {bucket.refill_per_second:g} per s"


def _throttle_figures(create: PhaseResult, *, enis: int) -> dict[str, Any]:
    aws = AWS_DEFAULT_LIMITS.mutating
    mutating = 3 * enis  # create + attach + modify: the floor's calls
    theoretical = minimum_seconds(mutating, aws)
    share = minimum_seconds(mutating, PRODUCT_LIMITS.mutating)
    calls = sum(create.ec2_calls.values())
    limited = create.ec2_error_answers.get("RequestLimitExceeded", 0)
    return {
        "aws_mutating_bucket": bucket_text(aws),
        "client_mutating_bucket": bucket_text(PRODUCT_LIMITS.mutating),
        "budget_share": DEFAULT_BUDGET_SHARE,
        "mutating_calls_needed": mutating,
        "theoretical_min_seconds": round(theoretical, 1),
        "client_paced_min_seconds": round(share, 1),
        "ratio_to_theoretical": round(create.seconds / theoretical, 3) if theoretical else None,
        "ratio_to_share_minimum": round(create.seconds / share, 3) if share else None,
        "request_limit_exceeded": limited,
        "ec2_requests": calls,
        "request_limit_exceeded_share": round(limited / calls, 4) if calls else 0.0,
    }


def _idle(before: _Snapshot, after: _Snapshot, *, scenario: Scenario, enis: int) -> IdleResult:
    calls = _controller_calls(after, before)
    resyncs = scenario.idle_resyncs
    status_writes = _apiserver_patches(after.apiserver, status=True) - _apiserver_patches(
        before.apiserver, status=True
    )
    return IdleResult(
        resyncs=resyncs,
        seconds=round(after.at - before.at, 1),
        enis=enis,
        ec2_calls=calls,
        mutating_per_resync=round(
            sum(n for a, n in calls.items() if not a.startswith("Describe")) / resyncs, 2
        ),
        describes_per_resync=round(
            sum(n for a, n in calls.items() if a.startswith("Describe")) / resyncs, 2
        ),
        status_writes_per_resync=round(status_writes / resyncs, 2),
        describe_target_per_resync=math.ceil(enis / PAGE_SIZE),
        controller_cpu_seconds=round(after.process.cpu_seconds - before.process.cpu_seconds, 2),
    )

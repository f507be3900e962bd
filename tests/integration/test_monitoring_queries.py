"""Every metric the chart's dashboard and alerts query, found in scrapes of a
real run: the controller in this process against the real API server and the
moto server (with the realism layer), its /metrics endpoint scraped over HTTP.

The run is made to exercise what the queries look at: EC2 throttling (retries,
errors, failed reconciles, the circuit breaker opening), a NodeENI made Ready,
then deleted while detaches are slow (the cleanup pool busy, a forced detach)
and an orphan ENI swept. Each query's expression is rendered by the real helm
and parsed (tests/harness/monitoring.py); each metric name in it must have
samples in a scrape, and a value above zero in one unless listed in
MAY_STAY_ZERO with the reason. The NodeENI's own series must be gone once the
NodeENI is.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eni_controller.aws.ec2 import eni_tag_specifications
from eni_controller.aws.ratelimit import BucketSpec, RateLimits
from eni_controller.aws.retry import RetryPolicy
from eni_controller.config import CircuitBreakerConfig
from eni_controller.controller import Controller
from eni_controller.health import HealthServer
from eni_controller.metrics import Metrics
from eni_controller.reconcile import tags
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A, World, ec2_client
from tests.harness.fleet import delete_nodeeni, make_nodes, nodeeni_spec, wait_gone
from tests.harness.helm import Helm, installed_helm
from tests.harness.monitoring import Query, render
from tests.harness.waiting import until

# Gauges a correct run may leave at zero in every scrape, and why.
MAY_STAY_ZERO = {
    # the queue holds a key only between its add and a worker's get (milliseconds);
    # failed keys wait out their backoff outside it
    "workqueue_depth": "empty whenever scraped",
}
# a call fails after three throttled attempts, the breaker opens after three failed calls
SHORT_RETRY = RetryPolicy(max_attempts=3, base_seconds=0.02, max_backoff_seconds=0.1)
ROOMY = BucketSpec(capacity=1000, refill_per_second=1000)
FAILURE_THRESHOLD = 3  # failed EC2 calls in a row that open the circuit breaker
DETACH_LATENCY = 2.0  # EC2 takes this long to free a detached ENI...
DETACHMENT_TIMEOUT = 0.5  # ...longer than the controller waits: the next detach is forced
ANSWER_LATENCY = 0.5  # every mutating answer held this long: a cleanup worker is in flight


@dataclass(frozen=True, slots=True)
class Sample:
    labels: dict[str, str]
    value: float


Scrape = dict[str, list[Sample]]  # sample name (with _total, _bucket, ...) → samples


def _scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: Scrape = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append(Sample(dict(s.labels), s.value))
    return samples


class Scraper:
    """Scrapes the endpoint (on a thread: the server must answer while the loop waits)
    and keeps every scrape."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.scrapes: list[Scrape] = []

    async def scrape(self) -> Scrape:
        scrape = await asyncio.to_thread(_scrape, self.port)
        self.scrapes.append(scrape)
        return scrape

    async def until(self, check: Callable[[Scrape], bool], *, within: float) -> Scrape:
        """Scrape until one passes `check`; that one."""
        async with asyncio.timeout(within):
            while not check(scrape := await self.scrape()):  # noqa: ASYNC110 (no hook)
                await asyncio.sleep(0.05)
        return scrape


def _value(scrape: Scrape, metric: str, /, **labels: str) -> float:
    """The sum of `metric`'s samples matching `labels` (0 when there is none)."""
    return sum(
        s.value
        for s in scrape.get(metric, ())
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture(scope="module")
def helm() -> Helm:
    return installed_helm()


@contextlib.asynccontextmanager
async def _serving(env: AWSEnv, cluster: str) -> AsyncIterator[tuple[Controller, Scraper]]:
    """The controller running with its metrics endpoint on a free port."""
    config = controller_config(
        env.world,
        cluster_name=cluster,
        orphan_sweep_interval_seconds=0.5,
        orphan_grace_period_seconds=0.5,
        detachment_timeout_seconds=DETACHMENT_TIMEOUT,
        circuit_breaker=CircuitBreakerConfig(
            failure_threshold=FAILURE_THRESHOLD, success_threshold=1, timeout_seconds=0.5
        ),
        error_backoff_base_seconds=0.1,  # a failed slot is tried again soon
        # pacing that throttles slow down only a little (the floor is a tenth of it)
        ec2_rate_limits=RateLimits(describe=ROOMY, mutating=ROOMY),
    )
    metrics = Metrics()
    async with running_controller(env.api, config, metrics=metrics, retry=SHORT_RETRY) as c:
        health = HealthServer(
            registry=metrics.registry,
            liveness=c.live,
            readiness=c.ready,
            host="127.0.0.1",
            metrics_port=0,
            probe_port=0,
        )
        health.start()
        try:
            yield c, Scraper(health.metrics_port)
        finally:
            health.stop()


def _orphan(world: World, cluster: str) -> str:
    """An ENI with this cluster's tags and a NodeENI uid no NodeENI has."""
    extra = {
        tags.MANAGED_BY_KEY: tags.MANAGED_BY_VALUE,
        tags.NODEENI_UID_KEY: str(uuid.uuid4()),
        f"{tags.CLUSTER_TAG_PREFIX}{cluster}": "owned",
    }
    eni: str = ec2_client(world.endpoint, observer=True).create_network_interface(
        SubnetId=world.subnet("multus-a").id, TagSpecifications=eni_tag_specifications(extra)
    )["NetworkInterface"]["NetworkInterfaceId"]
    return eni


async def test_every_dashboard_and_alert_metric_is_in_a_scrape_of_a_real_run(
    aws_env: AWSEnv, helm: Helm
) -> None:
    env = aws_env
    queries = render(helm).queries()
    cluster = f"c{env.unique}"
    await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=1)
    # the mutating bucket holds one token and never refills: attaches are throttled
    env.realism.configure(throttle={"buckets": {"mutating": [1, 0]}})
    async with _serving(env, cluster) as (controller, scraper):
        await env.nodeenis.create(env.unique, nodeeni_spec(env.unique, env.world, "multus-a"))
        await scraper.until(
            lambda s: (
                _value(s, "eni_controller_nodeeni_ready", nodeeni=env.unique) == 0
                and _value(s, "eni_controller_nodeeni_wanted_enis", nodeeni=env.unique) == 1
                and _value(s, "eni_controller_aws_api_throttles_total") > 0
            ),
            within=30,
        )
        # describes too: every call fails, the breaker opens, reconciles fail
        env.realism.configure(throttle={"buckets": {"mutating": [1, 0], "describe": [1, 0]}})
        await scraper.until(
            lambda s: (
                _value(s, "eni_controller_circuit_breaker_state") == 2  # open
                and _value(s, "eni_controller_reconcile_errors_total") > 0
                and _value(s, "workqueue_retries_total", name="nodeeni") > 0
            ),
            within=30,
        )
        env.realism.configure(throttle=None)
        await wait_for_nodeeni(env.api, env.unique, is_ready, within=90)
        ready = await scraper.until(
            lambda s: _value(s, "eni_controller_nodeeni_ready", nodeeni=env.unique) == 1,
            within=30,
        )
        for gauge in ("wanted_enis", "attached_enis"):
            assert _value(ready, f"eni_controller_nodeeni_{gauge}", nodeeni=env.unique) == 1

        # slow detaches: the cleanup pool has work in flight, then forces a detach
        env.realism.configure(detach_latency=DETACH_LATENCY, answer_latency=ANSWER_LATENCY)
        orphan = _orphan(env.world, cluster)
        await delete_nodeeni(env.nodeenis, env.unique)
        busy = await scraper.until(
            lambda s: (
                _value(s, "eni_controller_eni_cleanup_pending") >= 1
                and _value(s, "eni_controller_eni_cleanup_in_flight") >= 1
                and _value(s, "eni_controller_eni_cleanup_oldest_pending_seconds") > 0
            ),
            within=30,
        )
        assert _value(busy, "eni_controller_nodeeni_wanted_enis", nodeeni=env.unique) in (0, 1)
        await wait_gone(env.api, env.unique, within=60)
        done = await scraper.until(
            lambda s: (
                _value(s, "eni_controller_eni_forced_detaches_total") >= 1
                and _value(s, "eni_controller_orphan_enis_reclaimed_total") >= 1
                and _value(s, "eni_controller_eni_cleanup_pending") == 0
            ),
            within=60,
        )
        await until(lambda: controller.cleanup.idle, within=30)
        assert orphan not in {
            e["NetworkInterfaceId"]
            for e in ec2_client(env.world.endpoint, observer=True).describe_network_interfaces(
                Filters=[{"Name": f"tag:{tags.CLUSTER_TAG_PREFIX}{cluster}", "Values": ["owned"]}]
            )["NetworkInterfaces"]
        }
    # the deleted NodeENI left no series behind
    for gauge in ("wanted_enis", "attached_enis", "ready"):
        assert not any(
            s.labels.get("nodeeni") == env.unique
            for s in done.get(f"eni_controller_nodeeni_{gauge}", ())
        ), gauge
    _assert_every_query_is_answered(queries, scraper.scrapes)


def _assert_every_query_is_answered(queries: list[Query], scrapes: list[Scrape]) -> None:
    names = {s.metric for q in queries for s in q.selectors}
    # each query family at least once: the dashboard's and the rule's own metrics
    assert {"eni_controller_nodeeni_ready", "workqueue_depth", "process_cpu_seconds_total"} <= (
        names
    )
    missing = {
        name: [q.where for q in queries if any(s.metric == name for s in q.selectors)]
        for name in sorted(names)
        if not any(scrape.get(name) for scrape in scrapes)
    }
    assert missing == {}, f"queried, never in a scrape: {missing}"
    never_moved = sorted(
        name
        for name in names - MAY_STAY_ZERO.keys()
        if not any(s.value > 0 for scrape in scrapes for s in scrape.get(name, ()))
    )
    assert never_moved == [], f"queried, always zero in this run: {never_moved}"


def _nodeeni_series(metrics: Metrics, name: str) -> list[float | None]:
    return [
        metrics.registry.get_sample_value(f"eni_controller_nodeeni_{kind}", {"nodeeni": name})
        for kind in ("wanted_enis", "attached_enis", "ready")
    ]


async def test_a_term_that_ends_leaves_no_nodeeni_series_and_the_next_sets_them_again(
    aws_env: AWSEnv,
) -> None:
    """A replica that stops leading speaks for no NodeENI: a standby's stale
    `ready` would hold an alert, or clear one, that the leader's series decide."""
    env = aws_env
    await make_nodes(env.nodes, env.world, env.unique, az=AZ_A, count=1)
    await env.nodeenis.create(env.unique, nodeeni_spec(env.unique, env.world, "multus-a"))
    metrics = Metrics()
    config = controller_config(env.world)
    for _term in range(2):  # the second term: the same process leads again
        async with running_controller(env.api, config, metrics=metrics):
            await wait_for_nodeeni(env.api, env.unique, is_ready, within=60)
            await until(lambda: _nodeeni_series(metrics, env.unique) == [1, 1, 1], within=30)
            assert metrics.registry.get_sample_value("eni_controller_leader") == 1
        assert _nodeeni_series(metrics, env.unique) == [None, None, None]
        assert metrics.registry.get_sample_value("eni_controller_leader") == 0

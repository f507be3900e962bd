"""What operators see: probes that tell the truth, and metrics that are really
recorded — every SPEC §4 family present in a scrape of a real run, and every
metric the Grafana dashboard queries among them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from eni_controller.aws.ec2 import connect_ec2
from eni_controller.controller import Controller
from eni_controller.health import HealthServer
from eni_controller.metrics import Metrics
from tests.harness.controller import (
    FAST_RETRY,
    AWSEnv,
    controller_config,
    is_ready,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A
from tests.harness.fleet import delete_nodeeni, make_nodes, nodeeni_spec, wait_gone

DASHBOARD = (
    Path(__file__).resolve().parents[2]
    / "helm/aws-multi-eni-controller/dashboards/aws-multi-eni-controller.json"
)
# SPEC §4, by family name (histograms and counters without their suffixes).
SPEC_METRICS = {
    "eni_controller_eni_operations": {"operation": "create_and_attach", "result": "success"},
    "eni_controller_eni_operation_duration_seconds": {"operation": "delete"},
    "eni_controller_aws_api_calls": {"action": "CreateNetworkInterface", "result": "success"},
    "eni_controller_aws_api_errors": None,
    "eni_controller_aws_api_throttles": None,
    "eni_controller_aws_api_call_duration_seconds": {"action": "AttachNetworkInterface"},
    "eni_controller_circuit_breaker_state": None,
    "workqueue_depth": None,
    "workqueue_queue_duration_seconds": {"name": "nodeeni"},
    "workqueue_retries": None,
    "workqueue_adds": {"name": "nodeeni"},
    "eni_controller_reconcile": {"result": "success"},
    "eni_controller_reconcile_errors": None,
    "eni_controller_reconcile_duration_seconds": {},
    "eni_controller_eni_cleanup": {"result": "success"},
    "eni_controller_eni_cleanup_duration_seconds": {},
    "eni_controller_orphan_sweeps": {},
    "eni_controller_orphan_enis_reclaimed": None,
    "eni_controller_leader": {},
}


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _exercised(scrape: str, family: str, labels: dict[str, str]) -> bool:
    for metric in text_string_to_metric_families(scrape):
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()) and sample.value > 0:
                return True
    return False


async def test_probes_and_a_scrape_of_a_real_run(aws_env: AWSEnv) -> None:
    kube_api, nodes, nodeenis, ec2_world, _realism, unique = aws_env
    await make_nodes(nodes, ec2_world, unique, az=AZ_A, count=2)
    config = controller_config(ec2_world, orphan_sweep_interval_seconds=0.5)
    metrics = Metrics()
    async with connect_ec2(config, metrics=metrics, retry=FAST_RETRY) as ec2:
        controller = Controller(config=config, api=kube_api, ec2=ec2, metrics=metrics)
        health = HealthServer(
            registry=metrics.registry,
            liveness=controller.live,
            readiness=controller.ready,
            host="127.0.0.1",
            metrics_port=0,
            probe_port=0,
        )
        health.start()
        try:
            assert _get(health.probe_port, "/readyz") == (503, "informers not synced")
            task = asyncio.create_task(controller.run())
            try:
                async with asyncio.timeout(30):
                    while True:
                        if _get(health.probe_port, "/readyz")[0] == 200:
                            break
                        await asyncio.sleep(0.1)
                assert _get(health.probe_port, "/healthz") == (200, "ok")
                await nodeenis.create(unique, nodeeni_spec(unique, ec2_world, "multus-a"))
                await wait_for_nodeeni(kube_api, unique, is_ready)
                await delete_nodeeni(nodeenis, unique)
                await wait_gone(kube_api, unique)
                await asyncio.sleep(1.0)  # a sweep or two
                status, scrape = _get(health.metrics_port, "/metrics")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            health.stop()
    assert status == 200
    families = {m.name for m in text_string_to_metric_families(scrape)}
    assert set(SPEC_METRICS) <= families, sorted(set(SPEC_METRICS) - families)
    for family, labels in SPEC_METRICS.items():
        if labels is not None:  # None: present, but this run had no reason to move it
            assert _exercised(scrape, family, labels), family
    queried = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"\b((?:eni_controller|workqueue)_[a-z_]+)", target["expr"]))
    # a labelled family with no child yet (say, no throttle so far) has no sample,
    # only its HELP and TYPE: the family is what must exist
    queried_families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in queried}
    assert queried_families <= families, sorted(queried_families - families)

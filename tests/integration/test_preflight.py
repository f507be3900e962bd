"""`eni-controller check` against a real API server and the moto server.

The preflight judges the whole cluster (every Node's zone, every NodeENI's
subnets), so these tests get an API server of their own: objects other tests
leave on the session's server must not decide the outcome here.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.aws.ec2 import EC2_ACTIONS, connect_ec2
from eni_controller.config import Config
from eni_controller.kube.leader import DEFAULT_LEASE_NAME
from eni_controller.metrics import Metrics
from eni_controller.preflight import kube as kube_checks
from eni_controller.preflight.report import Finding, Outcome
from eni_controller.preflight.runner import run_preflight
from tests.conftest import NodeENIs
from tests.harness.apiserver import APIServerEndpoint, LocalAPIServer
from tests.harness.controller import FAST_RETRY, controller_env
from tests.harness.ec2world import AZ_A, Instance, World, launch_instance
from tests.harness.kube import (
    NodeFactory,
    api_client_from_kubeconfig,
    crd_paths,
    install_crd,
    load_crd,
)
from tests.harness.realism.control import RealismControl

SA_NAMESPACE = "default"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServerEndpoint]:
    server = LocalAPIServer(tmp_path_factory.mktemp("preflight-apiserver"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def own_api(own_server: APIServerEndpoint) -> AsyncIterator[client.ApiClient]:
    api = await api_client_from_kubeconfig(own_server.kubeconfig)
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def cluster(
    own_api: client.ApiClient, ec2_world: World
) -> AsyncIterator[tuple[NodeFactory, NodeENIs, Instance]]:
    """The CRD, one Node on a real moto instance; Nodes and NodeENIs removed after."""
    await install_crd(own_api)
    nodes, nodeenis = NodeFactory(own_api), NodeENIs(own_api)
    instance = launch_instance(ec2_world.endpoint, az=AZ_A, instance_type="m5.large")
    await nodes.create(name="node-a", instance=instance)
    try:
        yield nodes, nodeenis, instance
    finally:
        await nodeenis.cleanup()
        await nodes.cleanup()


def _check(kubeconfig: Path, world: World, **env: str) -> tuple[int, dict[str, tuple[str, str]]]:
    """Run `eni-controller check`; its exit code and rows (check -> (result, detail))."""
    done = subprocess.run(
        [sys.executable, "-m", "eni_controller", "check", "--kubeconfig", str(kubeconfig)],
        env=controller_env(world, kubeconfig, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows: dict[str, tuple[str, str]] = {}
    for line in done.stdout.splitlines()[1:]:
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[1] in {o.value for o in Outcome}:
            rows[parts[0]] = (parts[1], parts[2])
    assert rows, f"no table printed; stdout={done.stdout!r} stderr={done.stderr[-2000:]!r}"
    return done.returncode, rows


async def _preflight(api: client.ApiClient, world: World, **overrides: Any) -> list[Finding]:
    config = Config(
        **{
            "aws_region": world.region,
            "aws_endpoint_url": world.endpoint,
            "vpc_id": world.vpc_id,
            **overrides,
        }
    )
    async with connect_ec2(config, metrics=Metrics(), retry=FAST_RETRY) as ec2:
        return await run_preflight(config=config, api=api, ec2=ec2)


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


async def test_everything_allowed_passes(
    own_server: APIServerEndpoint,
    cluster: tuple[NodeFactory, NodeENIs, Instance],
    ec2_world: World,
    realism: RealismControl,
) -> None:
    _, nodeenis, _ = cluster
    await nodeenis.create(
        "multus",
        {
            "nodeSelector": {"ng": "multus"},
            "subnetNames": ["multus-a"],
            "securityGroupNames": ["multus-sg"],
        },
    )
    code, rows = _check(own_server.kubeconfig, ec2_world, CLUSTER_NAME="preflight")
    assert code == 0, rows
    assert {check for check, (result, _) in rows.items() if result != "PASS"} == set()
    assert {f"ec2:{action}" for action in EC2_ACTIONS} <= set(rows)
    assert {"kubernetes", "crd", "region", "vpc", "cluster-name", "nodeeni/multus"} <= set(rows)
    assert "allowed (DryRun)" in rows["ec2:CreateNetworkInterface"][1]
    assert realism.calls().get("CreateNetworkInterface") == 1  # one DryRun, no ENI made
    assert realism.errors().get("DryRunOperation", 0) >= len(EC2_ACTIONS) - 2


async def test_a_denied_action_is_named_and_fails_the_check(
    own_server: APIServerEndpoint,
    cluster: tuple[NodeFactory, NodeENIs, Instance],
    ec2_world: World,
    realism: RealismControl,
) -> None:
    realism.configure(deny_actions=["AttachNetworkInterface"])
    code, rows = _check(own_server.kubeconfig, ec2_world)
    assert code == 1
    failing = {check: detail for check, (result, detail) in rows.items() if result == "FAIL"}
    assert list(failing) == ["ec2:AttachNetworkInterface"]
    assert "UnauthorizedOperation" in failing["ec2:AttachNetworkInterface"]
    assert "allow ec2:AttachNetworkInterface" in failing["ec2:AttachNetworkInterface"]


async def test_wrong_region_unknown_subnet_and_missing_vpc_are_failures(
    own_api: client.ApiClient,
    cluster: tuple[NodeFactory, NodeENIs, Instance],
    ec2_world: World,
    realism: RealismControl,
) -> None:
    nodes, nodeenis, _ = cluster
    elsewhere = Instance(id="i-0123456789abcdef0", az="eu-west-1a", instance_type="m5.large")
    await nodes.create(name="node-in-ireland", instance=elsewhere)
    await nodeenis.create(
        "typo",
        {
            "nodeSelector": {"ng": "x"},
            "subnetNames": ["mutlus-a"],
            "securityGroupNames": ["multus-sg"],
        },
    )
    found = _by_check(await _preflight(own_api, ec2_world))
    assert found["region"].outcome is Outcome.FAIL
    assert "eu-west-1a" in found["region"].detail
    assert found["nodeeni/typo"].outcome is Outcome.FAIL
    assert "mutlus-a" in found["nodeeni/typo"].detail
    assert found["vpc"].outcome is Outcome.PASS
    # no CLUSTER_NAME: said, but not a failure
    assert found["cluster-name"].outcome is Outcome.WARN
    assert "orphan sweep deletes nothing" in found["cluster-name"].detail

    missing = _by_check(await _preflight(own_api, ec2_world, vpc_id="vpc-0123456789abcdef0"))
    assert missing["vpc"].outcome is Outcome.FAIL


async def _service_account_kubeconfig(
    api: client.ApiClient, endpoint: APIServerEndpoint, name: str, path: Path
) -> Path:
    """A kubeconfig holding a TokenRequest token for a fresh ServiceAccount."""
    core = client.CoreV1Api(api)
    await core.create_namespaced_service_account(
        SA_NAMESPACE, cast(Any, {"metadata": {"name": name}})
    )
    token = await core.create_namespaced_service_account_token(
        name, SA_NAMESPACE, cast(Any, {"spec": {"expirationSeconds": 3600}})
    )
    return _with_token(endpoint.kubeconfig, token.status.token, path)


def _with_token(kubeconfig: Path, token: str, path: Path) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path.write_text(yaml.safe_dump(config))
    return path


async def _grant(api: client.ApiClient, name: str, config: Config) -> None:
    """RBAC written from the preflight's own list: what it asks for is grantable."""
    rbac = client.RbacAuthorizationV1Api(api)
    subject = {"kind": "ServiceAccount", "name": name, "namespace": SA_NAMESPACE}
    for index, permission in enumerate(kube_checks.required_permissions(config)):
        rule = permission.rule()
        role_name = f"{name}-{index}"
        ref = {"apiGroup": "rbac.authorization.k8s.io", "name": role_name}
        if permission.namespace is None:
            await rbac.create_cluster_role(
                cast(Any, {"metadata": {"name": role_name}, "rules": [rule]})
            )
            await rbac.create_cluster_role_binding(
                cast(
                    Any,
                    {
                        "metadata": {"name": role_name},
                        "roleRef": {**ref, "kind": "ClusterRole"},
                        "subjects": [subject],
                    },
                )
            )
        else:
            await rbac.create_namespaced_role(
                permission.namespace, cast(Any, {"metadata": {"name": role_name}, "rules": [rule]})
            )
            await rbac.create_namespaced_role_binding(
                permission.namespace,
                cast(
                    Any,
                    {
                        "metadata": {"name": role_name},
                        "roleRef": {**ref, "kind": "Role"},
                        "subjects": [subject],
                    },
                ),
            )


async def test_rbac_gaps_fail_and_the_listed_grants_close_them(
    own_api: client.ApiClient,
    own_server: APIServerEndpoint,
    cluster: tuple[NodeFactory, NodeENIs, Instance],
    ec2_world: World,
    realism: RealismControl,
    tmp_path: Path,
    unique: str,
) -> None:
    kubeconfig = await _service_account_kubeconfig(
        own_api, own_server, unique, tmp_path / "sa-kubeconfig"
    )
    code, rows = _check(kubeconfig, ec2_world, POD_NAMESPACE="default")
    assert code == 1
    rbac = {check: row for check, row in rows.items() if check.startswith("rbac:")}
    assert rbac
    assert {result for result, _ in rbac.values()} == {"FAIL"}
    assert "denied: get, list, watch" in rbac["rbac:nodes"][1]
    assert "rbac:default/leases.coordination.k8s.io" in rows  # create: any name
    assert f"rbac:default/leases.coordination.k8s.io/{DEFAULT_LEASE_NAME}" in rows

    await _grant(own_api, unique, Config(pod_namespace="default"))
    code, rows = _check(kubeconfig, ec2_world, POD_NAMESPACE="default")
    assert code == 0, rows
    assert {result for check, (result, _) in rows.items() if check.startswith("rbac:")} == {"PASS"}


async def test_missing_crd_fails(
    own_api: client.ApiClient,
    own_server: APIServerEndpoint,
    ec2_world: World,
    realism: RealismControl,
) -> None:
    # none of the chart's CRDs applied (ENINode shares NodeENI's group and version)
    ext = client.ApiextensionsV1Api(own_api)
    for path in crd_paths():
        await ext.delete_custom_resource_definition(load_crd(path)["metadata"]["name"])
    custom = client.CustomObjectsApi(own_api)
    async with asyncio.timeout(30):
        while True:
            try:
                await custom.get_api_resources(model.GROUP, model.VERSION)
            except ApiException as err:
                if err.status == HTTPStatus.NOT_FOUND:
                    break
                raise
            await asyncio.sleep(0.2)
    code, rows = _check(own_server.kubeconfig, ec2_world)
    assert code == 1
    assert rows["crd"][0] == "FAIL"
    assert "not installed" in rows["crd"][1]
    await install_crd(own_api)  # as the other tests expect

"""The CLI as an operator meets it: `python -m eni_controller` in a crafted
environment. Every start-up error is one line on stderr with its exit code (no
traceback); `status` prints the NodeENI table of the real API server; and
EXTRA_ENI_TAGS reach the ENIs the controller creates on the moto server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kubernetes_asyncio import client

from eni_controller import cli
from eni_controller.aws import imds
from eni_controller.reconcile import tags
from tests.conftest import NodeENIs
from tests.harness.controller import (
    AWSEnv,
    controller_config,
    is_ready,
    running_controller,
    wait_for_nodeeni,
)
from tests.harness.ec2world import AZ_A
from tests.harness.fleet import enis_of, make_nodes, nodeeni_spec
from tests.harness.kube import merge_patch_nodeeni
from tests.harness.procs import free_port

# nothing from the test runner's environment leaks in (a real AWS_REGION, a KUBECONFIG)
_KEPT = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in _KEPT}
    return subprocess.run(
        [sys.executable, "-m", "eni_controller", *args],
        env={**base, "AWS_REGION": "us-east-1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str], code: int, *parts: str) -> str:
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert lines[0].startswith("eni-controller: ")
    for part in parts:
        assert part in lines[0]
    return lines[0]


def _dead_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "dead.kubeconfig"
    server = f"https://127.0.0.1:{free_port()}"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        f"clusters: [{{name: dead, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: dead, user: {token: nope}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: dead}}]\n"
    )
    return path


def test_bad_environment_values_are_one_configuration_error(tmp_path: Path) -> None:
    done = _cli("run", RECONCILE_PERIOD="5 minutes", EXTRA_ENI_TAGS="aws:x=1")
    line = _one_line(done, cli.EXIT_CONFIG_ERROR, "RECONCILE_PERIOD=", "EXTRA_ENI_TAGS=")
    assert "aws: prefix" in line


def test_missing_and_broken_kubeconfigs_are_configuration_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    _one_line(
        _cli("run", "--kubeconfig", str(missing)), cli.EXIT_CONFIG_ERROR, str(missing), "no such"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [")
    _one_line(_cli("check", KUBECONFIG=str(broken)), cli.EXIT_CONFIG_ERROR, str(broken))
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    _one_line(_cli("status", "--kubeconfig", str(empty)), cli.EXIT_CONFIG_ERROR, str(empty))


def test_an_unreachable_api_server_is_a_runtime_error(tmp_path: Path) -> None:
    kubeconfig = _dead_kubeconfig(tmp_path)
    for command in ("run", "status"):
        done = _cli(command, "--kubeconfig", str(kubeconfig), KUBE_REQUEST_TIMEOUT="5s")
        _one_line(done, cli.EXIT_RUNTIME_ERROR, "cannot reach the Kubernetes API server")


def test_no_region_anywhere_is_one_configuration_error(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k in _KEPT}
    done = subprocess.run(
        [sys.executable, "-m", "eni_controller", "run"],
        env={**base, imds.ENDPOINT_VARIABLE: f"http://127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    _one_line(done, cli.EXIT_CONFIG_ERROR, "AWS_REGION: unset", "instance metadata")


async def test_status_prints_every_nodeeni_of_the_cluster(
    kube_api: client.ApiClient, kubeconfig: Path, nodeenis: NodeENIs, unique: str
) -> None:
    spec = {
        "nodeSelector": {"test": unique},
        "subnetIDs": ["subnet-0123abcd"],
        "securityGroupIDs": ["sg-0123abcd"],
    }
    await nodeenis.create(unique, spec)
    status = {
        "attachedCount": 1,
        "desiredCount": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Attached",
                "message": "1 of 1",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "attachments": [
            {
                "nodeID": f"{unique}-node",
                "instanceID": "i-0123456789abcdef0",
                "eniID": "eni-0123456789abcdef0",
                "attachmentID": "eni-attach-0123456789abcdef0",
                "subnetID": "subnet-0123abcd",
                "deviceIndex": 2,
                "status": "attached",
                "lastUpdated": "2026-01-01T00:00:00Z",
            }
        ],
    }
    custom = client.CustomObjectsApi(kube_api)
    await merge_patch_nodeeni(custom, unique, {"status": status}, status=True)
    done = _cli("status", "--kubeconfig", str(kubeconfig))
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert [unique, "True", "1", "1"] in rows
    assert ["Ready", "True", "Attached", "1", "of", "1"] in rows
    assert [
        f"{unique}-node",
        "i-0123456789abcdef0",
        "eni-0123456789abcdef0",
        "2",
        "subnet-0123abcd",
    ] in [r[:5] for r in rows]


async def test_extra_eni_tags_are_on_every_created_eni(both_ec2: AWSEnv) -> None:
    kube_api, nodes, nodeenis, world, _realism, unique = both_ec2
    extra = (("team", "networking"), ("cost-center", unique))
    await make_nodes(nodes, world, unique, az=AZ_A, count=2)
    config = controller_config(world, extra_eni_tags=extra)
    async with running_controller(kube_api, config):
        created = await nodeenis.create(unique, nodeeni_spec(unique, world, "multus-a"))
        await wait_for_nodeeni(
            kube_api, unique, lambda o: is_ready(o) and o["status"]["attachedCount"] == 2
        )
    enis = enis_of(world, created["metadata"]["uid"])
    assert len(enis) == 2
    for eni in enis:
        on_eni = {t["Key"]: t["Value"] for t in eni["TagSet"]}
        assert {k: on_eni.get(k) for k, _ in extra} == dict(extra)
        assert on_eni[tags.NODEENI_KEY] == unique  # ours are all there too
        assert on_eni[tags.MANAGED_BY_KEY] == tags.MANAGED_BY_VALUE

"""The kind workflow's pieces that can be checked without Docker.

`make kind-demo` needs Docker, kind and kubectl, which CI does not have. What
is checked here: the kind config gives every node the providerID of a seeded
EC2 instance (the controller ignores any other node) with the label the sample
NodeENI selects, the sample NodeENI is valid against the CRD's rules, and the
Makefile targets expand to the documented commands in order.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from eni_controller import model
from eni_controller.spec import parse_spec
from tests.harness.ec2world import AZ_A, AZ_B, Instance, World
from tests.harness.helm import REPO
from tests.harness.kind import WORKER_LABELS, dump_kind_config, kind_config, node_instances

SAMPLE = REPO / "deploy" / "kind" / "nodeeni-sample.yaml"


def _world() -> World:
    instances = tuple(
        Instance(id=f"i-{az[-1]}{n:016x}", az=az, instance_type="m5.large")
        for az, count in ((AZ_A, 3), (AZ_B, 2))
        for n in range(count)
    )
    return World(
        endpoint="http://moto",
        region="us-east-1",
        vpc_id="vpc-0123456789abcdef0",
        subnets=(),
        security_groups=(),
        instances=instances,
    )


def test_kind_nodes_are_seeded_instances_in_both_zones() -> None:
    picked = node_instances(_world(), workers=2)
    assert [i.az for i in picked] == [AZ_A, AZ_A, AZ_B]
    assert len({i.id for i in picked}) == 3
    config = yaml.safe_load(dump_kind_config(kind_config(picked, node_image="kindest/node:x")))
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [n["role"] for n in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    for node, instance in zip(config["nodes"], picked, strict=True):
        assert node["image"] == "kindest/node:x"
        (patch,) = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
        expected = "InitConfiguration" if node["role"] == "control-plane" else "JoinConfiguration"
        assert patch["kind"] == expected
        args = patch["nodeRegistration"]["kubeletExtraArgs"]
        assert args["provider-id"] == f"aws:///{instance.az}/{instance.id}"
        if node["role"] == "worker":
            assert args["node-labels"] == "ng=multus"


def test_the_sample_nodeeni_selects_the_workers_and_is_valid() -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    assert sample["apiVersion"] == f"{model.GROUP}/{model.VERSION}"
    assert sample["spec"]["nodeSelector"] == WORKER_LABELS
    spec, problems = parse_spec(sample["spec"])
    assert problems == ()
    assert spec is not None
    assert spec.subnet_names == ("multus-a", "multus-b")
    # plain moto ignores DeleteOnTermination: `true` would never converge there
    assert spec.delete_on_termination is False


def test_make_kind_demo_runs_the_steps_in_order(tmp_path: Path) -> None:
    done = subprocess.run(
        ["make", "-n", "kind-demo", "kind-down", f"KIND_STATE={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    steps = [
        "docker run -d --name eni-demo-moto",
        "python -m tests.harness.kind world",
        "kind create cluster --name eni-demo --config",
        "docker network connect kind eni-demo-moto",
        "docker build -t aws-multi-eni-controller:dev .",
        "kind load docker-image aws-multi-eni-controller:dev --name eni-demo",
        "helm upgrade --install eni-controller helm/aws-multi-eni-controller",
        "--set awsEndpointUrl=http://$moto_ip:5000",
        "apply -f deploy/kind/nodeeni-sample.yaml",
        "wait nodeeni/multus-demo --for=condition=Ready",
        "kind delete cluster --name eni-demo",
    ]
    positions = [out.find(step) for step in steps]
    assert all(p >= 0 for p in positions), dict(zip(steps, positions, strict=True))
    assert positions == sorted(positions), out

"""Node objects shaped like the ones EKS managed node groups register.

Why: an informer's memory and CPU scale with the size of what the API server
sends, and a test Node with three labels and a providerID is ~400 bytes while a
real EKS node is 10-20 KB (its status lists every image on the node). The XL
scenario (bench/xl.py) and the transform tests need the real shape: 19 labels,
4 annotations, a providerID, 4 conditions, 3 addresses, capacity and
allocatable, nodeInfo and 40 images, about 12 KB of JSON before the server adds
its managedFields.

Deterministic: the same name and index give the same object, so two runs (or
the baseline and the candidate of one run) see identical Nodes. `heartbeat`
gives the status patch a kubelet sends when it reports in: the same conditions
with a new lastHeartbeatTime, nothing else.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

REGION: Final = "us-east-1"
IMAGE_COUNT: Final = 40
_ECR: Final = "602401143452.dkr.ecr.us-east-1.amazonaws.com"
_REPOS: Final = (
    f"{_ECR}/amazon-k8s-cni",
    f"{_ECR}/amazon-k8s-cni-init",
    f"{_ECR}/eks/kube-proxy",
    f"{_ECR}/eks/coredns",
    f"{_ECR}/eks/pause",
    "docker.io/library/nginx",
    "quay.io/prometheus/node-exporter",
    "docker.io/fluent/fluent-bit",
    "registry.k8s.io/pause",
    "ghcr.io/k8snetworkplumbingwg/multus-cni",
)
_CONDITIONS: Final = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
_CREATED: Final = "2026-11-01T08:00:00Z"


def _hex(seed: str, length: int) -> str:
    digest = ""
    counter = 0
    while len(digest) < length:
        digest += hashlib.sha256(f"{seed}/{counter}".encode()).hexdigest()
        counter += 1
    return digest[:length]


def _ip(index: int) -> str:
    return f"10.{(index >> 16) & 0xFF}.{(index >> 8) & 0xFF}.{index & 0xFF}"


def hostname(index: int) -> str:
    ip = _ip(100_000 + index)
    return f"ip-{ip.replace('.', '-')}.ec2.internal"


def eks_node_body(
    *,
    name: str,
    index: int,
    instance_id: str,
    az: str,
    extra_labels: dict[str, str],
    instance_type: str = "m5.4xlarge",
) -> dict[str, Any]:
    """The Node a kubelet registers: metadata and spec (status is a subresource)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": instance_type,
                "beta.kubernetes.io/os": "linux",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": f"ng-{index % 8}",
                "eks.amazonaws.com/nodegroup-image": "ami-0c2b8ca1dad447f8a",
                "eks.amazonaws.com/sourceLaunchTemplateId": f"lt-0{_hex(f'lt{index % 8}', 16)}",
                "eks.amazonaws.com/sourceLaunchTemplateVersion": "3",
                "failure-domain.beta.kubernetes.io/region": REGION,
                "failure-domain.beta.kubernetes.io/zone": az,
                "k8s.io/cloud-provider-aws": _hex("cloud-provider", 32),
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": instance_type,
                "topology.ebs.csi.aws.com/zone": az,
                "topology.k8s.aws/zone-id": "use1-az1",
                "topology.kubernetes.io/region": REGION,
                "topology.kubernetes.io/zone": az,
                **extra_labels,
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": _ip(100_000 + index),
                "csi.volume.kubernetes.io/nodeid": f'{{"ebs.csi.aws.com":"{instance_id}"}}',
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"providerID": f"aws:///{az}/{instance_id}"},
    }


def _conditions(heartbeat: str) -> list[dict[str, str]]:
    return [
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": _CREATED,
        }
        for kind, status, reason, message in _CONDITIONS
    ]


def eks_node_status(*, name: str, index: int, heartbeat: str = _CREATED) -> dict[str, Any]:
    """The status a kubelet reports for that Node: the body of a status patch."""
    ip = _ip(100_000 + index)
    images = []
    for i in range(IMAGE_COUNT):
        repo = _REPOS[i % len(_REPOS)]
        tag = f"v1.{i // len(_REPOS) + 10}.{index % 3}-eksbuild.{i % 4 + 1}"
        images.append(
            {
                "names": [f"{repo}@sha256:{_hex(f'{repo}:{tag}', 64)}", f"{repo}:{tag}"],
                "sizeBytes": 10_000_000 + 7_919 * i * (i + 3),
            }
        )
    resources = {
        "cpu": "16",
        "ephemeral-storage": "83873772Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "64453716Ki",
        "pods": "234",
    }
    return {
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": hostname(index)},
                {"type": "InternalDNS", "address": hostname(index)},
            ],
            "allocatable": {**resources, "cpu": "15890m", "memory": "63436884Ki"},
            "capacity": resources,
            "conditions": _conditions(heartbeat),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": images,
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": _uuid(f"boot/{name}"),
                "containerRuntimeVersion": "containerd://1.7.11",
                "kernelVersion": "5.10.205-195.807.amzn2.x86_64",
                "kubeProxyVersion": "v1.28.5-eks-5e0fdde",
                "kubeletVersion": "v1.28.5-eks-5e0fdde",
                "machineID": _hex(f"machine/{name}", 32),
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2",
                "systemUUID": _uuid(f"system/{name}"),
            },
        }
    }


def heartbeat(at: str) -> dict[str, Any]:
    """The strategic-merge status patch of a kubelet reporting in at `at`: every
    condition again (merged by type), only lastHeartbeatTime new."""
    return {"status": {"conditions": _conditions(at)}}


def _uuid(seed: str) -> str:
    h = _hex(seed, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

"""What the wheel (and so the image, which installs only the wheel) must carry for both
commands: every CRD of the chart for `eni-controller check`, and the node agent's
netlink library for `eni-controller agent`. Read from pyproject.toml, so that a CRD
added to the chart without its force-include line fails here, not on a node."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "helm" / "aws-multi-eni-controller" / "crds"


def _project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_crd_of_the_chart_ships_in_the_wheel() -> None:
    wheel = _project()["tool"]["hatch"]["build"]["targets"]["wheel"]
    shipped = wheel["force-include"]
    crds = sorted(p.relative_to(REPO).as_posix() for p in CRDS.glob("*.yaml"))
    assert crds == [
        "helm/aws-multi-eni-controller/crds/networking.k8s.aws_eninodes.yaml",
        "helm/aws-multi-eni-controller/crds/networking.k8s.aws_nodeenis.yaml",
    ]
    for crd in crds:
        assert shipped.get(crd) == f"eni_controller/crds/{Path(crd).name}", crd


def test_the_agents_netlink_library_is_a_pinned_dependency() -> None:
    dependencies = _project()["project"]["dependencies"]
    names = {re.split(r"[=<>!~\[ ]", d, maxsplit=1)[0]: d for d in dependencies}
    assert re.fullmatch(r"pyroute2==\d+(\.\d+)+", names["pyroute2"])

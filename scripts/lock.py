"""Regenerate the image's lock files, with hashes, from pyproject.toml (`make lock`).

Why: the image build installs with `pip install --require-hashes`, so every
distribution it downloads must be named in a lock file with its version and
sha256 sums. pyproject.toml stays the one place where versions are chosen:
- requirements.lock: `[project].dependencies` and everything they pull in,
  what the image ships;
- requirements-build.lock: what the build stage runs and throws away, the
  build backend (`[build-system].requires`) and the SBOM generator
  (cyclonedx-bom, pinned in the `dev` extra).
Both are resolved for every platform (`--universal`: the image is built for
linux/amd64 and linux/arm64) on the image's Python minor. Needs uv and PyPI.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"
SBOM_TOOL = "cyclonedx-bom"


def build_requirements(pyproject: dict[str, Any]) -> list[str]:
    """The build backend's requirements plus the dev extra's pin of the SBOM tool."""
    requires: list[str] = pyproject["build-system"]["requires"]
    dev: list[str] = pyproject["project"]["optional-dependencies"]["dev"]
    sbom = [r for r in dev if r.startswith(SBOM_TOOL + "==")]
    if len(sbom) != 1:
        raise SystemExit(f"pyproject.toml: the dev extra must pin {SBOM_TOOL}==VERSION once")
    return [*requires, *sbom]


def compile_lock(*, source: str, output: Path, uv: str, stdin: str | None = None) -> None:
    """`uv pip compile` SOURCE (a file, or "-" for STDIN) into OUTPUT with every hash."""
    command = [uv, "pip", "compile", source, "--universal", "--python-version", PYTHON_VERSION]
    command += ["--generate-hashes", "--custom-compile-command", "make lock"]
    command += ["--output-file", str(output), "--quiet"]
    subprocess.run(command, input=stdin, text=True, check=True, cwd=REPO)


def main() -> None:
    uv = sys.argv[1] if len(sys.argv) > 1 else "uv"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    compile_lock(source="pyproject.toml", output=REPO / "requirements.lock", uv=uv)
    build = "\n".join(build_requirements(pyproject)) + "\n"
    compile_lock(source="-", output=REPO / "requirements-build.lock", uv=uv, stdin=build)


if __name__ == "__main__":
    main()

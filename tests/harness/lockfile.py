"""The image's build inputs as tests see them: lock files, pyproject pins, base image.

The image build installs with `pip install --require-hashes` from
requirements.lock and requirements-build.lock (written by `make lock` from
pyproject.toml). These helpers read those files the way pip does, one locked
distribution per `name==version` line with its `--hash=sha256:` options, so the
tests can hold the locks to pyproject's pins, and the built image's SBOM to
the lock. Names are compared in PEP 503 normal form (`PyYAML` == `pyyaml`,
`kubernetes_asyncio` == `kubernetes-asyncio`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
RUNTIME_LOCK = REPO / "requirements.lock"
BUILD_LOCK = REPO / "requirements-build.lock"
SBOM_TOOL = "cyclonedx-bom"

_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:(?P<digest>[0-9a-f]{64})\b")
_DIGEST_PIN = re.compile(r"^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$")


class LockError(ValueError):
    """A lock file line pip would not accept under --require-hashes."""


@dataclass(frozen=True)
class Locked:
    name: str  # PEP 503 normal form
    version: str
    marker: str  # "" when the distribution is for every platform
    hashes: tuple[str, ...]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _logical_lines(text: str) -> Iterable[str]:
    """Lines with their backslash continuations joined and comments dropped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        line = line.strip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            yield pending.strip()
        pending = ""
    if pending.strip():
        yield pending.strip()


def parse_lock(text: str) -> dict[str, Locked]:
    """Every locked distribution by normalized name; LockError on a line pip would refuse."""
    locked: dict[str, Locked] = {}
    for line in _logical_lines(text):
        match = _REQUIREMENT.match(line)
        if match is None:
            raise LockError(f"not an exact pin: {line!r}")
        hashes = tuple(m["digest"] for m in _HASH.finditer(line))
        if not hashes:
            raise LockError(f"no sha256 hash: {line!r}")
        head = line.split("--hash", 1)[0]
        marker = head.split(";", 1)[1].strip() if ";" in head else ""
        name = normalize(match["name"])
        if name in locked:
            raise LockError(f"locked twice: {name}")
        locked[name] = Locked(name=name, version=match["version"], marker=marker, hashes=hashes)
    return locked


def pins(requirements: Iterable[str]) -> dict[str, str]:
    """`name==version` requirements (pyproject's style) as {normalized name: version}."""
    found: dict[str, str] = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise LockError(f"pyproject requirement is not an exact pin: {requirement!r}")
        found[normalize(match["name"].split("[", 1)[0])] = match["version"]
    return found


def drift(wanted: Mapping[str, str], locked: Mapping[str, Locked]) -> list[str]:
    """What the lock gets wrong about WANTED: missing names and other versions."""
    problems = []
    for name, version in sorted(wanted.items()):
        entry = locked.get(name)
        if entry is None:
            problems.append(f"{name}=={version} is not in the lock")
        elif entry.version != version:
            problems.append(f"{name}: pyproject pins {version}, the lock has {entry.version}")
    return problems


@dataclass(frozen=True)
class BuildPins:
    runtime: dict[str, str]  # [project].dependencies
    build: dict[str, str]  # [build-system].requires + the dev extra's SBOM tool


def pyproject_pins(pyproject: Path = REPO / "pyproject.toml") -> BuildPins:
    data = tomllib.loads(pyproject.read_text())
    runtime = pins(data["project"]["dependencies"])
    build = pins(data["build-system"]["requires"])
    dev = pins(r for r in data["project"]["optional-dependencies"]["dev"] if "==" in r)
    build[SBOM_TOOL] = dev[SBOM_TOOL]
    return BuildPins(runtime=runtime, build=build)


def default_base_image(dockerfile_text: str) -> str:
    """The default of `ARG PYTHON_IMAGE=...` (the base every stage is built FROM)."""
    for line in dockerfile_text.splitlines():
        if line.startswith("ARG PYTHON_IMAGE="):
            return line.removeprefix("ARG PYTHON_IMAGE=").strip()
    raise LookupError("the Dockerfile declares no ARG PYTHON_IMAGE default")


def pinned_by_digest(image: str) -> bool:
    """`name:tag@sha256:<64 hex>`: readable tag, immutable digest."""
    return _DIGEST_PIN.match(image) is not None

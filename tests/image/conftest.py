"""Fixtures for the image tests: podman, a stand-in base image, the built image.

No registry can be pulled where the project's tests run, so the Dockerfile is
built on a Debian bookworm stand-in (scripts/image-standin-base.sh, cached
outside the repo) passed as PYTHON_IMAGE; everything else in the build is the
release path, lock files and hashes included. pip inside the build gets the
host's CA bundle. The image built here is removed at the end of the session
(the stand-in base and podman's layer cache are kept for the next run).
The tests skip, saying what to install, where podman is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.lockfile import REPO

STANDIN_SCRIPT = REPO / "scripts" / "image-standin-base.sh"
IMAGE = "localhost/aws-multi-eni-controller:image-test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# crun, podman's default runtime, fails on the project's machines; runc works.
RUNTIME = os.environ.get("PODMAN_RUNTIME", "runc")
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


@dataclass(frozen=True)
class Podman:
    binary: str

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`podman run --rm` (with the working runtime and ulimits) ARGS; never raises."""
        command = [self.binary, "run", "--rm", "--runtime", RUNTIME, *ULIMITS, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    def check(self, args: Sequence[str], *, timeout: float = 600) -> str:
        done = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout


@dataclass(frozen=True)
class BuiltImage:
    name: str
    base: str
    build_seconds: float
    size_bytes: int
    base_size_bytes: int
    user: str


@pytest.fixture(scope="session")
def podman() -> Podman:
    binary = shutil.which("podman")
    if binary is None:
        pytest.skip(
            "podman not installed: apt-get install podman buildah debootstrap runc "
            "(the image test builds the Dockerfile with podman; docs/deploy.md)"
        )
    return Podman(binary)


@pytest.fixture(scope="session")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    base = subprocess.run(
        ["bash", str(STANDIN_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "PODMAN": podman.binary},
    )
    if base.returncode != 0:
        raise AssertionError(f"stand-in base image failed:\n{base.stderr}")
    base_image = base.stdout.strip()
    pip_conf = tmp_path_factory.mktemp("podman") / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {CA_BUNDLE}\n")
    started = time.monotonic()
    podman.check(
        [
            "build",
            "--runtime",
            RUNTIME,
            "--pull=never",
            *ULIMITS,
            "-v",
            f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "-v",
            f"{pip_conf}:/etc/pip.conf:ro",
            "--build-arg",
            f"PYTHON_IMAGE={base_image}",
            "-t",
            IMAGE,
            str(REPO),
        ]
    )
    build_seconds = time.monotonic() - started
    inspect = ["image", "inspect", "--format", "{{.Size}} {{.Config.User}}"]
    size, user = podman.check([*inspect, IMAGE]).split()
    base_size = podman.check([*inspect, base_image]).split()[0]
    built = BuiltImage(
        name=IMAGE,
        base=base_image,
        build_seconds=build_seconds,
        size_bytes=int(size),
        base_size_bytes=int(base_size),
        user=user,
    )
    try:
        yield built
    finally:
        podman.check(["rmi", "--force", IMAGE])

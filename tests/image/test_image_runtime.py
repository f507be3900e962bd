"""The built image starts as the pod runs it: non-root, on a read-only root filesystem.

The chart's Deployment runs the controller as UID/GID 65532 with
readOnlyRootFilesystem, no capabilities and no privilege escalation, an
emptyDir at /tmp the only writable path. These tests build the real Dockerfile
(podman, see conftest.py) and run the image that way: the image's own USER is
non-root, every module imports and `version` answers without writing a byte,
writes outside a tmpfs fail, the final stage carries no pip, and the SBOM
shipped in the image lists exactly what the lock installed. `make test-image`.
"""

from __future__ import annotations

import json
import tomllib

import pytest
from packaging.markers import Marker

from tests.harness.lockfile import REPO, RUNTIME_LOCK, normalize, parse_lock

from .conftest import BuiltImage, Podman

pytestmark = pytest.mark.image

UID = "65532"
# What the pod's securityContext amounts to, bar the user (the image's USER is tested).
HARDENED = (
    "--read-only",
    "--read-only-tmpfs=false",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
)
SBOM = "/opt/eni-controller/sbom.cdx.json"
IMPORT_EVERY_MODULE = (
    "import importlib, pkgutil, eni_controller; "
    "names = [m.name for m in pkgutil.walk_packages(eni_controller.__path__, 'eni_controller.') "
    "if not m.name.endswith('.__main__')]; "
    "[importlib.import_module(n) for n in names]; print(len(names))"
)


def project_version() -> str:
    version: str = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return version


def test_image_user_is_the_fixed_non_root_uid(image: BuiltImage) -> None:
    assert image.user == f"{UID}:{UID}"


def test_starts_non_root_on_a_read_only_root(podman: Podman, image: BuiltImage) -> None:
    version = podman.run(*HARDENED, image.name, "version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == project_version()
    ids = podman.run(*HARDENED, "--entrypoint", "id", image.name)
    assert ids.returncode == 0, ids.stderr
    assert ids.stdout.startswith(f"uid={UID}(eni-controller) gid={UID}(eni-controller)")


def test_starts_with_the_pods_explicit_user(podman: Podman, image: BuiltImage) -> None:
    done = podman.run(*HARDENED, "--user", f"{UID}:{UID}", image.name, "version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == project_version()
    uid = podman.run(*HARDENED, "--user", f"{UID}:{UID}", "--entrypoint", "id", image.name, "-u")
    assert uid.stdout.strip() == UID


def test_every_module_imports_without_writing(podman: Podman, image: BuiltImage) -> None:
    done = podman.run(*HARDENED, "--entrypoint", "python", image.name, "-c", IMPORT_EVERY_MODULE)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 20  # the package's modules, agent included


@pytest.mark.parametrize("path", ["/tmp/probe", "/opt/eni-controller/probe", "/probe"])
def test_root_filesystem_refuses_writes(podman: Podman, image: BuiltImage, path: str) -> None:
    write = f"open({path!r}, 'w').write('x')"
    done = podman.run(*HARDENED, "--entrypoint", "python", image.name, "-c", write)
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr


def test_tmpfs_at_tmp_is_the_writable_path(podman: Podman, image: BuiltImage) -> None:
    """As the chart's emptyDir at /tmp: the same write succeeds there, and only there."""
    write = "open('/tmp/probe', 'w').write('x'); print(open('/tmp/probe').read())"
    done = podman.run(
        *HARDENED, "--tmpfs", "/tmp", "--entrypoint", "python", image.name, "-c", write
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x"


def test_final_stage_has_no_pip(podman: Podman, image: BuiltImage) -> None:
    done = podman.run(*HARDENED, "--entrypoint", "python", image.name, "-m", "pip", "--version")
    assert done.returncode != 0
    assert "No module named pip" in done.stderr


def test_shipped_sbom_lists_what_the_lock_installed(podman: Podman, image: BuiltImage) -> None:
    done = podman.run(*HARDENED, "--entrypoint", "cat", image.name, SBOM)
    assert done.returncode == 0, done.stderr
    sbom = json.loads(done.stdout)
    assert sbom["bomFormat"] == "CycloneDX"
    root = sbom["metadata"]["component"]
    assert (root["name"], root["version"]) == ("aws-multi-eni-controller", project_version())
    shipped = {normalize(c["name"]): c["version"] for c in sbom["components"]}
    shipped.pop("aws-multi-eni-controller", None)
    version = "import platform; print(platform.python_version())"
    python = podman.run(*HARDENED, "--entrypoint", "python", image.name, "-c", version)
    linux = {"sys_platform": "linux", "python_full_version": python.stdout.strip()}
    locked = {
        entry.name: entry.version
        for entry in parse_lock(RUNTIME_LOCK.read_text()).values()
        if not entry.marker or Marker(entry.marker).evaluate(linux)
    }
    assert shipped == locked


def test_image_adds_little_to_its_base(image: BuiltImage) -> None:
    """The controller's layers (its virtualenv and the user) stay under 150 MB."""
    added = image.size_bytes - image.base_size_bytes
    print(
        f"\nimage {image.name}: built in {image.build_seconds:.0f} s, "
        f"{image.size_bytes / 1e6:.0f} MB on {image.base} ({image.base_size_bytes / 1e6:.0f} MB),"
        f" {added / 1e6:.0f} MB added"
    )
    assert 0 < added < 150e6

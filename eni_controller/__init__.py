"""aws-multi-eni-controller: the controller and the node agent of one package.

`package_version()` lives here, importable without loading a command's stack."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "aws-multi-eni-controller"


def package_version() -> str:
    """The installed package's version ("0+unknown" run from an uninstalled tree)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"

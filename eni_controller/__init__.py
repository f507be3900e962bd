"""aws-multi-eni-controller: the controller (`eni-controller run`) and the node
agent (`eni-controller agent`) of one package.

`package_version()` lives here, the one place every entry point can import
without loading a command's stack (the CLI's `--version`, the build-info
metric, the start-up log line)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "aws-multi-eni-controller"


def package_version() -> str:
    """The installed package's version ("0+unknown" run from an uninstalled tree)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"

"""Command line: `eni-controller run|version` (also `python -m eni_controller`).

The entry point turns configuration problems into one clear message and a
non-zero exit instead of a traceback, so a misconfigured Deployment says what
is wrong in its first log line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from eni_controller.config import Config, ConfigError

EXIT_CONFIG_ERROR = 2
EXIT_NOT_READY = 3


def package_version() -> str:
    try:
        return version("aws-multi-eni-controller")
    except PackageNotFoundError:
        return "0+unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eni-controller",
        description="Attaches extra AWS ENIs to Kubernetes nodes as declared by NodeENI objects.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version")
    commands.add_parser("run", help="run the controller (configuration from environment)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(package_version())
        return 0
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"eni-controller: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return _run(config)


def _run(config: Config) -> int:
    # The reconcile loop arrives with the controller-core issue; until then `run`
    # validates configuration and refuses to pretend it manages anything.
    print(
        f"eni-controller {package_version()}: configuration valid "
        f"(region {config.aws_region}); the reconcile loop is not part of this build yet",
        file=sys.stderr,
    )
    return EXIT_NOT_READY


if __name__ == "__main__":
    sys.exit(main())

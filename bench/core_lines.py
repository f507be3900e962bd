"""Issue 17's line measure: `eni_controller/` lines, new features aside, by `git blame`.

Each line of `eni_controller/*.py` at REV is counted as one of:

* baseline: last written at or before BASE (the core before issue 17);
* feature: in a module issues 18-20 added, or last written by one of their commits;
* core: anything else (issue 17's work, fixes, later cuts).

Non-feature (baseline + core) against BASE's total is the issue's figure:

    python -m bench.core_lines [REV]
"""

from __future__ import annotations

import collections
import subprocess
import sys
from typing import Final

BASE: Final = "0d1c148"
FEATURE_COMMITS: Final = frozenset(
    [
        "c63aa16",
        "3b61c9d",
        "01f36b0",
        "6fd8193",
        "36c97b3",
        "08ddedb",
        "6395643",
        "4272f6a",
        "78bca61",
        "da1e114",
        "8bda681",
        "984b110",
        "eca4c75",
        "437a72a",
        "3b7de26",
        "a7e6061",
        "b2e7d56",
        "f753370",
        "712fad1",
        "3a6aa19",
        "24837ff",
        "0feda1e",
        "1a28b5b",
        "bb8a224",
        "f78e6a1",
        "438872f",
        "542ad87",
        "cfd46e8",
        "dff8368",
        "c6ad684",
        "499327a",
        "5bef400",
        "4f7e89a",
        "68863b3",
        "1779010",
        "eb7a525",
        "48457fb",
        "a2ee2c1",
        "4f77342",
        "368e9f5",
        "e545b45",
        "3d2e78e",
        "6c36820",
        "cdc1a57",
        "497fd09",
        "4eccf98",
        "61bb924",
        "d12ee54",
        "eeb1cd7",
        "f788389",
        "628bf7c",
        "46710d7",
        "a58a24a",
        "d91a9a6",
        "e703e6b",
        "ebf813e",
        "8e5a192",
        "d0e09db",
    ]
)
FEATURE_MODULES: Final = tuple(
    f"eni_controller/{m}"
    for m in (
        "agent/",
        "eninode.py",
        "reconcile/eninodes.py",
        "reconcile/eninode_sync.py",
        "kube/eninode_writes.py",
        "kube/permissions.py",
        "envvars.py",
        "lifecycle.py",
        "statusview.py",
        "reconcile/status_fit.py",
        "aws/imds.py",
    )
)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def _kind(commit: str, base_commits: frozenset[str]) -> str:
    if commit in base_commits:
        return "baseline"
    return "feature" if commit[:7] in FEATURE_COMMITS else "core"


def count(rev: str) -> dict[str, collections.Counter[str]]:
    """Per package (top level included), lines by kind."""
    base_commits = frozenset(_git("rev-list", BASE).split())
    files = _git("ls-tree", "-r", "--name-only", rev, "eni_controller").split()
    per_package: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for path in (f for f in files if f.endswith(".py")):
        package = path.split("/")[1] if path.count("/") > 1 else "top level"
        if path.startswith(FEATURE_MODULES):
            per_package[package]["feature"] += _git("show", f"{rev}:{path}").count("\n")
            continue
        for line in _git("blame", "--porcelain", rev, "--", path).splitlines():
            parts = line.split()
            # a header line: the commit, the original and the final line number
            header = len(parts) >= 3 and len(parts[0]) == 40
            if header and parts[1].isdigit() and parts[2].isdigit():
                per_package[package][_kind(parts[0], base_commits)] += 1
    return per_package


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    total: collections.Counter[str] = collections.Counter()
    for package, kinds in sorted(count(rev).items()):
        total.update(kinds)
        print(
            f"{package:10s} baseline {kinds['baseline']:5d} core {kinds['core']:5d}"
            f" feature {kinds['feature']:5d} non-feature {kinds['baseline'] + kinds['core']:5d}"
        )
    before = _lines_at(BASE)
    non_feature = total["baseline"] + total["core"]
    print(f"non-feature {non_feature} against {before} at {BASE}: {non_feature / before - 1:+.1%}")


def _lines_at(rev: str) -> int:
    files = _git("ls-tree", "-r", "--name-only", rev, "eni_controller").split()
    return sum(_git("show", f"{rev}:{f}").count("\n") for f in files if f.endswith(".py"))


if __name__ == "__main__":
    main()

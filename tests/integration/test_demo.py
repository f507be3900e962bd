"""The README's first command, `make demo`, really shows ENIs attached."""

from __future__ import annotations

import subprocess
import sys


def test_demo_applies_the_sample_and_prints_attached_enis() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.harness.demo", "--once"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    assert lines[summary + 1].split() == ["multus-demo", "True", "3", "3"]
    # the conditions (whose messages may say "attached") come before the attachments
    at = next(i for i in range(summary + 2, len(lines)) if lines[i].startswith("NODE"))
    header = lines[at].split()
    attachments = [line for line in lines[at + 1 :] if line.endswith("attached")]
    assert len(attachments) == 3
    # no node agent runs in the demo: no interface is reported, and none is made up
    interface = header.index("INTERFACE")
    assert [line.split()[interface] for line in attachments] == ["-"] * 3

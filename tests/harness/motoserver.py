"""A real moto server (EC2) on a free loopback port, as a child process.

The controller talks HTTP to it exactly as it would to EC2, through
AWS_ENDPOINT_URL. Used by the pytest fixtures and by `make cluster`. It runs
moto with the AWS realism layer (`tests.harness.realism`): plain moto until a
test switches a rule on through `/_realism/configure`.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.harness.procs import LOOPBACK, free_port, spawn, stop_pid_file, wait_until


class MotoServer:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def start(self, *, timeout: float = 60.0) -> str:
        """Start the server; return its endpoint URL."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = self.state_dir / "moto.log"
        proc = spawn(
            [
                sys.executable,
                "-m",
                "tests.harness.realism",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
            ],
            log_path=log,
            pid_path=self.state_dir / "moto.pid",
        )
        endpoint = f"http://{LOOPBACK}:{port}"
        wait_until(
            lambda: _answers(f"{endpoint}/_realism/state"),
            what="moto server",
            timeout=timeout,
            alive=lambda: proc.poll() is None,
            log_path=log,
        )
        return endpoint

    def stop(self) -> None:
        stop_pid_file(self.state_dir / "moto.pid")


def reset(endpoint: str) -> None:
    """Forget every resource (moto's own reset API)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False

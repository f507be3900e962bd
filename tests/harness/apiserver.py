"""A real kube-apiserver + etcd on free loopback ports.

Tests run against the real API server (schema validation, 409/410, the status
subresource, watches), not a fake of it. The binary is built once from
Debian's source package by scripts/build-kube-apiserver.sh and cached outside
the repo; this module only starts and stops it.

The kube-apiserver process can also be stopped and started again on its own
(`stop_apiserver` / `start_apiserver`): same port, same etcd and data dir,
same serving certificate and token, so clients made before the restart reach
the new process unchanged, as after a control-plane upgrade or crash. Only a
test's private server should be restarted: others share the session's.
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.harness.procs import LOOPBACK, free_port, spawn, stop_pid_file, wait_until

KUBE_VERSION = "v1.20.2"
DEFAULT_BINARY = (
    Path.home() / ".cache" / "eni-controller" / f"kube-apiserver-{KUBE_VERSION}" / "kube-apiserver"
)
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-kube-apiserver.sh"


def kube_apiserver_binary() -> Path:
    """The cached kube-apiserver, or a clear error saying how to build it."""
    cache = os.environ.get("ENI_CACHE_DIR")
    path = Path(
        os.environ.get("ENI_KUBE_APISERVER")
        or (
            Path(cache) / f"kube-apiserver-{KUBE_VERSION}" / "kube-apiserver"
            if cache
            else DEFAULT_BINARY
        )
    )
    if not path.is_file():
        raise FileNotFoundError(f"no kube-apiserver at {path}: run `bash {BUILD_SCRIPT}` first")
    return path


@dataclass(frozen=True, kw_only=True)
class APIServerEndpoint:
    """How to reach a running API server."""

    url: str
    token: str
    ca_file: Path
    kubeconfig: Path


class LocalAPIServer:
    """etcd + kube-apiserver as child processes whose state lives in `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()  # the kubeconfig names files by absolute path
        self._etcd_url = ""
        self._token = ""
        self._port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "kube-apiserver.pid"

    @property
    def apiserver_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self._port}"

    def start(self, *, timeout: float = 60.0) -> APIServerEndpoint:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._etcd_url = self._start_etcd(timeout=timeout)
        self._token = secrets.token_hex(16)
        tokens = self.state_dir / "tokens.csv"
        tokens.write_text(f'{self._token},admin,admin-uid,"system:masters"\n')
        sa_key = self.state_dir / "sa.key"
        if not sa_key.exists():
            subprocess.run(
                ["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True
            )
        self._port = free_port()
        self.start_apiserver(timeout=timeout)
        ca_file = self.state_dir / "certs" / "apiserver.crt"
        kubeconfig = self.state_dir / "kubeconfig"
        write_kubeconfig(kubeconfig, url=self.url, token=self._token, ca_file=ca_file)
        return APIServerEndpoint(
            url=self.url, token=self._token, ca_file=ca_file, kubeconfig=kubeconfig
        )

    def start_apiserver(self, *, timeout: float = 60.0) -> None:
        """Start kube-apiserver (again): the port, etcd, certificates and token of
        `start()`, so existing clients and kubeconfigs reach it unchanged. Returns
        once /readyz answers 200."""
        if not self._etcd_url:
            raise RuntimeError("start() first: the API server needs its etcd")
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError("kube-apiserver is already running")
        cert_dir = self.state_dir / "certs"  # self-signed on first start, reused after
        sa_key = self.state_dir / "sa.key"
        log = self.state_dir / "kube-apiserver.log"
        self._proc = proc = spawn(
            [
                str(kube_apiserver_binary()),
                f"--etcd-servers={self._etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={self._port}",
                "--insecure-port=0",
                f"--cert-dir={cert_dir}",
                f"--token-auth-file={self.state_dir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--disable-admission-plugins=ServiceAccount",
                "--enable-priority-and-fairness=false",
                "--v=0",
            ],
            log_path=log,
            pid_path=self._pid_file,
        )
        wait_until(
            lambda: _readyz(self.url, self._token),
            what="kube-apiserver",
            timeout=timeout,
            alive=lambda: proc.poll() is None,
            log_path=log,
        )

    def stop_apiserver(self, *, kill: bool = False, grace: float = 10.0) -> None:
        """Stop kube-apiserver only; etcd keeps every object and resourceVersion.
        `kill`: SIGKILL at once (a crash) rather than SIGTERM (a graceful stop)."""
        stop_pid_file(self._pid_file, grace=0.0 if kill else grace)
        if self._proc is not None:
            self._proc.wait(timeout=grace)  # reaped: its port is free again
            self._proc = None

    def _start_etcd(self, *, timeout: float) -> str:
        client_port, peer_port = free_port(), free_port()
        client_url = f"http://{LOOPBACK}:{client_port}"
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        log = self.state_dir / "etcd.log"
        proc = spawn(
            [
                "etcd",
                "--name=default",
                f"--data-dir={self.state_dir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log_path=log,
            pid_path=self.state_dir / "etcd.pid",
        )
        wait_until(
            lambda: _http_ok(f"{client_url}/health"),
            what="etcd",
            timeout=timeout,
            alive=lambda: proc.poll() is None,
            log_path=log,
        )
        return client_url

    def stop(self) -> None:
        stop_pid_file(self._pid_file)
        stop_pid_file(self.state_dir / "etcd.pid")


def write_kubeconfig(path: Path, *, url: str, token: str, ca_file: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": url, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))


def _readyz(url: str, token: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False

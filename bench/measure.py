"""What the performance suite reads while a scenario runs, from outside the controller.

The controller is measured as a black box: its process (/proc: CPU seconds and
peak RSS), its Prometheus endpoint (reconciles, EC2 throttles), the API
server's own request counters (every status PATCH the controller sends, no-ops
and 409s included) and a watch on the NodeENIs (when each ENI first shows as
`attached` in status, which is when a Multus user could see it). EC2 requests
are counted by the realism layer in front of moto, per action, retries
included. None of this needs the controller's cooperation, so the figures are
the same ones an operator would get from a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from eni_controller import model

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --- the controller process -------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcessSample:
    cpu_seconds: float  # user + system, since the process started
    peak_rss_mb: float  # VmHWM: the high-water mark of resident memory
    rss_mb: float


def process_sample(pid: int) -> ProcessSample:
    """CPU seconds and memory of `pid`, from /proc (no psutil needed)."""
    with open(f"/proc/{pid}/stat") as stat:
        # fields after the parenthesised command name; utime and stime are 14th and 15th
        fields = stat.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    memory: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                memory[key] = int(value.split()[0]) / 1024  # kB → MB
    return ProcessSample(
        cpu_seconds=(utime + stime) / _CLOCK_TICKS,
        peak_rss_mb=round(memory.get("VmHWM", 0.0), 1),
        rss_mb=round(memory.get("VmRSS", 0.0), 1),
    )


def loadavg() -> str:
    """/proc/loadavg as it reads: the machine's load, reported beside every figure."""
    with open("/proc/loadavg") as f:
        return f.read().strip()


# --- raw API requests --------------------------------------------------------------


async def expect_ok(call: Awaitable[Any]) -> None:
    """Send a request made with _preload_content=False (no model objects for a
    12 KB Node); fail on an error status."""
    response = await call
    try:
        if not 200 <= response.status < 300:
            raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:300]!r}")
    finally:
        response.release()


# --- Prometheus text endpoints ---------------------------------------------------


def scrape(url: str, *, token: str | None = None, timeout: float = 10.0) -> Samples:
    """Every sample of a Prometheus text endpoint, keyed by (name, sorted labels)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of `name` over every sample whose labels include `labels`."""
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for (sample_name, sample_labels), value in samples.items():
        if sample_name == name:
            key = dict(sample_labels).get(label, "")
            found[key] = found.get(key, 0.0) + value
    return found


def delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, int]:
    keys = set(after) | set(before)
    return {
        k: round(after.get(k, 0) - before.get(k, 0))
        for k in sorted(keys)
        if after.get(k, 0) != before.get(k, 0)
    }


# --- NodeENIs as the API server shows them ------------------------------------------


@dataclass(kw_only=True)
class NodeENITracker:
    """A watch on the bench's NodeENIs (by label): the latest object per name and
    the moment each ENI first appeared as `attached` in a status."""

    api: client.ApiClient
    label_selector: str
    clock: Callable[[], float] = time.perf_counter
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_attached: dict[str, float] = field(default_factory=dict)
    status_changes: int = 0  # watch events whose status differed from the previous one
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> NodeENITracker:
        custom = client.CustomObjectsApi(self.api)
        listing = await custom.list_cluster_custom_object(
            model.GROUP, model.VERSION, model.PLURAL, label_selector=self.label_selector
        )
        for obj in listing.get("items") or []:
            self._seen(obj)
        self._task = asyncio.create_task(self._watch(listing["metadata"]["resourceVersion"]))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self, resource_version: str) -> None:
        custom = client.CustomObjectsApi(self.api)
        while True:
            stream = watch.Watch()
            try:
                async for event in stream.stream(
                    custom.list_cluster_custom_object,
                    model.GROUP,
                    model.VERSION,
                    model.PLURAL,
                    label_selector=self.label_selector,
                    resource_version=resource_version,
                    timeout_seconds=300,
                ):
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise ApiException(status=obj.get("code", 0), reason=obj.get("message"))
                    resource_version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "DELETED":
                        self.objects.pop(obj["metadata"]["name"], None)
                    else:
                        self._seen(obj)
                    self._changed.set()
            except ApiException as err:
                if err.status != HTTPStatus.GONE:
                    raise
                listing = await custom.list_cluster_custom_object(
                    model.GROUP, model.VERSION, model.PLURAL, label_selector=self.label_selector
                )
                self.objects = {o["metadata"]["name"]: o for o in listing.get("items") or []}
                resource_version = listing["metadata"]["resourceVersion"]
            finally:
                await stream.close()

    def _seen(self, obj: dict[str, Any]) -> None:
        now = self.clock()
        name = obj["metadata"]["name"]
        before = self.objects.get(name)
        if before is not None and before.get("status") != obj.get("status"):
            self.status_changes += 1
        self.objects[name] = obj
        for entry in attachments(obj):
            if entry.get("status") == "attached":
                self.first_attached.setdefault(entry["eniID"], now)

    async def wait(
        self, done: Callable[[Mapping[str, dict[str, Any]]], bool], *, within: float
    ) -> None:
        """Until `done(objects)` holds; TimeoutError after `within` seconds."""
        async with asyncio.timeout(within):
            while not done(self.objects):
                self._changed.clear()
                await self._changed.wait()


def attachments(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (obj.get("status") or {}).get("attachments") or []
    return found


def is_ready(obj: Mapping[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def converged(objects: Mapping[str, Mapping[str, Any]], expected: Mapping[str, int]) -> bool:
    """Every NodeENI named in `expected` is Ready with exactly that many ENIs attached."""
    return all(
        name in objects and is_ready(objects[name]) and attached_count([objects[name]]) == count
        for name, count in expected.items()
    )


def attached_count(objects: Iterable[Mapping[str, Any]]) -> int:
    return sum(1 for o in objects for a in attachments(o) if a.get("status") == "attached")


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """p50, p95 and max (nearest rank), in seconds."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p95": None, "max": None}

    def rank(q: float) -> float:
        index = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
        return round(ordered[index], 3)

    return {"p50": rank(0.50), "p95": rank(0.95), "max": round(ordered[-1], 3)}

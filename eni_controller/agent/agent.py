"""The node agent's loop: watch this node's ENINode and its links, act, report.

The I/O shell around ``planner.plan_for``: a cycle reads every link (one
netlink dump) and the ENIs' PCI facts, carries out the planned actions, and
reads and plans again (MAX_ROUNDS at most), then writes the status. A cycle
runs only when the ENINode changes, a link with a wanted MAC or a known index
changes (netlink events), or a backoff runs out: an idle agent makes no requests.

Invariants: a failed action, status write or device plugin sync is retried
with exponential backoff, never in a tight loop; links outside the spec are
never touched. Without ``pci`` a DPDK entry reports an error; without
``device_plugin`` the plugin is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.agent.deviceplugin import DevicePluginConfig
from eni_controller.agent.links import Link, LinkError, NetlinkLinks, find_by_mac
from eni_controller.agent.metrics import AgentMetrics
from eni_controller.agent.pci import PCIDevices
from eni_controller.agent.planner import (
    Action,
    BindDPDK,
    Observed,
    PCIFacts,
    ReleaseDPDK,
    SetMTU,
    SetUp,
    plan_for,
    relevant,
)
from eni_controller.agent.report import Reporter, StatusWriteFailed
from eni_controller.eninode import API_VERSION, GROUP, KIND, PLURAL, VERSION, ENINode, ENINodeStatus
from eni_controller.health import LoopHeartbeat
from eni_controller.kube.informer import Informer
from eni_controller.kube.resources import ResourceAPI
from eni_controller.kube.store import Obj

log = structlog.get_logger(__name__)

MAX_ROUNDS: Final = 4  # act, observe again; more means the kernel did not do what it said
LOOP_STALL_SECONDS: Final = 30.0
BACKOFF_MAX_SECONDS: Final = 300.0
_ACTION_NAMES: Final = {
    SetMTU: "set_mtu",
    SetUp: "set_up",
    BindDPDK: "bind_dpdk",
    ReleaseDPDK: "release_dpdk",
}


@dataclass(frozen=True, slots=True)
class DevicePlugin:
    """The device plugin's config, and how to make it reload (``restart_device_plugin``)."""

    config: DevicePluginConfig
    restart: Callable[[], Awaitable[int]]


def eninode_resource(api: client.ApiClient, *, node_name: str) -> ResourceAPI:
    """List/watch of the one ENINode named ``node_name``."""
    custom = client.CustomObjectsApi(api)
    selector = f"metadata.name={node_name}"

    def list_call(**kwargs: Any) -> Awaitable[Any]:
        return custom.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, field_selector=selector, **kwargs
        )

    return ResourceAPI(kind=KIND, api_version=API_VERSION, list_call=list_call)


@dataclass(slots=True)
class _Backoff:
    """Failures in a row of one thing, and when it may be tried again (monotonic)."""

    failures: int = 0
    until: float = 0.0
    error: str = ""


class Agent:
    """One node's agent. ``run()`` until cancelled; ``live``/``ready`` for the probes."""

    def __init__(
        self,
        *,
        node_name: str,
        api: client.ApiClient,
        links: NetlinkLinks,
        metrics: AgentMetrics,
        pci: PCIDevices | None = None,
        device_plugin: DevicePlugin | None = None,
        backoff_base_seconds: float = 1.0,
    ) -> None:
        self.node_name = node_name
        self.metrics = metrics
        self._log = log.bind(node=node_name)
        self.heartbeat = LoopHeartbeat()
        self.informer = Informer(
            name=f"eninode/{node_name}",
            api=eninode_resource(api, node_name=node_name),
            handler=self,
        )
        self._reporter = Reporter(api, metrics=metrics)
        self._links = links
        self._pci = pci
        self._device_plugin = device_plugin
        self._base = backoff_base_seconds
        self._wake = asyncio.Event()
        self._held: dict[Action, _Backoff] = {}
        self._status_backoff = _Backoff()
        self._cycle_backoff = _Backoff()
        self._plugin_backoff = _Backoff()
        self._plugin_restart_pending = False
        self._macs: frozenset[str] = frozenset()
        self._indexes: frozenset[int] = frozenset()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = False
        self.cycles = 0

    # -- informer handler: every change of our ENINode wakes the loop
    def on_add(self, obj: Obj) -> None:
        self._wake.set()

    def on_update(self, old: Obj, new: Obj) -> None:
        self._wake.set()

    def on_delete(self, obj: Obj) -> None:
        self._wake.set()

    # -- probes (called from the health server's threads)
    def ready(self) -> tuple[bool, str]:
        """Ready once the first cycle is done: links configured, status in sync."""
        return (True, "") if self._ready else (False, "first cycle not done")

    def live(self) -> tuple[bool, str]:
        if not self.heartbeat.alive(stale_after=LOOP_STALL_SECONDS):
            return False, f"event loop stalled for {self.heartbeat.lag():.1f}s"
        if any(t.done() for t in self._tasks):
            return False, "the ENINode watch or the link event stream stopped"
        return True, ""

    async def run(self) -> None:
        self._tasks = [
            asyncio.create_task(self.informer.run(), name="eninode-informer"),
            asyncio.create_task(self._follow_links(), name="link-events"),
            asyncio.create_task(self.heartbeat.run(), name="heartbeat"),
        ]
        try:
            await self.informer.wait_synced()
            self._log.info("agent started", eninode=self.informer.get(self.node_name) is not None)
            while True:
                self._wake.clear()
                await self._guarded_cycle()
                await self._sleep()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _follow_links(self) -> None:
        # aclosing: the event socket is closed when this task is cancelled, not at GC
        async with contextlib.aclosing(self._links.events()) as events:
            async for event in events:
                wanted = relevant(event, macs=self._macs, indexes=self._indexes)
                self.metrics.link_events.labels(str(wanted).lower()).inc()
                if wanted:
                    self._wake.set()

    async def _sleep(self) -> None:
        """Until woken, or until the first backoff runs out."""
        due = [b.until for b in self._held.values()]
        pending = (self._status_backoff, self._cycle_backoff, self._plugin_backoff)
        due += [b.until for b in pending if b.failures]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    def _fail(self, backoff: _Backoff, error: str) -> _Backoff:
        """Count a failure; the thing is tried again after base * 2**(n-1) s, capped."""
        backoff.failures += 1
        backoff.error = error
        delay = min(BACKOFF_MAX_SECONDS, self._base * 2 ** min(backoff.failures - 1, 32))
        backoff.until = time.monotonic() + delay
        return backoff

    async def _guarded_cycle(self) -> None:
        """A cycle; a failure (netlink, API) is logged and retried with backoff."""
        started = time.perf_counter()
        try:
            settled = await self._cycle()
        except Exception as err:  # netlink, the API, or a bug: logged, retried with backoff
            self._fail(self._cycle_backoff, repr(err))
            self.metrics.cycles.labels("error").inc()
            expected = isinstance(
                err, LinkError | OSError | ApiException | aiohttp.ClientError | TimeoutError
            )
            self._log.warning(
                "cycle failed",
                error=repr(err),
                failures=self._cycle_backoff.failures,
                exc_info=not expected,
            )
        else:
            if settled:
                self._cycle_backoff = _Backoff()
            else:  # the kernel said done but shows otherwise: look again later, not now
                self._fail(self._cycle_backoff, "unsettled")
            self.metrics.cycles.labels("success").inc()
        finally:
            self.cycles += 1
            self.metrics.cycle_duration.observe(time.perf_counter() - started)

    async def _cycle(self) -> bool:
        """One cycle; False when actions were still planned after MAX_ROUNDS."""
        node = self._node()
        self._macs = frozenset(w.mac_address for w in node.spec.interfaces) if node else frozenset()
        settled = False
        for _ in range(MAX_ROUNDS):
            observed, by_index = await self._observe(node)
            now = time.monotonic()
            result = plan_for(
                node,
                remembered=self._reporter.remembered,
                observed=observed,
                held={action: b.error for action, b in self._held.items() if b.until > now},
                pci_available=self._pci is not None,
                now=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            if not result.actions:
                settled = True
                break
            await self._act(result.actions, by_index)
        if not settled:
            self._log.warning("actions still planned after acting", actions=repr(result.actions))
        self._indexes = frozenset(
            o.lookup.link.index for o in observed.values() if o.lookup.link is not None
        )
        now = time.monotonic()
        self._held = {a: b for a, b in self._held.items() if b.until > now}
        await self._report(node, result.status)
        await self._sync_device_plugin(result.device_plugin)
        if not self._status_backoff.failures:
            self._ready = True  # links acted on and the status in sync: latched
        return settled

    def _node(self) -> ENINode | None:
        obj = self.informer.get(self.node_name)
        return None if obj is None else ENINode.from_dict(obj)

    async def _observe(self, node: ENINode | None) -> tuple[dict[str, Observed], dict[int, Link]]:
        """Every wanted ENI's link and PCI facts, and those of devices still DPDK-bound."""
        links = await self._links.links()
        previous = (self._reporter.remembered if node is None else node.status).by_eni()
        observed: dict[str, Observed] = {}
        for wanted in () if node is None else node.spec.interfaces:
            lookup = find_by_mac(links, wanted.mac_address)
            last = previous.get(wanted.eni_id)
            address = (wanted.dpdk.pci_address if wanted.dpdk else None) or self._address_of(
                lookup.link
            )
            if address is None and last is not None and (wanted.dpdk or last.dpdk_bound):
                address = last.pci_address  # the device has no kernel link while DPDK-bound
            observed[wanted.eni_id] = Observed(lookup=lookup, pci=self._pci_facts(address))
        for last in previous.values():
            if last.eni_id not in observed and last.dpdk_bound and last.pci_address:
                observed[last.eni_id] = Observed(pci=self._pci_facts(last.pci_address))
        return observed, {link.index: link for link in links}

    def _address_of(self, link: Link | None) -> str | None:
        if link is None:
            return None
        address = self._pci.address_of(link.name) if self._pci is not None else None
        return address or link.pci_address

    def _pci_facts(self, address: str | None) -> PCIFacts:
        if address is None or self._pci is None:
            return PCIFacts(address=address)
        return PCIFacts(address=address, driver=self._pci.driver_of(address))

    async def _act(self, actions: tuple[Action, ...], by_index: Mapping[int, Link]) -> None:
        for action in actions:
            name = _ACTION_NAMES[type(action)]
            try:
                await self._do(action, by_index)
            except LinkError as err:
                self._hold(action, str(err), errno=err.errno)
            except Exception as err:  # from the PCI collaborator: DriverMissing, OSError...
                self._hold(action, _pci_error(action, err), errno=getattr(err, "errno", None))
            else:
                self._held.pop(action, None)
                self.metrics.actions.labels(name, "success").inc()
                self._log.info("done", action=name, eni=action.eni_id, detail=repr(action))

    async def _do(self, action: Action, by_index: Mapping[int, Link]) -> None:
        if isinstance(action, SetMTU):
            await self._links.set_mtu(by_index[action.index], action.mtu)
        elif isinstance(action, SetUp):
            await self._links.set_up(by_index[action.index])
        elif self._pci is None:
            raise RuntimeError("no PCI access")  # the planner plans none without it
        elif isinstance(action, BindDPDK):
            await asyncio.to_thread(self._pci.bind, action.address, driver=action.driver)
        else:
            await asyncio.to_thread(self._pci.release, action.address)

    def _hold(self, action: Action, error: str, *, errno: int | None) -> None:
        backoff = self._fail(self._held.setdefault(action, _Backoff()), error)
        self.metrics.actions.labels(_ACTION_NAMES[type(action)], "error").inc()
        self._log.warning(
            "action failed",
            action=_ACTION_NAMES[type(action)],
            eni=action.eni_id,
            error=error,
            errno=errno,
            failures=backoff.failures,
            retry_in=round(backoff.until - time.monotonic(), 3),
        )

    async def _report(self, node: ENINode | None, status: ENINodeStatus) -> None:
        held = self._status_backoff.until > time.monotonic()
        try:
            if await self._reporter.report(node, status, held=held):
                self._status_backoff = _Backoff()
        except StatusWriteFailed as err:
            self._fail(self._status_backoff, str(err))
            failures = self._status_backoff.failures
            self._log.warning("status write failed", error=str(err), failures=failures)

    async def _sync_device_plugin(self, wanted: Mapping[str, frozenset[str]]) -> None:
        """Put the DPDK devices in the plugin's config; restart it once per change."""
        plugin = self._device_plugin
        if plugin is None or self._plugin_backoff.until > time.monotonic():
            return
        try:
            if await asyncio.to_thread(plugin.config.sync, wanted):
                self._plugin_restart_pending = True
            if self._plugin_restart_pending:
                deleted = await plugin.restart()
                self._plugin_restart_pending = False
                self.metrics.device_plugin_restarts.inc()
                self._log.info("device plugin restarted", pods=deleted)
        except Exception as err:  # the file system or the API: retried with backoff
            self._fail(self._plugin_backoff, repr(err))
            self._log.warning(
                "device plugin sync failed",
                error=repr(err),
                failures=self._plugin_backoff.failures,
            )
        else:
            self._plugin_backoff = _Backoff()


def _pci_error(action: Action, err: Exception) -> str:
    detail = str(err) or type(err).__name__
    if isinstance(action, BindDPDK):
        return f"bind {action.address} to {action.driver}: {detail}"
    if isinstance(action, ReleaseDPDK):
        return f"release {action.address}: {detail}"
    return detail

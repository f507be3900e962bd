"""Kubernetes Events about NodeENIs: correlated, aggregated, coalesced. Best effort.

- Correlation (client-go's EventCorrelator): the same (uid, type, reason,
  message) raised again grows one Event's ``count``, so a NodeENI failing every
  resync does not flood etcd. The count is written absolute (merge patch), so a
  timed-out patch that landed is not counted twice; an expired Event (404) is
  created anew, count carried on.
- Aggregation (client-go's EventAggregator): past AGGREGATE_AFTER distinct
  messages of one (object, type, reason), each within AGGREGATE_WINDOW of the
  last, new messages count on one AGGREGATE_PREFIX Event, written at most once
  per AGGREGATE_INTERVAL.
- Coalescing: one write per Event at a time; occurrences raised meanwhile are
  carried by the next write, made by a task of the recorder, so no caller waits
  behind another's write; else `record` writes before it returns (`record_soon`
  leaves even that to a task).
- Named by the recorder as client-go names them (``<object>.<time in ns, hex>``):
  no answer is parsed, only checked (the client's models are a write's costliest part).
- Bounded: both caches keep their `cache_size` most recently used entries.
- Best effort: `record` never raises; a failed write's count is carried on.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, Protocol, TypeVar, cast

import aiohttp
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.kube.resources import checked
from eni_controller.kube.writes import MERGE_PATCH

log = structlog.get_logger(__name__)

COMPONENT: Final = "nodeeni-controller"
# Events about cluster-scoped NodeENIs go where kubectl looks for them by default.
EVENTS_NAMESPACE: Final = "default"
EVENT_MESSAGE_LIMIT: Final = 1024  # what an Event keeps of its message
EVENT_CACHE_SIZE: Final = 4096  # Events (and similar-event groups) remembered
AGGREGATE_AFTER: Final = 10  # distinct messages with an Event of their own (client-go: 10)
AGGREGATE_WINDOW: Final = 600.0  # seconds between similar events that keep them one group
AGGREGATE_INTERVAL: Final = 10.0  # seconds between two writes of one aggregate Event
AGGREGATE_PREFIX: Final = "(combined from similar events): "

_Group = tuple[str, str, str, str]  # involved uid, name, type, reason
_Key = tuple[_Group, str | None]  # the message; None: the group's aggregate Event
_Similar = tuple[float, set[str]]  # a group's last time seen, messages with their own Event
_V = TypeVar("_V")


class EventsAPI(Protocol):
    """What the recorder uses of CoreV1Api (a fake in unit tests)."""

    async def create_namespaced_event(
        self, namespace: str, body: Any, *, _preload_content: bool
    ) -> Any: ...
    async def patch_namespaced_event(
        self, name: str, namespace: str, body: Any, *, _content_type: str, _preload_content: bool
    ) -> Any: ...


@dataclass(slots=True)
class _Event:
    """One Event object: the occurrences counted, and how many writes carried so far."""

    nodeeni: str  # the involved object: name, uid, resourceVersion (the latest)
    uid: str
    type_: str
    reason: str
    aggregate: bool
    resource_version: str = ""  # these two: the latest occurrence's
    message: str = ""  # an aggregate's: combined
    first_timestamp: str = field(default_factory=model.utc_now)
    name: str | None = None  # the Event object, once created
    count: int = 0
    sent: int = 0
    writing: bool = False  # a write in flight, or a task that will make one
    written_at: float | None = None  # the loop time of its last write


class EventRecorder:
    """Kubernetes Events about NodeENIs (see the module's docstring)."""

    def __init__(
        self,
        api: client.ApiClient | EventsAPI,
        *,
        cache_size: int = EVENT_CACHE_SIZE,
        aggregate_interval: float = AGGREGATE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self._core: EventsAPI = (
            cast(EventsAPI, client.CoreV1Api(api)) if isinstance(api, client.ApiClient) else api
        )
        self._cache_size = cache_size
        self._aggregate_interval = aggregate_interval
        self._clock = clock
        self._events: collections.OrderedDict[_Key, _Event] = collections.OrderedDict()
        self._similar: collections.OrderedDict[_Group, _Similar] = collections.OrderedDict()
        self._later: set[asyncio.Task[None]] = set()

    async def record(
        self, nodeeni: model.NodeENI, *, type_: str, reason: str, message: str, count: int = 1
    ) -> None:
        """One occurrence, or `count` occurrences at once, of an Event about `nodeeni`."""
        try:
            event = self._observe(nodeeni, type_, reason, message, count)
            if event.writing:
                return  # the write in flight is followed by one that carries this
            event.writing = True
            if self._wait(event) > 0:
                self._write_later(event)
                return
        except Exception:  # a bug here must not fail the reconcile that reported
            log.exception("event not recorded", nodeeni=nodeeni.name, reason=reason)
            return
        try:
            await self._write(event)
        finally:
            if event.count > event.sent:
                self._write_later(event)
            else:
                event.writing = False

    def record_soon(
        self, nodeeni: model.NodeENI, *, type_: str, reason: str, message: str, count: int = 1
    ) -> None:
        """As `record`, for a caller that must not wait on the API server (a cleanup
        worker, whose next ENI waits behind it): a task of the recorder writes."""
        try:
            event = self._observe(nodeeni, type_, reason, message, count)
            if not event.writing:
                event.writing = True
                self._write_later(event)
        except Exception:  # a bug here must not fail the caller that reported
            log.exception("event not recorded", nodeeni=nodeeni.name, reason=reason)

    async def flush(self) -> None:
        """Return once the writes left to the recorder's tasks are made."""
        while self._later:
            await asyncio.gather(*self._later)

    def _observe(
        self, nodeeni: model.NodeENI, type_: str, reason: str, message: str, count: int
    ) -> _Event:
        """Count `count` occurrences of `message` on their Event, and return it."""
        message = message[:EVENT_MESSAGE_LIMIT]
        group = (nodeeni.uid, nodeeni.name, type_, reason)
        now = self._clock()
        last, messages = self._similar.get(group, (now, set()))
        if now - last > AGGREGATE_WINDOW:
            messages = set()
        _remember(self._similar, group, (now, messages), self._cache_size)
        if message in messages or len(messages) < AGGREGATE_AFTER:
            messages.add(message)
            key: _Key = (group, message)
        else:
            key, message = (group, None), (AGGREGATE_PREFIX + message)[:EVENT_MESSAGE_LIMIT]
        event = self._events.get(key)
        if event is None:
            event = _Event(nodeeni.name, nodeeni.uid, type_, reason, aggregate=key[1] is None)
        event.resource_version, event.message = nodeeni.resource_version, message
        event.count += count
        _remember(self._events, key, event, self._cache_size)
        return event

    def _wait(self, event: _Event) -> float:
        """Seconds until `event` may be written (an aggregate: not too soon again)."""
        if not event.aggregate or event.written_at is None:
            return 0.0
        return event.written_at + self._aggregate_interval - asyncio.get_running_loop().time()

    def _write_later(self, event: _Event) -> None:
        """Write `event` until its count is carried, in a task of its own (with a
        context of its own: its log lines are not some caller's)."""

        async def drain() -> None:
            try:
                while event.count > event.sent:
                    if (wait := self._wait(event)) > 0:
                        await asyncio.sleep(wait)
                    await self._write(event)
            finally:
                event.writing = False

        task = asyncio.get_running_loop().create_task(drain(), context=contextvars.Context())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _write(self, event: _Event) -> None:
        """Patch the Event with the count so far, or create it (new or expired); never raises."""
        event.sent = event.count
        event.written_at = asyncio.get_running_loop().time()
        now = model.utc_now()
        try:
            if event.name is not None:
                try:
                    await _sent(
                        self._core.patch_namespaced_event(
                            event.name,
                            EVENTS_NAMESPACE,
                            {"count": event.count, "lastTimestamp": now, "message": event.message},
                            _content_type=MERGE_PATCH,
                            _preload_content=False,
                        )
                    )
                    return
                except ApiException as err:
                    if err.status != HTTPStatus.NOT_FOUND:
                        raise
                    log.debug("event expired, creating a new one", name=event.name)
                    event.name = None
            # named before it is sent: a create that timed out but landed is patched
            # next, not made twice (one that did not land answers the patch 404)
            event.name = f"{event.nodeeni}.{time.time_ns():x}"  # client-go's: object, ns
            await _sent(
                self._core.create_namespaced_event(
                    EVENTS_NAMESPACE, _body(event, now), _preload_content=False
                )
            )
            return
        except ApiException as err:
            fields: dict[str, Any] = {"status": err.status}
        except (TimeoutError, aiohttp.ClientError) as err:  # timed out, connection lost
            fields = {"error": type(err).__name__}
        except Exception:  # a bug here must not fail the reconcile that reported
            log.exception("event not recorded", nodeeni=event.nodeeni, reason=event.reason)
            return
        log.warning("event not recorded", nodeeni=event.nodeeni, reason=event.reason, **fields)


async def _sent(call: Awaitable[aiohttp.ClientResponse]) -> None:
    """A write's answer checked and read to its end (its connection goes back to the
    pool), but not parsed: nothing in it is needed, and the client's models are the
    costly part of a write."""
    response = await checked(await call)
    await response.read()


def _body(event: _Event, now: str) -> dict[str, Any]:
    return {
        "metadata": {"name": event.name},
        "involvedObject": {
            "apiVersion": f"{model.GROUP}/{model.VERSION}",
            "kind": model.KIND,
            "name": event.nodeeni,
            "uid": event.uid,
            "resourceVersion": event.resource_version,
        },
        "type": event.type_,
        "reason": event.reason,
        "message": event.message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": event.first_timestamp,
        "lastTimestamp": now,
        "count": event.count,
    }


def _remember(cache: collections.OrderedDict[Any, _V], key: Any, value: _V, size: int) -> None:
    """`cache[key] = value` as its most recent entry; the least recent beyond `size` go."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)

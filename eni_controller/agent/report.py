"""The agent's report of its node: the ENINode status in the API, and the gauges.

Apart from the loop because it alone knows what the API server holds and what
the watch has shown yet.

Invariants: the status is sent as a merge patch of the status subresource, only
when its rendering differs from what is stored; keys stored that are not ours
are nulled in the same patch, so afterwards stored == rendered and nothing is
sent again, nor while the watch has not yet brought back the object written.
"""

from __future__ import annotations

from http import HTTPStatus

import aiohttp
import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.agent.metrics import AgentMetrics
from eni_controller.eninode import GROUP, PLURAL, VERSION, ENINode, ENINodeStatus
from eni_controller.kube.writes import MERGE_PATCH

log = structlog.get_logger(__name__)


class StatusWriteFailed(Exception):
    """The API server refused the status patch or did not answer."""


class Reporter:
    """Reports one node; ``remembered`` is the status last seen stored or written."""

    def __init__(self, api: client.ApiClient, *, metrics: AgentMetrics) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._metrics = metrics
        self.remembered = ENINodeStatus()
        # (resourceVersion written over, rendering) of the last write: until the watch
        # brings the object back, the cache still shows the old status
        self._written: tuple[str | None, dict[str, object]] | None = None

    async def report(self, node: ENINode | None, status: ENINodeStatus, *, held: bool) -> bool:
        """Set the gauges and bring the stored status to `status` (not while `held`);
        True when it is stored."""
        interfaces = self._metrics.interfaces
        interfaces.labels("wanted").set(status.summary.wanted)
        interfaces.labels("ready").set(status.summary.ready)
        interfaces.labels("error").set(sum(1 for e in status.interfaces if e.error))
        rendered = status.to_dict()
        if node is None:
            self.remembered = status
            return False
        stored = dict(node.raw_status or {})
        if stored == rendered:
            self.remembered = status
            return True
        if held or self._written == (node.resource_version, rendered):
            return False
        patch: dict[str, object] = {key: None for key in stored if key not in rendered}
        patch.update(rendered)
        try:
            await self._custom.patch_cluster_custom_object_status(
                GROUP,
                VERSION,
                PLURAL,
                node.name,
                {"status": patch},
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # missing from the stubs
            )
        except ApiException as err:
            if err.status == HTTPStatus.NOT_FOUND:  # deleted meanwhile: the watch will say so
                return False
            error = f"HTTP {err.status} {err.reason}"
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            error = repr(err)
        else:
            self.remembered = status
            self._written = (node.resource_version, rendered)
            self._metrics.status_writes.labels("success").inc()
            old, new = node.status.by_eni(), status.by_eni()
            log.info(
                "status written",
                node=node.name,
                changed=sorted(e for e in old.keys() | new.keys() if old.get(e) != new.get(e)),
                wanted=status.summary.wanted,
                ready=status.summary.ready,
                generation=status.observed_generation,
            )
            return True
        self._metrics.status_writes.labels("error").inc()
        raise StatusWriteFailed(error)

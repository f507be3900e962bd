"""The controller's writes of ENINodes: create one, or merge-patch its spec.

The controller is the only writer of an ENINode's spec (the node agent writes its
status), one sync per node at a time, replacing `spec.interfaces` whole. So the
patches carry no resourceVersion: one based on a lagging informer copy only
repeats our last write. An ENINode goes with its Node (owner reference).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import eninode
from eni_controller.kube.writes import MERGE_PATCH, Conflict


class ENINodeWriter:
    """Creates and patches ENINodes; counts its writes (tests and benchmarks)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.spec_writes = 0

    async def create(self, body: dict[str, Any]) -> None:
        """Create an ENINode; Conflict when one of that name exists (the informer
        had not shown it yet: the retry patches it)."""
        try:
            await self._custom.create_cluster_custom_object(
                eninode.GROUP, eninode.VERSION, eninode.PLURAL, body
            )
        except ApiException as err:
            if err.status == HTTPStatus.CONFLICT:  # AlreadyExists
                raise Conflict(f"eninode {body['metadata']['name']}: exists") from err
            raise
        self.spec_writes += 1

    async def patch(self, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch an ENINode (spec, owner references); Conflict when it is gone
        (the retry creates it)."""
        try:
            await self._custom.patch_cluster_custom_object(
                eninode.GROUP,
                eninode.VERSION,
                eninode.PLURAL,
                name,
                patch,
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]  # missing from the stubs
            )
        except ApiException as err:
            if err.status == HTTPStatus.NOT_FOUND:
                raise Conflict(f"eninode {name}: gone") from err
            raise
        self.spec_writes += 1

"""Raw list/watch access to one cluster-scoped resource type, as plain dicts.

Requests go through the client's request path (auth, TLS, kube/timeouts.py) with
``_preload_content=False``: bodies become the server's camelCase dicts, never
model classes (the client's deserialiser is slow), one shape for every type.
Watch lines are decoded with ``orjson`` (fast per heartbeat), list pages with
``json`` (lower peak memory), and split here: aiohttp's ``readline()`` refuses
lines over 128 KiB. A watch gives up on its own only when silent a grace period
past its ``timeoutSeconds``, so a dead peer is noticed and a healthy watch is not
cut short.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any, Final, cast

import orjson
from aiohttp import ClientResponse
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import eninode, model

ListCall = Callable[..., Awaitable[Any]]  # a generated list_* method, all but kwargs bound

CONNECT_TIMEOUT_SECONDS: Final = 10.0
WATCH_READ_GRACE_SECONDS: Final = 30.0  # past the watch's timeoutSeconds
# the Accept header of a metadata-only watch (and its objects' kind)
PARTIAL_METADATA: Final = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class ResourceAPI:
    """List and watch one cluster-scoped resource type. `api` and `path` (the collection's
    URL), when given, serve GETs and metadata-only watches (whose Accept header differs)."""

    def __init__(
        self,
        *,
        kind: str,
        api_version: str,
        list_call: ListCall,
        api: client.ApiClient | None = None,
        path: str | None = None,
    ) -> None:
        self.kind = kind
        self.api_version = api_version
        self._list_call = list_call
        self._api = api
        self._path = path

    @classmethod
    def nodes(cls, api: client.ApiClient) -> ResourceAPI:
        return cls(
            kind="Node",
            api_version="v1",
            list_call=client.CoreV1Api(api).list_node,
            api=api,
            path="/api/v1/nodes",
        )

    @classmethod
    def nodeenis(cls, api: client.ApiClient) -> ResourceAPI:
        return cls._custom(api, kind=model.KIND, plural=model.PLURAL)

    @classmethod
    def eninodes(cls, api: client.ApiClient) -> ResourceAPI:
        return cls._custom(api, kind=eninode.KIND, plural=eninode.PLURAL)

    @classmethod
    def _custom(cls, api: client.ApiClient, *, kind: str, plural: str) -> ResourceAPI:
        """A cluster-scoped custom resource of our group and version."""
        custom = client.CustomObjectsApi(api)

        def list_call(**kwargs: Any) -> Awaitable[Any]:
            return custom.list_cluster_custom_object(model.GROUP, model.VERSION, plural, **kwargs)

        return cls(kind=kind, api_version=f"{model.GROUP}/{model.VERSION}", list_call=list_call)

    async def list(
        self,
        *,
        limit: int = 500,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object, and the list's resourceVersion to watch from. Items get the
        kind/apiVersion the server leaves out of built-in types; ``transform`` runs as
        each page arrives, so only one page of whole objects is ever held."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page: dict[str, Any] = {"_continue": token} if token else {}
            body = await _read_json(await self._open(limit=limit, **page))
            for item in body.get("items") or ():
                item.setdefault("kind", self.kind)
                item.setdefault("apiVersion", self.api_version)
                items.append(item if transform is None else transform(item))
            metadata = body.get("metadata") or {}
            del body  # the page's whole objects, gone before the next page is read
            token = metadata.get("continue") or ""
            if not token:
                return items, str(metadata.get("resourceVersion", ""))

    async def watch(
        self, *, resource_version: str, timeout_seconds: int, metadata_only: bool = False
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Watch events ``{"type", "object"}`` with bookmarks, until the server ends the
        watch; closing the generator closes the connection. An HTTP error raises
        ``ApiException`` (a 410 usually arrives as an ``ERROR`` event instead)."""
        timeout = (CONNECT_TIMEOUT_SECONDS, timeout_seconds + WATCH_READ_GRACE_SECONDS)
        if metadata_only:
            query = [
                ("watch", "true"),
                ("allowWatchBookmarks", "true"),
                ("resourceVersion", resource_version),
                ("timeoutSeconds", str(timeout_seconds)),
            ]
            response = await self._raw(
                self._collection(), query=query, accept=PARTIAL_METADATA, request_timeout=timeout
            )
        else:
            response = await self._open(
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                request_timeout=timeout,
            )
        try:
            pending = b""
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
            if pending.strip():
                yield orjson.loads(pending)
        finally:
            response.close()

    async def get(self, name: str) -> dict[str, Any] | None:
        """One whole object, or None when the server has none of that name."""
        try:
            response = await self._raw(f"{self._collection()}/{name}", query=[], accept=None)
        except ApiException as err:
            if err.status == HTTPStatus.NOT_FOUND:
                return None
            raise
        return await _read_json(response)

    def _collection(self) -> str:
        if self._api is None or self._path is None:
            raise NotImplementedError(f"{self.kind}: no URL path to GET or watch metadata from")
        return self._path

    async def _raw(
        self,
        path: str,
        *,
        query: Sequence[tuple[str, str]],
        accept: str | None,
        request_timeout: tuple[float, float] | None = None,
    ) -> ClientResponse:
        """A GET through the client's own request path, with the Accept header given."""
        assert self._api is not None  # _collection() checked it
        response = await self._api.call_api(
            path,
            "GET",
            query_params=list(query),
            header_params={"Accept": accept or "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,  # the aiohttp response itself, unread
            # (connect, read): the REST client reads a pair so (its stub says not)
            _request_timeout=cast(Any, request_timeout),
        )
        return await checked(response)

    async def _open(
        self, *, request_timeout: tuple[float, float] | None = None, **kwargs: Any
    ) -> ClientResponse:
        """`request_timeout`: (connect, read) seconds, or None for the client's default."""
        response = await self._list_call(
            **kwargs, _preload_content=False, _request_timeout=request_timeout
        )
        return await checked(response)


async def _read_json(response: ClientResponse) -> dict[str, Any]:
    try:
        body: dict[str, Any] = json.loads(await response.read())
    finally:
        response.close()
    return body


async def checked(response: ClientResponse) -> ClientResponse:
    """The unread response of a `_preload_content=False` call, if its status is a
    success; else ApiException (body read)."""
    if 200 <= response.status < 300:
        return response
    try:
        body = await response.read()
    finally:
        response.close()
    error = ApiException(status=response.status, reason=response.reason)
    error.body = body
    error.headers = response.headers
    raise error

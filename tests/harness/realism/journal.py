"""A per-call journal of mutating EC2 requests: who asked what of which ENI, when.

The counters say how many calls of each action arrived; a test about several
controller processes (a leader failover, kill -9 and restart) also needs to
know *who* made each call and *which ENI* it touched, to show that no ENI was
detached or deleted by two processes and that a new leader's first call came
after the old one's last. The caller is the request's access key id (each
controller process of such a test gets its own fake key; moto maps every key
to the same account). `DetachNetworkInterface` names an attachment, not an
ENI: the journal resolves it through the attachments its own
`AttachNetworkInterface` answers handed out (None for an attachment made
before the last reset).

A `CreateNetworkInterface` also keeps the tags that name its slot (the
NodeENI uid, the Node and the instance tag), so the life of every ENI can be
read from the journal alone (`invariants.overlapping`): it begins when its
create arrived and ends when a delete of it was answered.

Only mutating actions (not `Describe*`) are kept, refused ones included, with
the time of arrival and the time the answer was known (`answered`: EC2 had
acted; an answer held by `answer_latency` or a timeout reaches the client
later) on this machine's monotonic clock (`time.monotonic()` in the test
process reads the same clock). Cleared by `/_realism/reset`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_ENI_ID = re.compile(rb"<networkInterfaceId>([^<]+)</networkInterfaceId>")
_ATTACHMENT_ID = re.compile(rb"<attachmentId>([^<]+)</attachmentId>")
_TAG_KEY = re.compile(r"TagSpecification\.(\d+)\.Tag\.(\d+)\.Key")
# The tags of a created ENI that name its slot (eni_controller.reconcile.tags'
# NODE_KEY, NODEENI_UID_KEY, INSTANCE_KEY; not imported: the server is no client)
NODE_TAG = "Node"
UID_TAG = "NodeENIUID"
INSTANCE_TAG = "InstanceID"


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    seq: int
    at: float  # arrival, time.monotonic() of the server process
    answered: float  # when the answer was known (EC2 had acted), same clock
    action: str
    caller: str  # the access key id the request was signed with
    eni_id: str | None  # the ENI the call is about (a create's: the one it returned)
    attachment_id: str | None = None
    subnet_id: str | None = None  # CreateNetworkInterface
    node: str | None = None  # CreateNetworkInterface: its Node tag
    nodeeni_uid: str | None = None  # CreateNetworkInterface: its NodeENIUID tag
    instance_tag: str | None = None  # CreateNetworkInterface: its InstanceID tag
    client_token: str | None = None
    instance_id: str | None = None  # AttachNetworkInterface
    device_index: int | None = None
    error: str | None = None  # the AWS error code of a refused or failed call


def is_mutating(action: str) -> bool:
    return not action.startswith("Describe")


def caller_of(authorization: str) -> str:
    """The access key id of a SigV4 `Authorization` header ("" if unsigned)."""
    found = _ACCESS_KEY.search(authorization)
    return found.group(1) if found else ""


def _first(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _tags(params: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The tags of a create's TagSpecifications, key -> value."""
    tags: dict[str, str] = {}
    for name, values in params.items():
        found = _TAG_KEY.fullmatch(name)
        if found and values:
            spec, tag = found.groups()
            value = _first(params, f"TagSpecification.{spec}.Tag.{tag}.Value")
            if value is not None:
                tags[values[0]] = value
    return tags


class CallJournal:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._entries: list[Entry] = []
        self._attachments: dict[str, str] = {}  # attachment id -> ENI id

    def arrived(self) -> float:
        return self._clock()

    def record(
        self,
        *,
        at: float,
        action: str,
        authorization: str,
        params: Mapping[str, Sequence[str]],
        payload: bytes,
        error: str | None,
    ) -> None:
        """Journal one mutating call (others are ignored) once its answer is known."""
        if not is_mutating(action):
            return
        answered = self._clock()
        eni_id = _first(params, "NetworkInterfaceId")
        attachment_id = _first(params, "AttachmentId") or _first(params, "Attachment.AttachmentId")
        if action == "CreateNetworkInterface" and error is None:
            found = _ENI_ID.search(payload)
            eni_id = found.group(1).decode() if found else None
        if action == "AttachNetworkInterface" and error is None:
            found = _ATTACHMENT_ID.search(payload)
            attachment_id = found.group(1).decode() if found else None
        index = _first(params, "DeviceIndex")
        tags = _tags(params) if action == "CreateNetworkInterface" else {}
        with self._lock:
            if action == "AttachNetworkInterface" and attachment_id and eni_id:
                self._attachments[attachment_id] = eni_id
            if eni_id is None and attachment_id is not None:
                eni_id = self._attachments.get(attachment_id)
            self._entries.append(
                Entry(
                    seq=len(self._entries),
                    at=at,
                    answered=answered,
                    action=action,
                    caller=caller_of(authorization),
                    eni_id=eni_id,
                    attachment_id=attachment_id,
                    subnet_id=_first(params, "SubnetId"),
                    node=tags.get(NODE_TAG),
                    nodeeni_uid=tags.get(UID_TAG),
                    instance_tag=tags.get(INSTANCE_TAG),
                    client_token=_first(params, "ClientToken"),
                    instance_id=_first(params, "InstanceId"),
                    device_index=int(index) if index is not None and index.isdigit() else None,
                    error=error,
                )
            )

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._attachments.clear()

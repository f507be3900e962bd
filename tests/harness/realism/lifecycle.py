"""Time in EC2's ENI lifecycle: attach/detach latency and eventual consistency.

moto does everything at once. EC2 does not: an attachment reads `attaching`
for a while, a detach leaves the ENI `in-use`/`detaching` until it completes,
and a brand-new ENI can answer NotFound. Accepted transitions are recorded in
the ledger with a due time and settled lazily at the start of every request
(the middleware calls `settle`), so no background thread touches moto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import LastEniDetachError
from moto.ec2.models.elastic_network_interfaces import (
    NetworkInterface,
    NetworkInterfaceBackend,
)
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces

from tests.harness.realism.errors import InvalidNetworkInterfaceIdError
from tests.harness.realism.patching import wrap
from tests.harness.realism.state import RealismState, Transition

Handler = Callable[[Any], ActionResult]


def install(state: RealismState) -> None:
    wrap(ElasticNetworkInterfaces, "create_network_interface", lambda h: _create(state, h))
    wrap(ElasticNetworkInterfaces, "attach_network_interface", lambda h: _attach(state, h))
    wrap(ElasticNetworkInterfaces, "detach_network_interface", lambda h: _detach(state, h))
    wrap(NetworkInterface, "attachment", lambda p: _attachment(state, p))
    wrap(NetworkInterfaceBackend, "get_network_interface", lambda f: _get_one(state, f))
    wrap(NetworkInterfaceBackend, "get_all_network_interfaces", lambda f: _get_all(state, f))
    wrap(NetworkInterfaceBackend, "delete_network_interface", lambda f: _delete(state, f))
    state.before_request_hooks.append(lambda: settle(state, force=False))
    state.flush_hooks.append(lambda: settle(state, force=True))


def settle(state: RealismState, *, force: bool) -> None:
    """Finish every transition that is due (all of them when `force`)."""
    with state.lock:
        now = state.clock()
        ledger = state.ledger
        window = state.switches.consistency_window
        for eni_id, born in list(ledger.born.items()):
            if force or now - born >= window:
                del ledger.born[eni_id]  # visible for good
        for eni_id, pending in list(ledger.attaching.items()):
            if force or now >= pending.due or not _still(pending):
                del ledger.attaching[eni_id]
        for eni_id, pending in list(ledger.detaching.items()):
            if force or now >= pending.due or not _still(pending):
                del ledger.detaching[eni_id]
                if _still(pending):
                    pending.eni.instance.detach_eni(pending.eni)


def _still(pending: Transition) -> bool:
    """The ENI still carries the attachment the transition is about."""
    eni = pending.eni
    return eni.instance is not None and eni.attachment_id == pending.attachment_id


def _attachment(state: RealismState, prop: property) -> property:
    def attachment(eni: Any) -> Any:
        current = prop.fget(eni) if prop.fget else None
        if current is None:
            return None
        with state.lock:
            detaching = state.ledger.detaching.get(eni.id)
            attaching = state.ledger.attaching.get(eni.id)
            if detaching is not None and detaching.attachment_id == current.attachment_id:
                current.status = "detaching"
            elif (
                attaching is not None
                and attaching.attachment_id == current.attachment_id
                and state.clock() < attaching.due
            ):
                current.status = "attaching"
        return current

    return property(attachment)


def _create(state: RealismState, handler: Handler) -> Handler:
    def create_network_interface(self: Any) -> ActionResult:
        with state.lock:
            known = len(self.ec2_backend.enis)
            result = handler(self)
            body = result.result
            if len(self.ec2_backend.enis) > known:  # not a ClientToken replay
                state.created["NetworkInterface"] += 1
            if state.switches.consistency_window > 0 and isinstance(body, dict):
                # setdefault: a ClientToken replay must not restart the window
                state.ledger.born.setdefault(body["NetworkInterface"].id, state.clock())
            return result

    return create_network_interface


def _attach(state: RealismState, handler: Handler) -> Handler:
    def attach_network_interface(self: Any) -> ActionResult:
        with state.lock:
            result = handler(self)
            latency = state.switches.attach_latency
            if latency > 0:
                eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
                state.ledger.detaching.pop(eni.id, None)
                state.ledger.attaching[eni.id] = Transition(
                    eni=eni, attachment_id=eni.attachment_id, due=state.clock() + latency
                )
            return result

    return attach_network_interface


def _detach(state: RealismState, handler: Handler) -> Handler:
    def detach_network_interface(self: Any) -> ActionResult:
        with state.lock:
            attachment_id = self._get_param("AttachmentId")
            eni = _by_attachment(self.ec2_backend, attachment_id)
            if eni is not None and eni.id in state.ledger.detaching:
                self.error_on_dryrun()
                return EmptyResult()  # EC2 accepts a repeated detach while detaching
            latency = state.switches.detach_latency
            if eni is None or latency <= 0:
                return handler(self)
            if eni.instance is not None and len(eni.instance.nics) == 1:
                raise LastEniDetachError()
            self.error_on_dryrun()
            state.ledger.attaching.pop(eni.id, None)
            state.ledger.detaching[eni.id] = Transition(
                eni=eni, attachment_id=attachment_id, due=state.clock() + latency
            )
            return EmptyResult()

    return detach_network_interface


def _by_attachment(backend: Any, attachment_id: str | None) -> Any:
    if attachment_id is None:
        return None
    return next((e for e in backend.enis.values() if e.attachment_id == attachment_id), None)


def _get_one(state: RealismState, get: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def get_network_interface(backend: Any, eni_id: str) -> Any:
        if state.is_hidden(eni_id):
            raise InvalidNetworkInterfaceIdError(eni_id)
        return get(backend, eni_id)

    return get_network_interface


def _get_all(state: RealismState, get_all: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    def get_all_network_interfaces(
        backend: Any, eni_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        enis = get_all(backend, eni_ids, filters)
        with state.lock:
            if not state.ledger.born:
                return enis
            for eni_id in eni_ids or []:
                if state.is_hidden(eni_id):
                    raise InvalidNetworkInterfaceIdError(eni_id)
            return [eni for eni in enis if not state.is_hidden(eni.id)]

    return get_all_network_interfaces


def _delete(state: RealismState, delete: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    def delete_network_interface(backend: Any, eni_id: str) -> None:
        if state.is_hidden(eni_id):
            raise InvalidNetworkInterfaceIdError(eni_id)
        delete(backend, eni_id)

    return delete_network_interface

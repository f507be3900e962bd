"""AWS validation rules moto skips, as checks in front of moto's ENI handlers.

Each rule is what EC2 answers and moto does not: an occupied device index, an
attached ENI deleted or attached again, the instance type's ENI limit, an AZ
mismatch, a terminated instance, an unknown security group, ClientToken
idempotency, and DeleteOnTermination on the attachment. The checks sit on the
API handlers (moto's `ElasticNetworkInterfaces` response methods), not on the
backend, so moto's own internal calls (e.g. terminate deleting ENIs) are not
refused. A check raises moto's `EC2ClientError`, which moto renders as EC2 XML.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.models.instances import Instance
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces

from tests.harness.realism.errors import (
    AttachmentLimitExceeded,
    DeviceIndexInUse,
    IdempotentParameterMismatch,
    IncorrectInstanceState,
    InvalidNetworkAttachmentIdError,
    InvalidSecurityGroupNotFoundError,
    NetworkInterfaceInUse,
    SubnetAZMismatch,
)
from tests.harness.realism.patching import wrap
from tests.harness.realism.state import RealismState

Handler = Callable[[Any], ActionResult]

# EC2 attaches ENIs to running and stopped instances only.
ATTACHABLE_STATES = frozenset({"running", "stopped"})
# Request parameters that do not make two CreateNetworkInterface calls differ.
_NOT_IDEMPOTENCY_PARAMS = frozenset({"ClientToken", "DryRun"})


def install(state: RealismState) -> None:
    wrap(ElasticNetworkInterfaces, "attach_network_interface", lambda h: _attach(state, h))
    wrap(ElasticNetworkInterfaces, "delete_network_interface", lambda h: _delete(state, h))
    wrap(ElasticNetworkInterfaces, "create_network_interface", lambda h: _create(state, h))
    wrap(
        ElasticNetworkInterfaces,
        "modify_network_interface_attribute",
        lambda h: _modify(state, h),
    )
    wrap(Instance, "terminate", lambda f: _terminate(state, f))
    wrap(Instance, "detach_eni", lambda f: _detach_eni(state, f))


def max_network_interfaces(instance_type: str) -> int | None:
    """MaximumNetworkInterfaces of an instance type, from moto's EC2 catalogue."""
    info = INSTANCE_TYPES.get(instance_type, {}).get("NetworkInfo", {})
    limit = info.get("MaximumNetworkInterfaces")
    return int(limit) if limit is not None else None


def _attach(state: RealismState, handler: Handler) -> Handler:
    def attach_network_interface(self: Any) -> ActionResult:
        with state.lock:
            _check_attach(state.switches, self)
            return handler(self)

    return attach_network_interface


_ATTACH_RULES = (
    "in_use_attach",
    "instance_state_check",
    "az_check",
    "device_index_conflicts",
    "eni_limits",
)


def _check_attach(switches: Any, response: Any) -> None:
    if not any(getattr(switches, rule) for rule in _ATTACH_RULES):
        return
    backend = response.ec2_backend
    eni = backend.get_network_interface(response._get_param("NetworkInterfaceId"))
    instance = backend.get_instance(response._get_param("InstanceId"))
    device_index = int(response._get_param("DeviceIndex"))
    if switches.in_use_attach and eni.instance is not None:
        raise NetworkInterfaceInUse(eni.id)
    if switches.instance_state_check and instance.state not in ATTACHABLE_STATES:
        raise IncorrectInstanceState(instance.id, instance.state)
    if switches.az_check and eni.availability_zone != instance.availability_zone:
        raise SubnetAZMismatch()
    if switches.device_index_conflicts and device_index in instance.nics:
        raise DeviceIndexInUse(instance.id, device_index)
    if switches.eni_limits:
        limit = max_network_interfaces(instance.instance_type)
        wanted = len(instance.nics) + 1
        if limit is not None and wanted > limit:
            raise AttachmentLimitExceeded(wanted, instance.instance_type)


def _delete(state: RealismState, handler: Handler) -> Handler:
    def delete_network_interface(self: Any) -> ActionResult:
        with state.lock:
            if state.switches.in_use_delete:
                eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
                if eni.instance is not None:  # attached, attaching or detaching
                    raise NetworkInterfaceInUse(eni.id)
            return handler(self)

    return delete_network_interface


def _create(state: RealismState, handler: Handler) -> Handler:
    def create_network_interface(self: Any) -> ActionResult:
        with state.lock:
            switches = state.switches
            if switches.security_group_check:
                _check_groups(self.ec2_backend, self._get_param("Groups", []))
            token = self._get_param("ClientToken") if switches.client_token else None
            if not token:
                return handler(self)
            fingerprint = _fingerprint(self.params)
            seen = state.ledger.client_tokens.get(token)
            if seen is not None:
                if seen[0] != fingerprint:
                    raise IdempotentParameterMismatch(token)
                self.error_on_dryrun()
                return ActionResult({"NetworkInterface": seen[1], "ClientToken": token})
            result = handler(self)
            eni = _created_eni(result)
            state.ledger.client_tokens[token] = (fingerprint, eni)
            return ActionResult({"NetworkInterface": eni, "ClientToken": token})

    return create_network_interface


def _created_eni(result: ActionResult) -> Any:
    body = result.result
    assert isinstance(body, dict), body
    return body["NetworkInterface"]


def _fingerprint(params: Any) -> str:
    relevant = {k: v for k, v in dict(params).items() if k not in _NOT_IDEMPOTENCY_PARAMS}
    return json.dumps(relevant, sort_keys=True, default=str)


def _check_groups(backend: Any, group_ids: list[str]) -> None:
    for group_id in group_ids:
        if backend.get_security_group_from_id(group_id) is None:
            raise InvalidSecurityGroupNotFoundError(group_id)


def _modify(state: RealismState, handler: Handler) -> Handler:
    def modify_network_interface_attribute(self: Any) -> ActionResult:
        with state.lock:
            if state.switches.security_group_check:
                _check_groups(self.ec2_backend, self._get_param("Groups", []))
            if state.switches.delete_on_termination:
                _set_delete_on_termination(self)
            return handler(self)

    return modify_network_interface_attribute


def _set_delete_on_termination(response: Any) -> None:
    """Honour Attachment.AttachmentId + Attachment.DeleteOnTermination (moto drops them)."""
    attachment_id = response._get_param("Attachment.AttachmentId")
    value = response._get_param("Attachment.DeleteOnTermination")
    if attachment_id is None and value is None:
        return
    eni = response.ec2_backend.get_network_interface(response._get_param("NetworkInterfaceId"))
    if attachment_id is None or eni.attachment_id != attachment_id:
        raise InvalidNetworkAttachmentIdError(attachment_id)
    response.error_on_dryrun()
    if value is not None:
        eni.delete_on_termination = value in (True, "true", "True")


def _terminate(state: RealismState, terminate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def patched_terminate(instance: Any) -> Any:
        with state.lock:
            if state.switches.delete_on_termination:
                _release_enis(state, instance)
            return terminate(instance)

    return patched_terminate


def _release_enis(state: RealismState, instance: Any) -> None:
    """What EC2 does to an instance's ENIs on termination.

    Secondary ENIs: deleted if their attachment says DeleteOnTermination, else
    detached and `available`. The primary ENI (index 0) is deleted, as for a
    primary created at launch; moto keeps it in the instance's list because
    its DescribeInstances needs one.
    """
    for index, eni in sorted(instance.nics.items()):
        state.ledger.attaching.pop(eni.id, None)
        state.ledger.detaching.pop(eni.id, None)
        if index == 0:
            eni.delete()
            eni.delete_on_termination = False  # moto's terminate must not delete it again
            continue
        delete = bool(eni.delete_on_termination)
        instance.detach_eni(eni)
        if delete:
            eni.delete()


def _detach_eni(
    state: RealismState, detach_eni: Callable[[Any, Any], None]
) -> Callable[[Any, Any], None]:
    def patched_detach_eni(instance: Any, eni: Any) -> None:
        with state.lock:
            detach_eni(instance, eni)
            if state.switches.delete_on_termination:
                # An attribute of the attachment: a new attachment starts at false.
                eni.delete_on_termination = False

    return patched_detach_eni

"""The AWS errors the realism rules raise, and EC2 error XML for the middleware.

Rule violations are raised inside moto as moto's own `EC2ClientError`s, so moto
renders them exactly like its native errors (HTTP 400, EC2 `<Response><Errors>`
XML, the code botocore reports). Throttling and injected 5xx are answered by
the middleware before moto runs, so they are rendered here in the same shape.
Codes and messages follow what EC2 answers.
"""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidNetworkAttachmentIdError,
    InvalidNetworkInterfaceIdError,
    InvalidSecurityGroupNotFoundError,
)

__all__ = [
    "AttachmentLimitExceeded",
    "DeviceIndexInUse",
    "IdempotentParameterMismatch",
    "IncorrectInstanceState",
    "InvalidMaxResults",
    "InvalidNetworkAttachmentIdError",
    "InvalidNetworkInterfaceIdError",
    "InvalidPaginationToken",
    "InvalidSecurityGroupNotFoundError",
    "NetworkInterfaceInUse",
    "SubnetAZMismatch",
    "ec2_error_xml",
]


class DeviceIndexInUse(EC2ClientError):
    def __init__(self, instance_id: str, device_index: int) -> None:
        super().__init__(
            "InvalidParameterValue",
            f"Instance '{instance_id}' already has an interface attached at device index "
            f"'{device_index}'.",
        )


class NetworkInterfaceInUse(EC2ClientError):
    def __init__(self, eni_id: str) -> None:
        super().__init__("InvalidNetworkInterface.InUse", f"Interface: [{eni_id}] in use.")


class AttachmentLimitExceeded(EC2ClientError):
    def __init__(self, count: int, instance_type: str) -> None:
        super().__init__(
            "AttachmentLimitExceeded",
            f"Interface count {count} exceeds the limit for {instance_type}",
        )


class SubnetAZMismatch(EC2ClientError):
    def __init__(self) -> None:
        super().__init__(
            "InvalidParameterCombination",
            "You may not attach a network interface to an instance if they are not in "
            "the same availability zone",
        )


class IncorrectInstanceState(EC2ClientError):
    def __init__(self, instance_id: str, state: str) -> None:
        super().__init__(
            "IncorrectInstanceState",
            f"The instance '{instance_id}' is not in a valid state for this operation "
            f"(state: {state}).",
        )


class IdempotentParameterMismatch(EC2ClientError):
    def __init__(self, token: str) -> None:
        super().__init__(
            "IdempotentParameterMismatch",
            f"The client token '{token}' was already used with different parameters.",
        )


class InvalidMaxResults(EC2ClientError):
    def __init__(self, value: int, low: int, high: int) -> None:
        super().__init__(
            "InvalidParameterValue",
            f"Value ( {value} ) for parameter maxResults is invalid. "
            f"Expecting a value between {low} and {high}.",
        )


class InvalidPaginationToken(EC2ClientError):
    def __init__(self, token: str) -> None:
        super().__init__("InvalidParameterValue", f"The token '{token}' is invalid.")


def ec2_error_xml(code: str, message: str) -> bytes:
    """An EC2 (query protocol) error document, as botocore parses it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()

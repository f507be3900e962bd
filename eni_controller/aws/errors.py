"""EC2 failures as a small set of exception classes, chosen by AWS error code.

The controller decides what to do from the class, so the mapping lives in one
table here. Message text is never read to decide anything: AWS changes
wording, never codes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError


class EC2Error(Exception):
    """An EC2 call failed. ``code`` is the AWS error code (or a local marker)."""

    def __init__(self, *, action: str, code: str, message: str = "") -> None:
        super().__init__(f"{action}: {code}" + (f": {message}" if message else ""))
        self.action = action
        self.code = code
        self.message = message


class NotFound(EC2Error):
    """The resource does not exist (or is not visible yet: EC2 is eventually consistent)."""


class ENINotFound(NotFound): ...


class AttachmentNotFound(NotFound): ...


class InUse(EC2Error):
    """The ENI is attached (or detaching) and cannot be deleted yet."""


class IndexConflict(EC2Error):
    """Refused device indexes kept showing as taken on the instance (worth retrying)."""


class LimitExceeded(EC2Error):
    """An instance-type or account limit: permanent for that instance, never retried."""


class AZMismatch(EC2Error):
    """The ENI's subnet is not in the instance's availability zone."""


class IncorrectState(EC2Error):
    """The instance or ENI is in a state that forbids the call (e.g. terminated)."""


class Throttled(EC2Error):
    """AWS refused the request for rate; it was not executed."""


class Transient(EC2Error):
    """A 5xx or a network failure: worth retrying."""


class OutcomeUnknown(Transient):
    """A non-idempotent request may have been executed: describe before acting again."""


class Permanent(EC2Error):
    """A client error that retrying cannot fix (bad parameter, permissions...)."""


class Unauthorized(Permanent):
    """The credentials are valid but not allowed to perform the action."""


class CredentialsRejected(Permanent):
    """AWS did not accept the credentials at all (unknown key, bad signature, expired)."""


class IdempotencyMismatch(Permanent):
    """A ClientToken was sent again with other parameters: that token is spent."""


class MaybeIndexConflict(Permanent):
    """InvalidParameterValue from an attach: an occupied device index, or another bad
    parameter; only a describe of the instance tells which."""


class DryRunPassed(Permanent):
    """A DryRun request that would have succeeded: the permission is there."""


class CircuitOpen(EC2Error):
    """The circuit breaker is open: EC2 has been failing, so the call was not made."""


_BY_CODE: Final[dict[str, type[EC2Error]]] = {
    "InvalidNetworkInterfaceID.NotFound": ENINotFound,
    "InvalidNetworkInterfaceId.NotFound": ENINotFound,
    "InvalidAttachmentID.NotFound": AttachmentNotFound,
    "InvalidInstanceID.NotFound": NotFound,
    "InvalidSubnetID.NotFound": NotFound,
    "InvalidGroup.NotFound": NotFound,
    "InvalidGroupId.NotFound": NotFound,
    "InvalidNetworkInterface.InUse": InUse,
    "AttachmentLimitExceeded": LimitExceeded,
    "NetworkInterfaceLimitExceeded": LimitExceeded,
    "InsufficientFreeAddressesInSubnet": LimitExceeded,
    "IncorrectInstanceState": IncorrectState,
    "IncorrectState": IncorrectState,
    "RequestLimitExceeded": Throttled,
    "Throttling": Throttled,
    "ThrottlingException": Throttled,
    "UnauthorizedOperation": Unauthorized,
    "AccessDenied": Unauthorized,
    "AccessDeniedException": Unauthorized,
    "AuthFailure": CredentialsRejected,
    "InvalidClientTokenId": CredentialsRejected,
    "SignatureDoesNotMatch": CredentialsRejected,
    "ExpiredToken": CredentialsRejected,
    "RequestExpired": CredentialsRejected,
    "DryRunOperation": DryRunPassed,
    "IdempotentParameterMismatch": IdempotencyMismatch,
    "InternalError": Transient,
    "InternalFailure": Transient,
    "ServiceUnavailable": Transient,
    "Unavailable": Transient,
}

# Generic codes whose meaning depends on the action.
_BY_ACTION_AND_CODE: Final[dict[tuple[str, str], type[EC2Error]]] = {
    ("AttachNetworkInterface", "InvalidParameterValue"): MaybeIndexConflict,
    ("AttachNetworkInterface", "InvalidParameterCombination"): AZMismatch,
}


def classify_client_error(error: ClientError, *, action: str) -> EC2Error:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    cls = _BY_ACTION_AND_CODE.get((action, code)) or _BY_CODE.get(code)
    if cls is None:
        cls = Transient if status >= 500 else Permanent
    return cls(action=action, code=code, message=message)


def classify(error: BaseException, *, action: str, idempotent: bool) -> EC2Error | None:
    """The EC2Error for a failure of one call, or None if it is not an EC2 failure."""
    if isinstance(error, EC2Error):
        return error
    if isinstance(error, ClientError):
        return classify_client_error(error, action=action)
    if isinstance(error, ConnectionError):  # the request never left: retrying is safe
        cls: type[EC2Error] = Transient
    elif isinstance(error, HTTPClientError | asyncio.TimeoutError | OSError):  # AWS may have acted
        cls = Transient if idempotent else OutcomeUnknown
    elif isinstance(error, BotoCoreError):  # no credentials, bad parameters: no retry fixes it
        cls = Permanent
    else:
        return None
    return cls(action=action, code=type(error).__name__, message=str(error))


# Condition reasons of the classes that name a cause an operator acts on.
_REASONS: Final[dict[type[EC2Error], str]] = {
    Unauthorized: "Unauthorized",
    CredentialsRejected: "CredentialsRejected",
    IdempotencyMismatch: "IdempotencyMismatch",
    Throttled: "Throttled",
    CircuitOpen: "CircuitOpen",
    OutcomeUnknown: "OutcomeUnknown",
    LimitExceeded: "AttachmentLimitExceeded",
    AZMismatch: "AZMismatch",
}


def reason_for(error: EC2Error) -> str:
    """A condition reason for `error`: from its class, else its code's letters and digits."""
    for cls in type(error).__mro__:
        if cls in _REASONS:
            return _REASONS[cls]
    reason = "".join(c for c in error.code if c.isascii() and c.isalnum())
    return reason if reason[:1].isalpha() else f"EC2{reason}"


SHORT_TEXT_MAX_LENGTH: Final = 200  # characters of AWS's message an Event or condition keeps
# the opaque blob only sts:DecodeAuthorizationMessage reads (kept in the logs)
_ENCODED_AUTHORIZATION = re.compile(r"\s*Encoded authorization failure message:.*", re.I | re.S)


def short_text(error: EC2Error, *, limit: int = SHORT_TEXT_MAX_LENGTH) -> str:
    """ "<action>: <code>: <message>" for Events and conditions: the message on one
    line, cut at `limit`, an authorization failure's encoded blob cut out."""
    message = error.message
    if isinstance(error, Unauthorized):
        message = _ENCODED_AUTHORIZATION.sub("", message)
    message = " ".join(message.split())
    if len(message) > limit:
        message = message[: limit - 3].rstrip() + "..."
    return f"{error.action}: {error.code}" + (f": {message}" if message else "")

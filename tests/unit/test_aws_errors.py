"""Unit tests for eni_controller.aws.errors: AWS error code -> exception class."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from eni_controller.aws import errors
from eni_controller.aws.errors import (
    AttachmentNotFound,
    AZMismatch,
    CredentialsRejected,
    DryRunPassed,
    EC2Error,
    ENINotFound,
    IncorrectState,
    InUse,
    LimitExceeded,
    MaybeIndexConflict,
    NotFound,
    OutcomeUnknown,
    Permanent,
    Throttled,
    Transient,
    Unauthorized,
    classify,
    classify_client_error,
)
from tests.harness.ec2_errors import ENDPOINT, client_error

# Written out by hand: an edit of the table in errors.py must show up here too.
EXPECTED_BY_CODE: list[tuple[str, type[EC2Error]]] = [
    ("InvalidNetworkInterfaceID.NotFound", ENINotFound),
    ("InvalidNetworkInterfaceId.NotFound", ENINotFound),
    ("InvalidAttachmentID.NotFound", AttachmentNotFound),
    ("InvalidInstanceID.NotFound", NotFound),
    ("InvalidSubnetID.NotFound", NotFound),
    ("InvalidGroup.NotFound", NotFound),
    ("InvalidGroupId.NotFound", NotFound),
    ("InvalidNetworkInterface.InUse", InUse),
    ("AttachmentLimitExceeded", LimitExceeded),
    ("NetworkInterfaceLimitExceeded", LimitExceeded),
    ("InsufficientFreeAddressesInSubnet", LimitExceeded),
    ("IncorrectInstanceState", IncorrectState),
    ("IncorrectState", IncorrectState),
    ("RequestLimitExceeded", Throttled),
    ("Throttling", Throttled),
    ("ThrottlingException", Throttled),
    ("UnauthorizedOperation", Unauthorized),
    ("AccessDenied", Unauthorized),
    ("AccessDeniedException", Unauthorized),
    ("AuthFailure", CredentialsRejected),
    ("InvalidClientTokenId", CredentialsRejected),
    ("SignatureDoesNotMatch", CredentialsRejected),
    ("ExpiredToken", CredentialsRejected),
    ("RequestExpired", CredentialsRejected),
    ("DryRunOperation", DryRunPassed),
    ("IdempotentParameterMismatch", errors.IdempotencyMismatch),
    ("InternalError", Transient),
    ("InternalFailure", Transient),
    ("ServiceUnavailable", Transient),
    ("Unavailable", Transient),
]

ACTIONS = [
    "CreateNetworkInterface",
    "AttachNetworkInterface",
    "DetachNetworkInterface",
    "DescribeNetworkInterfaces",
]


def test_expected_list_matches_the_table_exactly() -> None:
    assert dict(EXPECTED_BY_CODE) == dict(errors._BY_CODE)
    assert len(EXPECTED_BY_CODE) == len(errors._BY_CODE)


@pytest.mark.parametrize(("code", "cls"), sorted(errors._BY_CODE.items()))
@pytest.mark.parametrize("action", ACTIONS)
def test_every_table_code_maps_to_its_class(code: str, cls: type[EC2Error], action: str) -> None:
    error = classify_client_error(client_error(code), action=action)
    assert type(error) is cls
    assert error.code == code
    assert error.action == action


@pytest.mark.parametrize(("code", "cls"), EXPECTED_BY_CODE)
@pytest.mark.parametrize("status", [400, 500, 503])
def test_expected_code_maps_to_class_whatever_the_status(
    code: str, cls: type[EC2Error], status: int
) -> None:
    error = classify(
        client_error(code, status=status), action="CreateNetworkInterface", idempotent=True
    )
    assert type(error) is cls


def test_not_found_classes_share_a_base() -> None:
    for cls in (ENINotFound, AttachmentNotFound):
        assert issubclass(cls, NotFound)
    assert issubclass(OutcomeUnknown, Transient)
    assert not issubclass(Throttled, Transient)


@pytest.mark.parametrize(
    ("code", "cls"),
    [("InvalidParameterValue", MaybeIndexConflict), ("InvalidParameterCombination", AZMismatch)],
)
def test_action_dependent_codes_on_attach(code: str, cls: type[EC2Error]) -> None:
    error = classify_client_error(client_error(code), action="AttachNetworkInterface")
    assert type(error) is cls
    assert error.code == code
    assert error.action == "AttachNetworkInterface"


@pytest.mark.parametrize("code", ["InvalidParameterValue", "InvalidParameterCombination"])
@pytest.mark.parametrize(
    "action",
    [
        "CreateNetworkInterface",
        "DetachNetworkInterface",
        "ModifyNetworkInterfaceAttribute",
        "DescribeNetworkInterfaces",
    ],
)
def test_action_dependent_codes_on_other_actions_are_permanent(code: str, action: str) -> None:
    error = classify_client_error(client_error(code), action=action)
    assert type(error) is Permanent
    assert error.code == code


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_unknown_code_with_5xx_is_transient(status: int) -> None:
    error = classify_client_error(
        client_error("SomethingNew", status=status), action="AttachNetworkInterface"
    )
    assert type(error) is Transient
    assert error.code == "SomethingNew"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 499])
def test_unknown_code_with_4xx_is_permanent(status: int) -> None:
    error = classify_client_error(
        client_error("InvalidParameterValue", status=status), action="CreateNetworkInterface"
    )
    assert type(error) is Permanent
    assert error.code == "InvalidParameterValue"


def test_error_fields_and_text() -> None:
    error = classify_client_error(
        client_error("InvalidSubnetID.NotFound", message="The subnet 'subnet-1' does not exist"),
        action="CreateNetworkInterface",
    )
    assert error.action == "CreateNetworkInterface"
    assert error.code == "InvalidSubnetID.NotFound"
    assert error.message == "The subnet 'subnet-1' does not exist"
    assert str(error) == (
        "CreateNetworkInterface: InvalidSubnetID.NotFound: The subnet 'subnet-1' does not exist"
    )


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url=ENDPOINT),
        ConnectTimeoutError(endpoint_url=ENDPOINT),
    ],
    ids=["EndpointConnectionError", "ConnectTimeoutError"],
)
@pytest.mark.parametrize("idempotent", [True, False])
def test_connection_failures_are_transient_even_when_not_idempotent(
    error: Exception, idempotent: bool
) -> None:
    result = classify(error, action="AttachNetworkInterface", idempotent=idempotent)
    assert type(result) is Transient
    assert result.code == type(error).__name__
    assert result.action == "AttachNetworkInterface"


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url=ENDPOINT),
        ConnectionClosedError(endpoint_url=ENDPOINT),
        TimeoutError(),  # what asyncio.TimeoutError is since Python 3.11
    ],
    ids=["ReadTimeoutError", "ConnectionClosedError", "asyncio.TimeoutError"],
)
@pytest.mark.parametrize(
    ("idempotent", "cls"), [(True, Transient), (False, OutcomeUnknown)], ids=["idem", "not-idem"]
)
def test_lost_responses_depend_on_idempotency(
    error: Exception, idempotent: bool, cls: type[EC2Error]
) -> None:
    result = classify(error, action="AttachNetworkInterface", idempotent=idempotent)
    assert type(result) is cls
    assert result.code == type(error).__name__


def test_non_ec2_exception_is_not_classified() -> None:
    assert classify(ValueError("nope"), action="CreateNetworkInterface", idempotent=True) is None
    assert classify(KeyError("k"), action="CreateNetworkInterface", idempotent=False) is None


def test_ec2_error_passes_through_unchanged() -> None:
    original = InUse(action="DeleteNetworkInterface", code="InvalidNetworkInterface.InUse")
    assert classify(original, action="Other", idempotent=False) is original


@pytest.mark.parametrize(
    ("code", "action"),
    [
        ("InvalidParameterValue", "AttachNetworkInterface"),
        ("InvalidParameterValue", "CreateNetworkInterface"),
        ("RequestLimitExceeded", "DescribeNetworkInterfaces"),
        ("InvalidNetworkInterfaceID.NotFound", "DeleteNetworkInterface"),
        ("MysteryCode", "CreateNetworkInterface"),
    ],
)
def test_message_never_changes_the_class(code: str, action: str) -> None:
    messages = [
        "",
        "Instance i-1 already has an interface attached at device index 1",
        "The networkInterface ID 'eni-1' does not exist",
        "Request limit exceeded.",
        "throttled internal error not found in use",
    ]
    classes = {
        type(classify_client_error(client_error(code, message=m), action=action)) for m in messages
    }
    assert len(classes) == 1


def test_missing_error_details_default_to_unknown_permanent() -> None:
    error = classify_client_error(ClientError({}, "Op"), action="CreateNetworkInterface")
    assert type(error) is Permanent
    assert error.code == "Unknown"
    assert error.message == ""


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            errors.Unauthorized(action="CreateNetworkInterface", code="UnauthorizedOperation"),
            "Unauthorized",
        ),
        (
            errors.IdempotencyMismatch(
                action="CreateNetworkInterface", code="IdempotentParameterMismatch"
            ),
            "IdempotencyMismatch",
        ),
        (
            errors.Permanent(action="AttachNetworkInterface", code="InvalidParameterValue"),
            "InvalidParameterValue",
        ),
        (
            errors.ENINotFound(
                action="AttachNetworkInterface", code="InvalidNetworkInterfaceID.NotFound"
            ),
            "InvalidNetworkInterfaceIDNotFound",
        ),
        (errors.Transient(action="AttachNetworkInterface", code="500"), "EC2500"),
    ],
)
def test_a_condition_reason_comes_from_the_error_class_else_its_code(
    error: EC2Error, reason: str
) -> None:
    assert errors.reason_for(error) == reason


# UnauthorizedOperation's message as AWS writes it: a readable sentence, then an
# encoded blob of kilobytes (only sts:DecodeAuthorizationMessage reads it).
DENIED_SENTENCE = (
    "You are not authorized to perform this operation. User: "
    "arn:aws:sts::123456789012:assumed-role/eni-controller/i-0abc is not authorized to "
    "perform: ec2:CreateNetworkInterface"
)
ENCODED_BLOB = "Encoded authorization failure message: " + "Zm9vYmFy" * 400


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "AccessDenied"])
def test_short_text_drops_an_authorization_failures_encoded_blob(code: str) -> None:
    error = classify_client_error(
        client_error(code, status=403, message=f"{DENIED_SENTENCE}\n{ENCODED_BLOB}"),
        action="CreateNetworkInterface",
    )
    text = errors.short_text(error, limit=len(DENIED_SENTENCE))
    assert text == f"CreateNetworkInterface: {code}: {DENIED_SENTENCE}"
    assert "Zm9vYmFy" not in text
    assert "Encoded" not in text
    assert "Zm9vYmFy" in str(error)  # the error itself (the logs) keeps it, to be decoded


def test_short_text_reads_the_code_not_the_message() -> None:
    # the same words from a code that is no authorization failure are AWS's text, kept
    error = classify_client_error(
        client_error("InvalidParameterValue", message=f"bad value. {ENCODED_BLOB[:60]}"),
        action="CreateNetworkInterface",
    )
    assert "Encoded authorization failure message" in errors.short_text(error, limit=1000)


def test_short_text_is_one_bounded_line_with_the_code() -> None:
    error = classify_client_error(
        client_error("InternalError", status=500, message="line one\n\tline  two " + "x" * 500),
        action="AttachNetworkInterface",
    )
    text = errors.short_text(error)
    assert text.startswith("AttachNetworkInterface: InternalError: line one line two x")
    assert text.endswith("...")
    assert "\n" not in text
    prefix = len("AttachNetworkInterface: InternalError: ")
    assert len(text) == prefix + errors.SHORT_TEXT_MAX_LENGTH


def test_short_text_of_an_error_without_a_message_is_its_code() -> None:
    error = errors.Transient(action="DescribeInstances", code="ReadTimeoutError")
    assert errors.short_text(error) == "DescribeInstances: ReadTimeoutError"

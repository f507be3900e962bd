"""EC2's failures as botocore raises them, for the fakes and the tests that
make EC2 refuse or fail: one way to build an error answer, so every test
feeds the classifier (eni_controller/aws/errors.py) the same shape.
"""

from __future__ import annotations

from http import HTTPStatus

from botocore.exceptions import ClientError

ENDPOINT = "https://ec2.us-east-1.amazonaws.com"  # for botocore's network errors


def client_error(
    code: str,
    *,
    action: str = "Op",
    status: int = HTTPStatus.BAD_REQUEST,
    message: str = "refused by the test",
) -> ClientError:
    """The ClientError of an EC2 answer with error `code` and HTTP `status`."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        action,
    )

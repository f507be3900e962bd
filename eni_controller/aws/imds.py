"""The region from the EC2 instance metadata service, when no variable names one
(botocore does not look the region up there).

Invariants: a short timeout (off EC2 start-up must fail in seconds, not hang);
IMDSv2 only, no v1 fallback; one error type, `RegionUnavailable`, whose text
says what failed. The endpoint variables are the ones botocore honours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import aiohttp

from eni_controller.config import REGION_PATTERN

DEFAULT_ENDPOINT: Final = "http://169.254.169.254"
ENDPOINT_VARIABLE: Final = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
DISABLED_VARIABLE: Final = "AWS_EC2_METADATA_DISABLED"
TOKEN_PATH: Final = "/latest/api/token"
REGION_PATH: Final = "/latest/meta-data/placement/region"
TOKEN_TTL_HEADER: Final = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER: Final = "X-aws-ec2-metadata-token"
TOKEN_TTL_SECONDS: Final = 60  # one lookup at start-up
DEFAULT_TIMEOUT_SECONDS: Final = 2.0


class RegionUnavailable(Exception):
    """The metadata service gave no region; the message says why."""


def endpoint(env: Mapping[str, str]) -> str | None:
    """Where IMDS is (None: disabled, as botocore reads AWS_EC2_METADATA_DISABLED)."""
    if env.get(DISABLED_VARIABLE, "").strip().lower() == "true":
        return None
    return env.get(ENDPOINT_VARIABLE, "").strip().rstrip("/") or DEFAULT_ENDPOINT


async def region(*, endpoint: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> str:
    """The instance's region; raises RegionUnavailable within about `timeout_seconds`."""
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.put(
                endpoint + TOKEN_PATH, headers={TOKEN_TTL_HEADER: str(TOKEN_TTL_SECONDS)}
            ) as answer:
                if answer.status != 200:
                    raise RegionUnavailable(f"{endpoint}: token request answered {answer.status}")
                token = await answer.text()
            async with session.get(endpoint + REGION_PATH, headers={TOKEN_HEADER: token}) as answer:
                if answer.status != 200:
                    raise RegionUnavailable(f"{endpoint}: region request answered {answer.status}")
                found = (await answer.text()).strip()
    except TimeoutError:
        raise RegionUnavailable(f"{endpoint}: no answer within {timeout_seconds:g}s") from None
    except aiohttp.ClientError as err:
        raise RegionUnavailable(f"{endpoint}: {type(err).__name__}: {err}") from None
    if not REGION_PATTERN.fullmatch(found):
        raise RegionUnavailable(f"{endpoint}: answered {found[:40]!r}, not a region name")
    return found

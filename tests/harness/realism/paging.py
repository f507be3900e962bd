"""DescribeNetworkInterfaces pagination, which moto ignores.

EC2 answers large listings in pages with an opaque NextToken; a client that
reads only the first page misses ENIs (and an orphan sweep built on it leaks).
With `page_size` set, every DescribeNetworkInterfaces answer holds at most
min(MaxResults, page_size) ENIs, ordered by id, plus a NextToken while more
remain. The token names the last id returned, so deletions between pages
neither repeat nor skip the ENIs that remain.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidParameterCombination
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces

from tests.harness.realism.errors import InvalidMaxResults, InvalidPaginationToken
from tests.harness.realism.patching import wrap
from tests.harness.realism.state import RealismState

Handler = Callable[[Any], ActionResult]

# DescribeNetworkInterfaces MaxResults: valid range 5..1000 (EC2 API reference).
MIN_MAX_RESULTS = 5
MAX_MAX_RESULTS = 1000
_TOKEN_VERSION = 1


def install(state: RealismState) -> None:
    wrap(ElasticNetworkInterfaces, "describe_network_interfaces", lambda h: _describe(state, h))


def encode_token(last_id: str) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "after": last_id}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str) -> str:
    """The last ENI id of the previous page; InvalidParameterValue if not ours."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, UnicodeError, ValueError) as err:
        raise InvalidPaginationToken(token) from err
    if (
        not isinstance(data, dict)
        or data.get("v") != _TOKEN_VERSION
        or not isinstance(data.get("after"), str)
    ):
        raise InvalidPaginationToken(token)
    after: str = data["after"]
    return after


def _describe(state: RealismState, handler: Handler) -> Handler:
    def describe_network_interfaces(self: Any) -> ActionResult:
        with state.lock:
            page_size = state.switches.page_size
            if page_size is None:
                return handler(self)
            return _page(self, page_size)

    return describe_network_interfaces


def _page(response: Any, page_size: int) -> ActionResult:
    eni_ids = response._get_param("NetworkInterfaceIds", [])
    max_results = response._get_param("MaxResults")
    if max_results is not None:
        max_results = int(max_results)
        if eni_ids:
            raise InvalidParameterCombination(
                "The parameter NetworkInterfaceIds cannot be used with the parameter maxResults"
            )
        if not MIN_MAX_RESULTS <= max_results <= MAX_MAX_RESULTS:
            raise InvalidMaxResults(max_results, MIN_MAX_RESULTS, MAX_MAX_RESULTS)
    token = response._get_param("NextToken")
    after = decode_token(token) if token else None
    filters = response._filters_from_querystring()
    response.error_on_dryrun()
    enis = sorted(
        response.ec2_backend.get_all_network_interfaces(eni_ids, filters), key=lambda e: e.id
    )
    if after is not None:
        enis = [eni for eni in enis if eni.id > after]
    limit = min(page_size, max_results or page_size)
    page = enis[:limit]
    result: dict[str, Any] = {"NetworkInterfaces": page}
    if len(enis) > limit:
        result["NextToken"] = encode_token(page[-1].id)
    return ActionResult(result)

"""The typed EC2 client the controller uses, over aiobotocore.

Every call goes through one path: circuit breaker, token bucket, the call,
error classification, retries for what retrying can fix, metrics; each answer
also paces its bucket (aws/ratelimit.py). Results are the dataclasses of
`resources.py`. Describes filter by many ids at once and are paginated.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig

from eni_controller.aws.breaker import BreakerState, CircuitBreaker
from eni_controller.aws.errors import EC2Error, Throttled, Transient, classify
from eni_controller.aws.ratelimit import ActionClass, RateLimiter
from eni_controller.aws.resources import Instance, NetworkInterface, SecurityGroup, Subnet, max_enis
from eni_controller.aws.retry import RetryPolicy, retrying
from eni_controller.config import Config
from eni_controller.metrics import Metrics

Filters = Mapping[str, Sequence[str]]

# Every action this client calls (a unit test holds it equal to the `self.call(`
# and `self._paged(` names below); the IAM policy and the preflight derive from it.
EC2_ACTIONS: Final = (
    "DescribeNetworkInterfaces",
    "DescribeInstances",
    "DescribeInstanceTypes",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "CreateNetworkInterface",
    "AttachNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
    "DetachNetworkInterface",
    "DeleteNetworkInterface",
    "CreateTags",
)

# A lost attach response may hide a successful attach; Create is made idempotent
# by its ClientToken, and repeated detach/delete/modify calls are harmless.
_NOT_IDEMPOTENT: Final = frozenset({"AttachNetworkInterface"})
# These filters crash moto and are not needed: we read the fields instead.
_UNSUPPORTED_FILTERS: Final = frozenset({"attachment.device-index", "attachment.status"})
_PAGE_SIZE: Final = 1000
FILTER_VALUES_PER_CALL: Final = 200  # EC2's limit on the values of one filter


@functools.cache  # a handful of actions
def _snake(action: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in action).lstrip("_")


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def eni_tag_specifications(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """CreateNetworkInterface's TagSpecifications: `tags` on the new ENI."""
    return [{"ResourceType": "network-interface", "Tags": tag_list(tags)}]


class EC2Client:
    def __init__(
        self,
        client: Any,
        *,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        retry: RetryPolicy,
        metrics: Metrics,
    ) -> None:
        self._client = client
        self.limiter = limiter  # the buckets every call goes through
        self.breaker = breaker
        self._retry_policy = retry
        self._metrics = metrics
        for c in ActionClass:  # the pacing, read at each scrape: the rate AIMD runs at
            rate = functools.partial(limiter.rate, c)  # only reads: scrapes run on threads
            metrics.aws_rate_limiter_fill_rate.labels(c.value).set_function(rate)
            metrics.aws_rate_limiter_fill_rate_ceiling.labels(c.value).set(limiter.ceiling(c))

    async def call(self, action: str, **params: Any) -> dict[str, Any]:
        """Make one logical EC2 call (with retries); raise an EC2Error on failure."""
        self.breaker.check(action)
        try:
            async for attempt in retrying(
                self._retry_policy,
                before_sleep=lambda _: self._metrics.aws_api_retries.labels(action).inc(),
            ):
                with attempt:
                    response = await self._attempt(action, params)
        except EC2Error as err:
            if isinstance(err, Transient | Throttled):
                self.breaker.record_failure()
            else:
                self.breaker.record_success()  # EC2 answered; the answer was "no"
            self._metrics.aws_api_calls.labels(action, "error").inc()
            raise
        self.breaker.record_success()
        self._metrics.aws_api_calls.labels(action, "success").inc()
        return response

    async def _attempt(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        action_class, waited = await self.limiter.acquire(action)
        self._metrics.aws_rate_limiter_wait.labels(action_class.value).observe(waited)
        sent_at = self.limiter.now()
        start = time.perf_counter()
        try:
            response: dict[str, Any] = await getattr(self._client, _snake(action))(**params)
        except Exception as exc:
            error = classify(exc, action=action, idempotent=action not in _NOT_IDEMPOTENT)
            if error is None:
                raise
            self._metrics.aws_api_errors.labels(action, type(error).__name__).inc()
            if isinstance(error, Throttled):
                self._metrics.aws_api_throttles.labels(action).inc()
                self.limiter.throttled(action, sent_at=sent_at)
            elif not isinstance(error, Transient):  # EC2 answered, and not for rate
                self.limiter.succeeded(action)
            raise error from exc
        finally:
            self._metrics.aws_api_latency.labels(action).observe(time.perf_counter() - start)
        self.limiter.succeeded(action)
        return response

    async def _paged(self, action: str, key: str, filters: Filters) -> list[dict[str, Any]]:
        """Every item under `key` of every page `action` answers for `filters`."""
        if bad := _UNSUPPORTED_FILTERS.intersection(filters):
            raise ValueError(f"unsupported describe filters: {sorted(bad)}")
        params = {"Filters": [{"Name": n, "Values": list(v)} for n, v in filters.items()]}
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self.call(
                action, **params, MaxResults=_PAGE_SIZE, **({"NextToken": token} if token else {})
            )
            items.extend(page.get(key) or ())
            token = page.get("NextToken")
            if not token:
                return items

    async def create_network_interface(
        self,
        *,
        subnet_id: str,
        security_group_ids: Sequence[str],
        description: str,
        tags: Mapping[str, str],
        client_token: str,
    ) -> NetworkInterface:
        response = await self.call(
            "CreateNetworkInterface",
            SubnetId=subnet_id,
            Groups=list(security_group_ids),
            Description=description,
            ClientToken=client_token,
            TagSpecifications=eni_tag_specifications(tags),
        )
        return NetworkInterface.from_api(response["NetworkInterface"])

    async def attach_network_interface(
        self, *, eni_id: str, instance_id: str, device_index: int
    ) -> str:
        """Attach and return the attachment id. OutcomeUnknown means: describe first."""
        response = await self.call(
            "AttachNetworkInterface",
            NetworkInterfaceId=eni_id,
            InstanceId=instance_id,
            DeviceIndex=device_index,
        )
        return str(response["AttachmentId"])

    async def set_delete_on_termination(
        self, *, eni_id: str, attachment_id: str, delete_on_termination: bool
    ) -> None:
        await self.call(
            "ModifyNetworkInterfaceAttribute",
            NetworkInterfaceId=eni_id,
            Attachment={
                "AttachmentId": attachment_id,
                "DeleteOnTermination": delete_on_termination,
            },
        )

    async def set_security_groups(self, *, eni_id: str, security_group_ids: Sequence[str]) -> None:
        await self.call(
            "ModifyNetworkInterfaceAttribute",
            NetworkInterfaceId=eni_id,
            Groups=list(security_group_ids),
        )

    async def tag_network_interface(self, *, eni_id: str, tags: Mapping[str, str]) -> None:
        """Add (or overwrite) tags: the Go controller's ENIs are adopted by completing theirs."""
        await self.call("CreateTags", Resources=[eni_id], Tags=tag_list(tags))

    async def detach_network_interface(self, *, attachment_id: str, force: bool = True) -> None:
        await self.call("DetachNetworkInterface", AttachmentId=attachment_id, Force=force)

    async def delete_network_interface(self, *, eni_id: str) -> None:
        await self.call("DeleteNetworkInterface", NetworkInterfaceId=eni_id)

    async def describe_network_interfaces(
        self, *, filters: Filters, eni_ids: Sequence[str] = ()
    ) -> list[NetworkInterface]:
        """ENIs matching `filters` (and among `eni_ids` if given: missing ones are absent)."""
        chunks = _chunks(eni_ids, FILTER_VALUES_PER_CALL)
        batches: list[Filters] = [{**filters, "network-interface-id": c} for c in chunks]
        found: list[NetworkInterface] = []
        for batch in batches or [filters]:
            raw = await self._paged("DescribeNetworkInterfaces", "NetworkInterfaces", batch)
            found.extend(NetworkInterface.from_api(item) for item in raw)
        return found

    async def describe_instances(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        """The instances that exist among `instance_ids` (terminated ones included)."""
        found: dict[str, Instance] = {}
        for chunk in _chunks(sorted(set(instance_ids)), FILTER_VALUES_PER_CALL):
            reservations = await self._paged(
                "DescribeInstances", "Reservations", {"instance-id": chunk}
            )
            for reservation in reservations:
                for raw in reservation.get("Instances") or ():
                    instance = Instance.from_api(raw)
                    found[instance.instance_id] = instance
        return found

    async def describe_instance_types(self, instance_types: Sequence[str]) -> dict[str, int]:
        """How many ENIs each of `instance_types` holds (unknown types are absent)."""
        response = await self.call("DescribeInstanceTypes", InstanceTypes=list(instance_types))
        return dict(max_enis(raw) for raw in response.get("InstanceTypes") or ())

    async def describe_subnets(self, *, filters: Filters) -> list[Subnet]:
        raw = await self._paged("DescribeSubnets", "Subnets", filters)
        return [Subnet.from_api(item) for item in raw]

    async def describe_security_groups(self, *, filters: Filters) -> list[SecurityGroup]:
        raw = await self._paged("DescribeSecurityGroups", "SecurityGroups", filters)
        return [SecurityGroup.from_api(item) for item in raw]


@asynccontextmanager
async def connect_ec2(
    config: Config,
    *,
    metrics: Metrics,
    retry: RetryPolicy | None = None,
    read_timeout_seconds: float = 30.0,
) -> AsyncIterator[EC2Client]:
    """An EC2Client for the configured region and endpoint, closed on exit."""
    boto_config = BotoConfig(
        # tenacity owns retries; botocore makes exactly one attempt per call
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=read_timeout_seconds,
        max_pool_connections=64,
    )

    def on_breaker_change(state: BreakerState) -> None:
        metrics.circuit_breaker_state.set(state.value)
        metrics.circuit_breaker_transitions.labels(state.name.lower()).inc()

    async with get_session().create_client(
        "ec2",
        region_name=config.aws_region,
        endpoint_url=config.aws_endpoint_url,
        config=boto_config,
    ) as raw:
        yield EC2Client(
            raw,
            # the configured buckets, scaled to this controller's share of the account's
            limiter=RateLimiter(config.ec2_rate_limits.paced(config.ec2_budget_share)),
            breaker=CircuitBreaker(config.circuit_breaker, on_change=on_breaker_change),
            retry=retry or RetryPolicy(),
            metrics=metrics,
        )

"""Resolve a NodeENI's subnets and security groups, by ID or by name.

Invariants: names are looked up inside the cluster VPC when it is known
(VPC_ID), and an ID of a resource in another VPC is refused (`VPCMismatch`); a
name matching more than one resource is an error, never "first wins" (ENIs
would land in the wrong network); found entries are cached with a TTL, failures
are not (a fix is seen at once). Concurrent resolutions share describes
(aws/batch.py): one for the IDs and one per name stage with names left.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from eni_controller.aws.batch import ANY_CALL, Batcher
from eni_controller.aws.ec2 import FILTER_VALUES_PER_CALL, EC2Client, Filters
from eni_controller.aws.resources import SecurityGroup, Subnet

DEFAULT_TTL_SECONDS = 300.0


R = TypeVar("R", bound=Subnet | SecurityGroup)


class LookupReason(StrEnum):
    """The condition reason a failed lookup reports."""

    SUBNET_NOT_FOUND = "SubnetNotFound"
    SECURITY_GROUP_NOT_FOUND = "SecurityGroupNotFound"
    AMBIGUOUS_NAME = "AmbiguousName"
    VPC_MISMATCH = "VPCMismatch"


class LookupFailed(Exception):
    """Some subnets or security groups could not be resolved; ``problems`` says which."""

    def __init__(self, *, reason: LookupReason, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.reason = reason
        self.problems = tuple(problems)


@dataclass(kw_only=True, eq=False)
class _Finder(Generic[R]):
    """Lookups of one resource kind, with their cache."""

    noun: str
    not_found: LookupReason
    describe: Callable[..., Awaitable[list[R]]]
    id_filter: str
    ident: Callable[[R], str]
    name_stages: Sequence[tuple[str, Callable[[R], str | None]]]
    vpc_id: str | None
    ttl_seconds: float
    clock: Callable[[], float]

    def __post_init__(self) -> None:
        self._cache: dict[str, tuple[float, R]] = {}  # "id:<id>" or "name:<name>" -> (expiry, R)
        self._by_ids = Batcher(self._describe_ids, max_keys=FILTER_VALUES_PER_CALL)
        self._by_names = [
            Batcher(
                functools.partial(self._describe_names, filter_name, name_of),
                max_keys=FILTER_VALUES_PER_CALL,
            )
            for filter_name, name_of in self.name_stages
        ]

    async def resolve(self, *, ids: Sequence[str], names: Sequence[str]) -> tuple[R, ...]:
        missing: list[str] = []
        ambiguous: list[str] = []
        elsewhere: list[str] = []
        by_id = await self._by_id(ids, missing, elsewhere)
        by_name = await self._by_name(names, missing, ambiguous)
        if ambiguous or elsewhere or missing:
            raise LookupFailed(
                reason=LookupReason.AMBIGUOUS_NAME
                if ambiguous
                else LookupReason.VPC_MISMATCH
                if elsewhere
                else self.not_found,
                problems=ambiguous + elsewhere + missing,
            )
        resolved: dict[str, R] = {}
        for resource in [by_id[i] for i in ids] + [by_name[n] for n in names]:
            resolved.setdefault(self.ident(resource), resource)
        return tuple(resolved.values())

    async def _by_id(
        self, ids: Sequence[str], missing: list[str], elsewhere: list[str]
    ) -> dict[str, R]:
        found = {i: r for i in ids if (r := self._cached(f"id:{i}")) is not None}
        wanted = [i for i in dict.fromkeys(ids) if i not in found]
        if wanted:
            found.update(await self._by_ids.get(wanted, not_before=ANY_CALL))
        for i in wanted:
            resource = found.get(i)
            if resource is None:
                missing.append(f"{self.noun} {i} not found")
            elif self.vpc_id and resource.vpc_id != self.vpc_id:
                elsewhere.append(
                    f"{self.noun} {i} is in {resource.vpc_id}, not in the cluster VPC"
                    f" {self.vpc_id} (VPC_ID)"
                )
                del found[i]
            else:
                self._keep(f"id:{i}", resource)
        return found

    async def _by_name(
        self, names: Sequence[str], missing: list[str], ambiguous: list[str]
    ) -> dict[str, R]:
        found = {n: r for n in names if (r := self._cached(f"name:{n}")) is not None}
        wanted = [n for n in dict.fromkeys(names) if n not in found]
        for stage in self._by_names:
            if not wanted:
                break
            matches = await stage.get(wanted, not_before=ANY_CALL)
            for name, candidates in matches.items():
                if len(candidates) == 1:
                    found[name] = candidates[0]
                    self._keep(f"name:{name}", candidates[0])
                elif len(candidates) > 1:
                    ids = ", ".join(sorted(self.ident(c) for c in candidates))
                    ambiguous.append(f"{self.noun} name {name!r} is ambiguous: matches {ids}")
            wanted = [n for n in wanted if n not in matches]
        missing.extend(f"{self.noun} named {n!r} not found" for n in wanted)
        return found

    def _cached(self, key: str) -> R | None:
        """The cached resource, unless it expired (then it is dropped for good)."""
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, resource = entry
        if self.clock() < expires:
            return resource
        del self._cache[key]
        return None

    def _keep(self, key: str, resource: R) -> None:
        self._cache[key] = (self.clock() + self.ttl_seconds, resource)

    async def _describe_ids(self, ids: Sequence[str]) -> dict[str, R]:
        described = await self.describe(filters={self.id_filter: list(ids)})
        return {self.ident(r): r for r in described}

    async def _describe_names(
        self, filter_name: str, name_of: Callable[[R], str | None], names: Sequence[str]
    ) -> Mapping[str, list[R]]:
        """Every resource each name matches (more than one: ambiguous)."""
        matches: dict[str, list[R]] = {}
        asked = set(names)
        scope: Filters = {"vpc-id": [self.vpc_id]} if self.vpc_id else {}
        for resource in await self.describe(filters={filter_name: list(names), **scope}):
            name = name_of(resource)
            if name is not None and name in asked:
                matches.setdefault(name, []).append(resource)
        return matches


class Resolver:
    """`subnets` and `security_groups` resolve ``ids`` and ``names`` to the
    resources in spec order (IDs first, then names), each once."""

    def __init__(
        self,
        ec2: EC2Client,
        *,
        vpc_id: str | None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.subnets = _Finder[Subnet](
            noun="subnet",
            not_found=LookupReason.SUBNET_NOT_FOUND,
            describe=ec2.describe_subnets,
            id_filter="subnet-id",
            ident=lambda s: s.subnet_id,
            name_stages=[("tag:Name", lambda s: s.name)],
            vpc_id=vpc_id,
            ttl_seconds=ttl_seconds,
            clock=clock,
        ).resolve
        self.security_groups = _Finder[SecurityGroup](
            noun="security group",
            not_found=LookupReason.SECURITY_GROUP_NOT_FOUND,
            describe=ec2.describe_security_groups,
            id_filter="group-id",
            ident=lambda g: g.group_id,
            # SPEC: by group name first, then by Name tag
            name_stages=[
                ("group-name", lambda g: g.group_name),
                ("tag:Name", lambda g: g.name_tag),
            ],
            vpc_id=vpc_id,
            ttl_seconds=ttl_seconds,
            clock=clock,
        ).resolve

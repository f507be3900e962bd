"""A small IAM evaluator for identity policies, enough to ask "would the shipped
policy let this EC2 request through?" without AWS.

It knows what the policy uses: Allow statements, `Action` and `Resource` with
`*`/`?` wildcards, and the condition operators StringEquals and ArnLike/ArnEquals
(all condition keys of a statement must match; a key missing from the request
context does not match). Anything else in a policy is an error here, so a policy
that outgrows the evaluator fails the tests instead of passing them unread.

`AUTHORIZED_RESOURCES` is what AWS's "Actions, resources, and condition keys for
Amazon EC2" lists for each action the controller makes: which resources one
request is authorized against. It is written down here, apart from
eni_controller/iam.py, so that the policy is checked against AWS's rules rather
than against itself.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

# action -> resource types one request authorizes ("*": no resource-level permissions).
AUTHORIZED_RESOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "DescribeNetworkInterfaces": ("*",),
    "DescribeInstances": ("*",),
    "DescribeInstanceTypes": ("*",),
    "DescribeSubnets": ("*",),
    "DescribeSecurityGroups": ("*",),
    "CreateNetworkInterface": ("network-interface", "subnet", "security-group"),
    "CreateTags": ("network-interface",),
    "AttachNetworkInterface": ("instance", "network-interface"),
    "DetachNetworkInterface": ("instance", "network-interface"),
    "ModifyNetworkInterfaceAttribute": ("instance", "network-interface", "security-group"),
    "DeleteNetworkInterface": ("network-interface",),
}

_OPERATORS: Final = frozenset({"StringEquals", "ArnLike", "ArnEquals"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Resource:
    """One resource of a request: its ARN and the condition keys it brings
    (`aws:ResourceTag/...`, `ec2:Vpc`, ...)."""

    arn: str
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """One authorization: `ec2:<action>` on every resource in `resources`, with
    request-wide condition keys (`aws:RequestTag/...`, `ec2:CreateAction`)."""

    action: str
    resources: Sequence[Resource]
    context: Mapping[str, str] = field(default_factory=dict)


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _conditions_hold(
    conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]
) -> bool:
    for operator, keys in conditions.items():
        if operator not in _OPERATORS:
            raise ValueError(f"condition operator {operator!r} is not evaluated here")
        for key, wanted in keys.items():
            actual = context.get(key)
            if actual is None:
                return False
            values = _as_list(wanted)
            if operator == "StringEquals":
                if actual not in values:
                    return False
            elif not any(fnmatch.fnmatchcase(actual, pattern) for pattern in values):
                return False
    return True


def _statement_allows(
    statement: Mapping[str, Any],
    action: str,
    resource: Resource,
    request_context: Mapping[str, str],
) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if unknown or statement["Effect"] != "Allow":
        raise ValueError(f"statement form not evaluated here: {statement}")
    if not any(fnmatch.fnmatchcase(action, p) for p in _as_list(statement["Action"])):
        return False
    if not any(fnmatch.fnmatchcase(resource.arn, p) for p in _as_list(statement["Resource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), {**request_context, **resource.context})


def denied_resources(policy: Mapping[str, Any], request: Request) -> list[str]:
    """The ARNs of `request` no Allow statement of `policy` grants (empty: allowed)."""
    action = f"ec2:{request.action}"
    return [
        resource.arn
        for resource in request.resources
        if not any(
            _statement_allows(statement, action, resource, request.context)
            for statement in policy["Statement"]
        )
    ]

"""What a NodeENI's status should say, and the merge patch that says it.

Pure functions: previous status, the plan's facts and the time in; a patch out,
or None when nothing changed, so a reconcile that changes nothing writes
nothing. lastUpdated moves only when an attachment really changed, and a
condition's lastTransitionTime only when its status did.

Conditions: `Ready` and `Degraded` always; `NodeInterfacesReady` (False,
`NodeReportedError`) only while a node's agent reports an error for one of the
NodeENI's ENIs (eninodes.py), never affecting Ready; `CompactStatus` and
`Degraded`/`StatusTruncated` from status_fit.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from eni_controller.model import (
    Attachment,
    AttachmentState,
    Condition,
    ConditionStatus,
    NodeENIStatus,
)
from eni_controller.reconcile.eninodes import NodeError
from eni_controller.reconcile.planner import Plan
from eni_controller.reconcile.status_fit import (
    DEFAULT_LIMITS,
    StatusLimits,
    fitting_prefix,
    format_conditions,
    is_compact,
    json_size,
    truncated_conditions,
    untruncated_conditions,
)

READY = "Ready"
DEGRADED = "Degraded"
NODE_INTERFACES_READY = "NodeInterfacesReady"
_MAX_LISTED_PROBLEMS = 5


class Reason(StrEnum):
    ATTACHED = "Attached"
    PROGRESSING = "Progressing"
    AS_EXPECTED = "AsExpected"
    INVALID_SPEC = "InvalidSpec"
    NODE_REPORTED_ERROR = "NodeReportedError"


def plan_conditions(plan: Plan, *, generation: int) -> list[Condition]:
    attached = sum(a.status is AttachmentState.ATTACHED for a in plan.attachments)
    summary = f"{attached} of {plan.desired} ENIs attached"
    # the problems that keep ENIs from nodes first: they name the reason
    problems = sorted(plan.problems, key=lambda p: not p.blocks_ready)
    message = f"{summary}; {_listed([p.message for p in problems])}" if problems else summary
    if problems and problems[0].blocks_ready:
        return failure_conditions(reason=problems[0].reason, message=message, generation=generation)
    ready = plan.ready
    return [
        Condition(
            type=READY,
            status=ConditionStatus.TRUE if ready else ConditionStatus.FALSE,
            reason=Reason.ATTACHED if ready else Reason.PROGRESSING,
            message=summary,
            observed_generation=generation,
        ),
        Condition(
            type=DEGRADED,
            status=ConditionStatus.TRUE if problems else ConditionStatus.FALSE,
            reason=problems[0].reason if problems else Reason.AS_EXPECTED,
            message=message if problems else None,
            observed_generation=generation,
        ),
    ]


def node_error_conditions(errors: Sequence[NodeError], *, generation: int) -> list[Condition]:
    """`NodeInterfacesReady=False` while nodes report errors for ENIs; none when fine."""
    if not errors:
        return []
    listed = _listed(
        [
            f"node {e.node}: {e.eni_id}"
            + (f" ({e.interface_name})" if e.interface_name else "")
            + f": {e.message}"
            for e in errors
        ]
    )
    return [
        Condition(
            type=NODE_INTERFACES_READY,
            status=ConditionStatus.FALSE,
            reason=Reason.NODE_REPORTED_ERROR,
            message=f"{len(errors)} ENIs with errors on their nodes: {listed}",
            observed_generation=generation,
        )
    ]


def _listed(messages: Sequence[str]) -> str:
    """The first _MAX_LISTED_PROBLEMS messages, and how many more there are."""
    more = len(messages) - _MAX_LISTED_PROBLEMS
    return "; ".join(messages[:_MAX_LISTED_PROBLEMS]) + (f" (+{more} more)" if more > 0 else "")


def failure_conditions(*, reason: str, message: str, generation: int) -> list[Condition]:
    return [
        Condition(type=t, status=s, reason=reason, message=message, observed_generation=generation)
        for t, s in ((READY, ConditionStatus.FALSE), (DEGRADED, ConditionStatus.TRUE))
    ]


def status_patch(
    previous: NodeENIStatus,
    *,
    conditions: Sequence[Condition],
    generation: int,
    now: str,
    attachments: Sequence[Attachment],
    desired: int | None = None,
    limits: StatusLimits = DEFAULT_LIMITS,
) -> dict[str, Any] | None:
    """The merge patch for `.status`, or None if it would change nothing. A merge
    patch replaces lists whole, so each entry carries the node agent's fields."""
    entries = _stamp(attachments, previous, now)
    compact = is_compact(len(entries), compact_above=limits.compact_above)
    items = [
        a.to_compact_dict() if compact else a.to_dict(last_updated=stamp) for a, stamp in entries
    ]
    laid_out = format_conditions(
        conditions,
        total=len(items),
        compact_above=limits.compact_above,
        generation=generation,
    )
    desired = desired if desired is not None else previous.desired_count
    status: dict[str, Any] = {
        "attachments": items,
        "conditions": [
            c.to_dict() for c in _transitions(untruncated_conditions(laid_out), previous, now)
        ],
        "observedGeneration": generation,
        "attachedCount": sum(a.status is AttachmentState.ATTACHED for a, _ in entries),
        **({"desiredCount": desired} if desired is not None else {}),
    }
    if json_size(status) > limits.budget_bytes:
        status = _truncated(status, laid_out, previous, now, generation=generation, limits=limits)
    if status == previous.to_dict():
        return None
    return {"status": status}


def _truncated(
    status: dict[str, Any],
    conditions: Sequence[Condition],
    previous: NodeENIStatus,
    now: str,
    *,
    generation: int,
    limits: StatusLimits,
) -> dict[str, Any]:
    """`status` with the longest prefix of its entries that fits the budget, and
    Degraded=True/StatusTruncated saying how many are listed."""
    items: list[dict[str, object]] = status["attachments"]

    def with_listed(listed: int) -> dict[str, Any]:
        marked = truncated_conditions(
            conditions,
            listed=listed,
            total=len(items),
            budget=limits.budget_bytes,
            generation=generation,
        )
        transitions = [c.to_dict() for c in _transitions(marked, previous, now)]
        return {**status, "attachments": items[:listed], "conditions": transitions}

    # the message naming all entries as listed is the longest it can be
    room = limits.budget_bytes - (json_size(with_listed(len(items))) - json_size(items))
    return with_listed(fitting_prefix([json_size(i) for i in items], room=room))


def _stamp(
    attachments: Sequence[Attachment], previous: NodeENIStatus, now: str
) -> list[tuple[Attachment, str | None]]:
    """Each entry in status order with its lastUpdated: the previous one if
    nothing else changed, else `now` (paired, not copied: thousands per status)."""
    before = {a.eni_id: a for a in previous.attachments}
    stamped = []
    for entry in sorted(attachments, key=lambda a: (a.node_id, a.device_index or 0, a.eni_id)):
        old = before.get(entry.eni_id)
        stamp = old.last_updated if old is not None and _same_but_stamp(old, entry) else now
        stamped.append((entry, stamp))
    return stamped


def _same_but_stamp(a: Attachment, b: Attachment) -> bool:
    """Whether two entries are equal but for last_updated."""
    if a.last_updated != b.last_updated:
        a = dataclasses.replace(a, last_updated=b.last_updated)
    return a == b


def _transitions(
    conditions: Sequence[Condition], previous: NodeENIStatus, now: str
) -> list[Condition]:
    before = {c.type: c for c in previous.conditions}

    def since(c: Condition) -> str:
        old = before.get(c.type)
        kept = old.last_transition_time if old is not None and old.status == c.status else None
        return kept or now

    return [dataclasses.replace(c, last_transition_time=since(c)) for c in conditions]

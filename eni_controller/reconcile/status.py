"""What a NodeENI's status should say, and the merge patch that says it.

Pure functions: the reconciler hands in the previous status, the plan's facts
and the time; out comes a patch, or None when nothing changed — so a reconcile
that changes nothing writes nothing. lastUpdated moves only when an attachment
really changed, and a condition's lastTransitionTime only when its status did.

Conditions: `Ready` and `Degraded` always (from the plan, or a failure), and
`NodeInterfacesReady` (status False, reason `NodeReportedError`) only while a
node's agent reports an error for one of the NodeENI's ENIs (its ENINode status,
folded by eninodes.py): the message names node, ENI, interface and error. When
the errors clear the condition goes; EC2-side readiness never depends on it.
`CompactStatus` (and `Degraded` with reason `StatusTruncated`) come from
status_fit.py: which form the entries take, and a status that never outgrows
its byte budget.
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
    json_size,
    render,
    status_format,
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
    message = summary
    if problems:
        listed = "; ".join(p.message for p in problems[:_MAX_LISTED_PROBLEMS])
        more = len(problems) - _MAX_LISTED_PROBLEMS
        message = f"{summary}; {listed}" + (f" (+{more} more)" if more > 0 else "")
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
    listed = "; ".join(
        f"node {e.node}: {e.eni_id}"
        + (f" ({e.interface_name})" if e.interface_name else "")
        + f": {e.message}"
        for e in errors[:_MAX_LISTED_PROBLEMS]
    )
    more = len(errors) - _MAX_LISTED_PROBLEMS
    return [
        Condition(
            type=NODE_INTERFACES_READY,
            status=ConditionStatus.FALSE,
            reason=Reason.NODE_REPORTED_ERROR,
            message=f"{len(errors)} ENIs with errors on their nodes: {listed}"
            + (f" (+{more} more)" if more > 0 else ""),
            observed_generation=generation,
        )
    ]


def failure_conditions(*, reason: str, message: str, generation: int) -> list[Condition]:
    return [
        Condition(
            type=READY,
            status=ConditionStatus.FALSE,
            reason=reason,
            message=message,
            observed_generation=generation,
        ),
        Condition(
            type=DEGRADED,
            status=ConditionStatus.TRUE,
            reason=reason,
            message=message,
            observed_generation=generation,
        ),
    ]


def status_patch(
    previous: NodeENIStatus,
    *,
    conditions: Sequence[Condition],
    generation: int,
    now: str,
    attachments: Sequence[Attachment] | None = None,
    desired: int | None = None,
    limits: StatusLimits = DEFAULT_LIMITS,
) -> dict[str, Any] | None:
    """The merge patch for `.status`, or None if it would change nothing.

    `attachments=None` keeps the previous list (e.g. the spec is invalid and EC2
    was not asked). Lists are replaced whole by a merge patch, so the node
    agent's fields are carried inside each attachment. The entries are in full
    or compact by their number, and cut to fit `limits.budget_bytes`
    (status_fit.py).
    """
    entries = (
        [(a, a.last_updated) for a in previous.attachments]
        if attachments is None
        else _stamp(attachments, previous, now)
    )
    form = status_format(len(entries), compact_above=limits.compact_above)
    items = [render(a, last_updated=stamp, form=form) for a, stamp in entries]
    laid_out = format_conditions(
        conditions,
        form=form,
        total=len(items),
        compact_above=limits.compact_above,
        generation=generation,
    )
    status = _status(
        items,
        _transitions(untruncated_conditions(laid_out), previous, now),
        generation=generation,
        attached=sum(a.status is AttachmentState.ATTACHED for a, _ in entries),
        desired=desired if desired is not None else previous.desired_count,
    )
    if json_size(status) > limits.budget_bytes:
        status = _truncated(status, laid_out, previous, now, generation=generation, limits=limits)
    if status == previous.to_dict():
        return None
    return {"status": status}


def _status(
    items: list[dict[str, object]],
    conditions: Sequence[Condition],
    *,
    generation: int,
    attached: int,
    desired: int | None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "attachments": items,
        "conditions": [c.to_dict() for c in conditions],
        "observedGeneration": generation,
        "attachedCount": attached,
        "desiredCount": desired,
    }
    if desired is None:
        del status["desiredCount"]
    return status


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
    result = []
    for condition in conditions:
        old = before.get(condition.type)
        same = old is not None and old.status == condition.status and old.last_transition_time
        result.append(
            dataclasses.replace(
                condition, last_transition_time=old.last_transition_time if same and old else now
            )
        )
    return result

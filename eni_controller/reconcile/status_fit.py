"""A NodeENI status that always fits in one object: the format switch, the
compact condition and the byte-budget safeguard.

Why: a NodeENI over thousands of nodes has one status entry per attachment, and
etcd refuses a write past ~1.5 MiB, so a status in full (~410-530 bytes an
entry) would fail after the EC2 work was done (figures in docs/performance.md).

Invariants (pure functions; status.py applies them to every status it writes):

* One format per status, from the number of entries alone: in full up to
  COMPACT_ABOVE entries, compact above (model.COMPACT_ATTACHMENT_FIELDS), with
  the `CompactStatus` condition saying so while it lasts. The same entries
  render the same bytes, so an idle resync writes nothing in either format.
* A status is never written past STATUS_BUDGET_BYTES (two thirds of etcd's
  limit): the entry list is cut to the longest prefix that fits, attachedCount
  still counts every entry, and `Degraded` turns True with reason
  `StatusTruncated`. While truncated, the ENINode specs keep the entries it
  cannot list (eninodes.desired_interfaces).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from eni_controller.model import COMPACT_ATTACHMENT_FIELDS, Condition, ConditionStatus

COMPACT_ABOVE: Final = 800
STATUS_BUDGET_BYTES: Final = 1024 * 1024
COMPACT_STATUS: Final = "CompactStatus"  # the condition type
_DEGRADED: Final = "Degraded"  # status.py's DEGRADED (status.py imports this module)


class FitReason(StrEnum):
    MANY_ATTACHMENTS = "ManyAttachments"
    STATUS_TRUNCATED = "StatusTruncated"
    AS_EXPECTED = "AsExpected"  # status.py's Reason.AS_EXPECTED


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusLimits:
    """Where the format switches and how many bytes a status may take."""

    compact_above: int = COMPACT_ABOVE
    budget_bytes: int = STATUS_BUDGET_BYTES


DEFAULT_LIMITS: Final = StatusLimits()


def is_compact(count: int, *, compact_above: int = COMPACT_ABOVE) -> bool:
    """Whether `count` entries are listed compact: in full up to `compact_above`."""
    return count > compact_above


def json_size(value: object) -> int:
    """Bytes of `value` as compact JSON, as the API server stores and serves it."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def fitting_prefix(sizes: Sequence[int], *, room: int) -> int:
    """How many items, from the first, fit in `room` bytes as the items of a JSON
    list (`room` counts the brackets; each item after the first adds a comma)."""
    used = 2  # []
    for count, size in enumerate(sizes):
        used += size + (1 if count else 0)
        if used > room:
            return count
    return len(sizes)


def format_conditions(
    conditions: Iterable[Condition], *, total: int, compact_above: int, generation: int
) -> list[Condition]:
    """`conditions` with `CompactStatus` present exactly when the entries are compact."""
    kept = [c for c in conditions if c.type != COMPACT_STATUS]
    if not is_compact(total, compact_above=compact_above):
        return kept
    return [
        *kept,
        Condition(
            type=COMPACT_STATUS,
            status=ConditionStatus.TRUE,
            reason=FitReason.MANY_ATTACHMENTS,
            message=(
                f"{total} attachments (more than {compact_above}): each entry lists only "
                f"{', '.join(COMPACT_ATTACHMENT_FIELDS)}; the node's ENINode has MTU, DPDK "
                "and the interface name (kubectl get eninodes), EC2 the IP and subnet"
            ),
            observed_generation=generation,
        ),
    ]


def truncated_conditions(
    conditions: Iterable[Condition], *, listed: int, total: int, budget: int, generation: int
) -> list[Condition]:
    """`Degraded=True/StatusTruncated`: `listed` of `total` entries are in status
    (a Degraded problem already reported stays in the message, after ours)."""
    given = list(conditions)
    if not any(c.type == _DEGRADED for c in given):
        given.append(Condition(type=_DEGRADED, status=ConditionStatus.FALSE))
    message = (
        f"status lists {listed} of {total} attachments: the rest would take it past "
        f"{budget} bytes; every node's ENINode lists its ENIs (kubectl get eninodes)"
    )

    def marked(c: Condition) -> Condition:
        reported = c.status is ConditionStatus.TRUE and c.reason != FitReason.STATUS_TRUNCATED
        return dataclasses.replace(
            c,
            status=ConditionStatus.TRUE,
            reason=FitReason.STATUS_TRUNCATED,
            message=f"{message}; {c.reason}: {c.message}" if reported else message,
            observed_generation=generation,
        )

    return [marked(c) if c.type == _DEGRADED else c for c in given]


def untruncated_conditions(conditions: Iterable[Condition]) -> list[Condition]:
    """A `StatusTruncated` carried over from a previous status (the detaching
    writes pass the previous conditions on) is cleared once the list fits."""
    return [
        dataclasses.replace(
            c, status=ConditionStatus.FALSE, reason=FitReason.AS_EXPECTED, message=None
        )
        if c.type == _DEGRADED and c.reason == FitReason.STATUS_TRUNCATED
        else c
        for c in conditions
    ]


def is_truncated(conditions: Iterable[Condition]) -> bool:
    """Whether a status with these conditions lists only some of its entries."""
    return any(
        c.type == _DEGRADED
        and c.status is ConditionStatus.TRUE
        and c.reason == FitReason.STATUS_TRUNCATED
        for c in conditions
    )

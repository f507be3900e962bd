"""The NodeENI table people read: `eni-controller status` and `make demo` print it.

Pure text from the NodeENI dicts as the API server returns them. A compact
status (status_fit.py) has no instance, subnet, IP or interface per entry: those
columns stay empty, and its CompactStatus condition says where they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NOT_REPORTED = "-"  # INTERFACE when no node agent reported one


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _conditions(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(status.get("conditions") or [])


def describe(obj: Mapping[str, Any]) -> str:
    """One NodeENI: a head row, its conditions, then its attachments."""
    status = obj.get("status") or {}
    ready = next((c["status"] for c in _conditions(status) if c["type"] == "Ready"), "Unknown")
    head = [
        ["NAME", "READY", "ATTACHED", "DESIRED"],
        [
            obj["metadata"]["name"],
            ready,
            str(status.get("attachedCount", 0)),
            str(status.get("desiredCount", 0)),
        ],
    ]
    conditions = [["CONDITION", "STATUS", "REASON", "MESSAGE"]] + [
        [c["type"], c.get("status", ""), c.get("reason", ""), c.get("message", "")]
        for c in _conditions(status)
    ]
    rows = [["NODE", "INSTANCE", "ENI", "INDEX", "SUBNET", "IP", "MAC", "INTERFACE", "STATUS"]]
    attachments = status.get("attachments") or []
    for a in sorted(attachments, key=lambda a: (a["nodeID"], a.get("deviceIndex", 0))):
        rows.append(
            [
                a["nodeID"],
                a.get("instanceID", ""),
                a["eniID"],
                str(a.get("deviceIndex", "")),
                a.get("subnetID", ""),
                a.get("privateIPAddress", ""),
                a.get("macAddress", ""),
                a.get("interfaceName") or NOT_REPORTED,
                a.get("status", ""),
            ]
        )
    parts = [table(head)]
    if len(conditions) > 1:
        parts.append(table(conditions))
    parts.append(table(rows) if len(rows) > 1 else "no attachments")
    return "\n\n".join(parts)


def describe_all(objs: Iterable[Mapping[str, Any]]) -> str:
    """Every NodeENI, by name, separated by a blank line."""
    blocks = [describe(o) for o in sorted(objs, key=lambda o: o["metadata"]["name"])]
    return "\n\n\n".join(blocks) if blocks else "no NodeENIs"

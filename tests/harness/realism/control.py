"""The tests' handle on the realism server: switch rules on, read the counters.

Synchronous (urllib) on purpose: it is called from fixtures and from sync or
async tests alike, and each call is one loopback round trip. A refused
configure raises `RealismError` with the server's message (e.g. a misspelt
switch), so a test never silently runs without the rule it asked for.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any, ClassVar

from tests.harness.realism.config import AWS_THROTTLE, RULES

__all__ = ["AWS_RULES", "AWS_THROTTLE", "RealismControl", "RealismError"]

# Every AWS rule on; no latency, eventual consistency, throttling or faults.
AWS_RULES: dict[str, Any] = dict.fromkeys(RULES, True)


class RealismError(RuntimeError):
    """The realism server refused a control request."""


class RealismControl:
    AWS_RULES: ClassVar[dict[str, Any]] = AWS_RULES
    # AWS's default EC2 token buckets (see config.AWS_THROTTLE).
    AWS_THROTTLE: ClassVar[dict[str, Any]] = AWS_THROTTLE

    def __init__(self, endpoint: str, *, timeout: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    def configure(self, **switches: Any) -> dict[str, Any]:
        """Set these switches (others keep their value); return the new state."""
        state: dict[str, Any] = self._call("POST", "configure", switches)
        return state

    def aws_rules(self) -> dict[str, Any]:
        """Turn on every AWS rule (`AWS_RULES`)."""
        return self.configure(**self.AWS_RULES)

    def reset(self) -> None:
        """All switches off, counters zero, pending attach/detach finished."""
        self._call("POST", "reset", {})

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self._call("GET", "state")
        return state

    def counters(self) -> dict[str, dict[str, int]]:
        counters: dict[str, dict[str, int]] = self._call("GET", "calls")
        return counters

    def calls(self) -> dict[str, int]:
        """EC2 requests received per Action, the refused and failed ones included."""
        return self.counters()["calls"]

    def errors(self) -> dict[str, int]:
        """Error answers per AWS error code (ours and moto's)."""
        return self.counters()["errors"]

    def timeouts(self) -> dict[str, int]:
        """Injected timeouts per Action (executed, answer delayed)."""
        return self.counters()["timeouts"]

    def journal(self) -> list[dict[str, Any]]:
        """Every mutating EC2 call since the last reset, in the order they were
        answered: `seq`, `at` and `answered` (arrival and answer, the server's
        time.monotonic()), `action`, `caller` (access key id), `eni_id`,
        `attachment_id`, `subnet_id`, `node`, `nodeeni_uid` and `instance_tag` (a
        create's tags), `client_token`, `instance_id`, `device_index`, `error` (AWS
        code or None). See realism/journal.py."""
        entries: list[dict[str, Any]] = self._call("GET", "journal")
        return entries

    def enis_created(self) -> int:
        """ENIs really made (a CreateNetworkInterface replaying its ClientToken
        makes none; a refused or failed one neither)."""
        return self.counters()["created"].get("NetworkInterface", 0)

    def _call(self, method: str, name: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.endpoint}/_realism/{name}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]
            raise RealismError(f"{method} /_realism/{name}: HTTP {err.code}: {detail}") from err

"""Every EC2 request the controller makes, grouped by the logical call it belongs to.

Why: "retry only what retrying can fix" is a statement about sequences (a
call's attempts, and what each one was answered), which no counter shows. The
realism layer counts requests per action and errors per code; the
controller's metrics count retries per action. Neither says which answer a
retry followed. `AttemptLog.install` wraps one `EC2Client` (its `call`, the
logical call with retries, and `_attempt`, one request) so each logical call
records its attempts in order with the AWS error code each got (or None for an
answer). Then a test can check, call by call, that an attempt followed only a
retryable code, and count retries per code.

The wrapping is per instance and transparent: arguments, results and
exceptions pass through unchanged. A contextvar ties an attempt to its call,
so concurrent calls (each in its own task) never mix.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from eni_controller.aws.ec2 import EC2Client
from eni_controller.aws.errors import EC2Error

OK = "ok"
CANCELLED = "cancelled"  # the awaiting task was cancelled (reconcile timeout, shutdown)


@dataclass(kw_only=True, slots=True)
class LoggedCall:
    """One logical EC2 call: `codes` of its attempts in order (OK for an answer,
    else the EC2Error's code: the AWS error code, or the client's own such as
    ReadTimeoutError), and how it ended (OK, the final code, or CANCELLED). A call
    refused before any request (CircuitOpen) has no codes."""

    action: str
    codes: list[str] = field(default_factory=list)
    outcome: str = CANCELLED
    done: bool = False

    @property
    def retried_after(self) -> list[str]:
        """The codes that were followed by another attempt."""
        return self.codes[:-1]


_CURRENT: contextvars.ContextVar[LoggedCall | None] = contextvars.ContextVar(
    "attempt_log_call", default=None
)


@dataclass
class AttemptLog:
    calls: list[LoggedCall] = field(default_factory=list)

    def install(self, ec2: EC2Client) -> None:
        """Record every call and attempt `ec2` makes from now on."""
        call: Callable[..., Any] = ec2.call
        attempt: Callable[..., Any] = ec2._attempt

        async def logged_call(action: str, **params: Any) -> dict[str, Any]:
            logged = LoggedCall(action=action)
            self.calls.append(logged)
            token = _CURRENT.set(logged)
            try:
                response: dict[str, Any] = await call(action, **params)
            except EC2Error as err:
                logged.outcome = err.code
                raise
            else:
                logged.outcome = OK
                return response
            finally:
                logged.done = True
                _CURRENT.reset(token)

        async def logged_attempt(action: str, params: Any) -> dict[str, Any]:
            logged = _CURRENT.get()
            if logged is None:  # a request outside `call`: log it as a call of its own
                logged = LoggedCall(action=action, done=True)
                self.calls.append(logged)
            logged.codes.append(CANCELLED)
            try:
                response: dict[str, Any] = await attempt(action, params)
            except EC2Error as err:
                logged.codes[-1] = err.code
                raise
            except Exception as err:  # not an EC2 failure: passed on unclassified
                logged.codes[-1] = type(err).__name__
                raise
            logged.codes[-1] = OK
            return response

        ec2.call = logged_call  # type: ignore[method-assign]
        ec2._attempt = logged_attempt  # type: ignore[method-assign]

    def mark(self) -> int:
        """A position to slice the log at (`since`)."""
        return len(self.calls)

    def since(self, mark: int, until: int | None = None) -> list[LoggedCall]:
        return self.calls[mark:until]


def attempts_by_action(calls: Iterable[LoggedCall]) -> Counter[str]:
    """Requests sent per action (what the server counts)."""
    counts: Counter[str] = Counter()
    for call in calls:
        counts[call.action] += len(call.codes)
    return counts


def codes_answered(calls: Iterable[LoggedCall]) -> Counter[str]:
    """Error codes over every attempt (what the server answered, plus the
    client's own: a read timeout, a cancelled request)."""
    return Counter(code for call in calls for code in call.codes if code != OK)


def codes_by_action(calls: Iterable[LoggedCall]) -> Counter[tuple[str, str]]:
    """(action, error code) over every attempt: which action got which answer."""
    return Counter((c.action, code) for c in calls for code in c.codes if code != OK)


def retried_codes(calls: Iterable[LoggedCall]) -> Counter[str]:
    """Codes that were followed by another attempt of the same call."""
    return Counter(code for call in calls for code in call.retried_after)


def wrongly_retried(
    calls: Iterable[LoggedCall],
    *,
    retryable: Collection[str],
    retryable_if_idempotent: Collection[str] = (),
    not_idempotent: Collection[str] = (),
) -> list[str]:
    """Each retry that followed a code outside `retryable` (or, for an action in
    `not_idempotent`, one of `retryable_if_idempotent`), as 'Action: code' lines."""
    found: list[str] = []
    for call in calls:
        allowed = set(retryable)
        if call.action not in not_idempotent:
            allowed |= set(retryable_if_idempotent)
        found += [
            f"{call.action}: retried after {code} (attempts {call.codes})"
            for code in call.retried_after
            if code not in allowed
        ]
    return found


def given_up(calls: Iterable[LoggedCall]) -> Counter[str]:
    """Final codes of calls that ended in an error, per code."""
    return Counter(c.outcome for c in calls if c.done and c.outcome not in (OK, CANCELLED))

"""Everything the realism layer remembers, in one object behind one lock.

werkzeug serves each request on its own thread, and the moto patches read the
switches from inside moto's request handling, so switches, counters, buckets
and per-ENI bookkeeping live together and are only touched with `lock` held.
The lock is re-entrant (a patch may call another patched moto method); the
middleware serializes moto runs with a lock of its own, taken before this one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.harness.realism.config import Switches
from tests.harness.realism.journal import CallJournal
from tests.harness.realism.limits import Clock, FaultDice, Throttle

Hook = Callable[[], None]


@dataclass
class Transition:
    """An attach or detach accepted by the API that has not finished yet."""

    eni: Any  # moto's NetworkInterface
    attachment_id: str
    due: float


@dataclass
class EniLedger:
    """Per-ENI facts moto has no field for, keyed by ENI id."""

    attaching: dict[str, Transition] = field(default_factory=dict)
    detaching: dict[str, Transition] = field(default_factory=dict)
    born: dict[str, float] = field(default_factory=dict)
    # ClientToken -> (fingerprint of the request's other parameters, the ENI)
    client_tokens: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def clear(self) -> None:
        self.attaching.clear()
        self.detaching.clear()
        self.born.clear()
        self.client_tokens.clear()


class RealismState:
    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.switches = Switches()
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.timeouts: Counter[str] = Counter()
        # resources really made, per type: a ClientToken replay makes none
        self.created: Counter[str] = Counter()
        self.throttle: Throttle | None = None
        self.dice: FaultDice | None = None
        self.ledger = EniLedger()
        self.journal = CallJournal(clock)
        # Registered by the moto patches: settle due transitions before each
        # request, and finish pending ones on reset so moto is left consistent.
        self.before_request_hooks: list[Hook] = []
        self.flush_hooks: list[Hook] = []
        # True while moto runs an observer's request (the middleware sets it under
        # its moto lock, which serializes moto runs): nothing is hidden from it.
        self.observing = False

    def configure(self, payload: object) -> Switches:
        """Merge `payload` into the switches (ConfigError leaves them unchanged)."""
        with self.lock:
            switches = self.switches.merged(payload)
            assert isinstance(payload, dict)
            if "throttle" in payload:
                self.throttle = (
                    Throttle(switches.throttle, self.clock) if switches.throttle else None
                )
            if "faults" in payload:
                self.dice = FaultDice(switches.faults) if switches.faults else None
            self.switches = switches
            return switches

    def reset(self) -> None:
        """All switches off, counters zero, pending transitions finished now."""
        with self.lock:
            for hook in self.flush_hooks:
                hook()
            self.switches = Switches()
            self.throttle = None
            self.dice = None
            self.calls.clear()
            self.errors.clear()
            self.timeouts.clear()
            self.created.clear()
            self.ledger.clear()
            self.journal.clear()

    def forget_resources(self) -> None:
        """moto dropped every resource: drop our per-ENI bookkeeping too."""
        with self.lock:
            self.ledger.clear()

    def before_request(self) -> None:
        with self.lock:
            for hook in self.before_request_hooks:
                hook()

    def is_hidden(self, eni_id: str) -> bool:
        """True while a new ENI is still inside the consistency window (never to
        an observer)."""
        with self.lock:
            if self.observing:
                return False
            window = self.switches.consistency_window
            born = self.ledger.born.get(eni_id)
            return window > 0 and born is not None and self.clock() - born < window

    def counters(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "errors": dict(self.errors),
                "timeouts": dict(self.timeouts),
                "created": dict(self.created),
            }

"""Which ClientToken a slot's next CreateNetworkInterface sends.

EC2 answers a repeated ClientToken with the ENI the token first made, even
after that ENI was deleted, so a token fixed per slot would get a deleted ENI
back after every "do, then undo" (label off and on, ENI deleted by hand), and
the attach would fail with NotFound forever.

Invariants:
- A slot never sends a token whose ENI is known gone: `gone` was called (we
  deleted it, or a later describe no longer shows it), it answered NotFound
  after an attach of it succeeded (`found`: only a brand-new ENI is hidden by
  eventual consistency), or it answered NotFound for NOT_FOUND_GRACE_SECONDS.
- Tokens form a deterministic chain per slot: the first from the slot alone,
  each next from the one before and why it was left. A restarted controller
  walks the same tokens, so a create whose response was lost still returns
  the same ENI, never a second one.
- What is kept is bounded (retries.MAX_KEPT per kind): a forgotten slot only
  costs one create that returns a gone ENI and moves the chain on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from eni_controller.reconcile import tags
from eni_controller.reconcile.retries import SlotKey, keep_newest

NOT_FOUND_GRACE_SECONDS: Final = 15.0
MISMATCH: Final = "IdempotentParameterMismatch"


@dataclass(kw_only=True, slots=True)
class _Chain:
    token: str
    returned: str | None = None  # the ENI `token` answered with, once known


def next_token(token: str, *, left_because: str) -> str:
    """The token after `token`, left because of `left_because` (a gone ENI, or MISMATCH)."""
    return hashlib.sha256(f"{token}/{left_because}".encode()).hexdigest()


class ClientTokens:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._chains: dict[SlotKey, _Chain] = {}
        self._gone: dict[str, None] = {}  # ENI ids known gone (ordered: oldest first)
        self._not_found_since: dict[str, float] = {}
        self._found: dict[str, None] = {}  # ENI ids an attach succeeded for (oldest first)

    def token(self, key: SlotKey) -> str:
        """The token to send now: the chain moves past a token whose ENI is gone."""
        chain = self._chains.get(key)
        if chain is None:
            first = tags.client_token(
                uid=key.uid, node=key.node, instance_id=key.instance_id, subnet_id=key.subnet_id
            )
            chain = keep_newest(self._chains, key, _Chain(token=first))
        if chain.returned is not None and self.is_gone(chain.returned):
            chain.token = next_token(chain.token, left_because=chain.returned)
            chain.returned = None
        return chain.token

    def created(self, key: SlotKey, *, token: str, eni_id: str) -> bool:
        """Record that `token` answered with `eni_id`; False if that ENI is known gone."""
        chain = self._chains.get(key)
        if chain is None or chain.token != token:
            chain = keep_newest(self._chains, key, _Chain(token=token))
        chain.returned = eni_id
        return not self.is_gone(eni_id)

    def mismatched(self, key: SlotKey, *, token: str) -> None:
        """`token` answered IdempotentParameterMismatch: it is never sent again."""
        keep_newest(self._chains, key, _Chain(token=next_token(token, left_because=MISMATCH)))

    def gone(self, eni_id: str) -> None:
        """`eni_id` no longer exists (deleted by us, or vanished from EC2)."""
        keep_newest(self._gone, eni_id, None)
        self._not_found_since.pop(eni_id, None)
        self._found.pop(eni_id, None)

    def not_found(self, eni_id: str) -> bool:
        """EC2 answered NotFound: gone at once if `found` before, else after the grace."""
        if eni_id in self._found:
            self.gone(eni_id)
        elif eni_id not in self._not_found_since:
            keep_newest(self._not_found_since, eni_id, self._clock())
        return self.is_gone(eni_id)

    def found(self, eni_id: str) -> None:
        """An attach of `eni_id` succeeded: a NotFound from now on means deleted."""
        self._not_found_since.pop(eni_id, None)
        keep_newest(self._found, eni_id, None)

    def is_gone(self, eni_id: str) -> bool:
        if eni_id in self._gone:
            return True
        since = self._not_found_since.get(eni_id)
        return since is not None and self._clock() - since >= NOT_FOUND_GRACE_SECONDS

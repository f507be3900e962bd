"""One way to patch moto: wrap an attribute of one of its classes.

The realism modules each wrap the moto methods they need; several may wrap the
same handler (rules check first, lifecycle records after), so wrappers chain
in install order. `app.build_app` installs everything exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def wrap(owner: type[Any], name: str, make: Callable[[Any], Any]) -> None:
    """Replace `owner.name` with `make(original)` (original: function or property)."""
    original = owner.__dict__[name] if name in owner.__dict__ else getattr(owner, name)
    setattr(owner, name, make(original))

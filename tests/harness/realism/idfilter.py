"""moto answers a `network-interface-id` filter by pattern-matching every ENI
against every asked id.

`generic_filter` runs `fnmatch` for each ENI it holds times each value of the
filter, so a detach poll asking about 50 of 1,000 ENIs makes 50,000 matches,
and a 1,000-ENI teardown's polls, which between them ask about every ENI, make
about a million: quadratic in the ENI count, a cost EC2 does not have. As with
`tagindex`, the suite would measure the test server, not the client. This
patch narrows to the asked ids with a set first, when no value holds a
pattern character (a plain value matches only itself, so the answer is the
same, in moto's order), then applies the other filters as moto does. It
changes no behaviour and is always on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
from moto.ec2.utils import generic_filter

from tests.harness.realism.patching import wrap

ID_FILTER = "network-interface-id"
_PATTERN_CHARACTERS = frozenset("*?[")

GetAll = Callable[[Any, list[str] | None, dict[str, Any] | None], list[Any]]


def install() -> None:
    wrap(NetworkInterfaceBackend, "get_all_network_interfaces", _narrowed)


def _narrowed(original: GetAll) -> GetAll:
    def get_all_network_interfaces(
        self: Any, eni_ids: list[str] | None = None, filters: dict[str, Any] | None = None
    ) -> list[Any]:
        wanted = (filters or {}).get(ID_FILTER)
        if not isinstance(wanted, list) or any(
            _PATTERN_CHARACTERS.intersection(value) for value in wanted
        ):
            return original(self, eni_ids, filters)
        ids = set(wanted)
        others = {name: values for name, values in (filters or {}).items() if name != ID_FILTER}
        # moto's own handling of NetworkInterfaceIds (and its NotFound), no filters
        enis = [eni for eni in original(self, eni_ids, None) if eni.id in ids]
        return generic_filter(others, enis)

    return get_all_network_interfaces

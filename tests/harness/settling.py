"""Has a disturbed controller settled? Checks over several NodeENIs at once.

The API-server chaos cases (tests/chaos/test_apiserver.py) run several
NodeENIs through one disturbance and must say, per NodeENI and over the whole
run, that nothing was doubled or leaked and when things came right again.
Duplicates are `DuplicateWatch`'s (invariants.py), which follows several uids
with one describe per sample, so sampling cost does not grow with the number
of NodeENIs.

`settled` is "converged" for many NodeENIs: the invariants hold with every
wanted slot filled, each NodeENI Ready with all its attachments attached and
its status written for its latest spec (observedGeneration), and no mutating
EC2 call for `hold` seconds after. `torn_down` is the end of a
deletion: the NodeENI is gone from the API server (finalizer released) and no
ENI tagged with its uid is left in EC2.

EC2 is read with boto3 in a worker thread, so an in-process controller on the
same event loop keeps running while we look.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from http import HTTPStatus
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller import model
from eni_controller.reconcile import tags
from tests.harness.controller import condition, is_ready, read_nodeeni
from tests.harness.invariants import (
    Slot,
    attached_count,
    eni_tags,
    enis_of_uids,
    mutating_calls,
    state_violations,
)
from tests.harness.realism.control import RealismControl


async def _violations(
    api: client.ApiClient, ec2: Any, wanted: Mapping[str, Collection[Slot]]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Invariant violations of each NodeENI of `wanted` (by name), Ready and attached
    counts included; and the objects read."""
    objs = {name: await read_nodeeni(api, name) for name in wanted}
    uids = [obj["metadata"]["uid"] for obj in objs.values()]
    enis = await asyncio.to_thread(enis_of_uids, ec2, uids)
    problems: list[str] = []
    for name, obj in objs.items():
        uid = obj["metadata"]["uid"]
        mine = [e for e in enis if eni_tags(e).get(tags.NODEENI_UID_KEY) == uid]
        problems += state_violations(obj, mine, wanted=wanted[name])
        if not is_ready(obj):
            problems.append(f"{name}: not Ready: {condition(obj, 'Ready')}")
        generation = obj["metadata"].get("generation")
        observed = (obj.get("status") or {}).get("observedGeneration")
        if observed != generation:
            problems.append(f"{name}: status observed generation {observed} of {generation}")
        if attached_count(obj) != len(wanted[name]):
            problems.append(
                f"{name}: {attached_count(obj)} of {len(wanted[name])} attachments attached"
            )
    return problems, objs


async def settled(
    api: client.ApiClient,
    realism: RealismControl,
    ec2: Any,
    wanted: Mapping[str, Collection[Slot]],
    *,
    since: float,
    within: float,
    hold: float = 1.0,
) -> tuple[float | None, list[str]]:
    """Seconds from `since` (a time.monotonic()) until every NodeENI of `wanted`
    (name → its wanted (node, subnet id) slots) is converged and stays so, with no
    mutating EC2 call, for `hold` seconds; None and what was still wrong if that
    did not happen by `since + within`."""
    deadline = since + within
    while True:
        problems, objs = await _violations(api, ec2, wanted)
        if not problems:
            converged = time.monotonic() - since
            calls = await asyncio.to_thread(mutating_calls, realism)
            await asyncio.sleep(hold)
            problems, objs = await _violations(api, ec2, wanted)
            if not problems and await asyncio.to_thread(mutating_calls, realism) == calls:
                return converged, []
        if time.monotonic() >= deadline:
            statuses = [f"{name} status: {obj.get('status')}" for name, obj in objs.items()]
            return None, [*problems, *statuses]
        await asyncio.sleep(0.25)


async def _exists(api: client.ApiClient, name: str) -> bool:
    try:
        await client.CustomObjectsApi(api).get_cluster_custom_object(
            model.GROUP, model.VERSION, model.PLURAL, name
        )
    except ApiException as err:
        if err.status == HTTPStatus.NOT_FOUND:
            return False
        raise
    return True


async def torn_down(
    api: client.ApiClient,
    ec2: Any,
    uids: Mapping[str, str],
    *,
    since: float,
    within: float,
) -> tuple[float | None, list[str]]:
    """Seconds from `since` until every NodeENI of `uids` (name → uid) is gone from
    the API server and no ENI tagged with its uid is left; None and what was left
    if that did not happen by `since + within`."""
    deadline = since + within
    while True:
        left = [name for name in uids if await _exists(api, name)]
        enis = await asyncio.to_thread(enis_of_uids, ec2, list(uids.values()))
        if not left and not enis:
            return time.monotonic() - since, []
        if time.monotonic() >= deadline:
            by_uid = {uid: name for name, uid in uids.items()}
            return None, [
                *(f"{name}: still in the API server" for name in left),
                *(
                    f"{by_uid.get(eni_tags(e).get(tags.NODEENI_UID_KEY, ''), '?')}: "
                    f"{e['NetworkInterfaceId']} left ({e['Status']})"
                    for e in enis
                ),
            ]
        await asyncio.sleep(0.25)

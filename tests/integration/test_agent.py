"""The node agent against the real API server and real links in network namespaces.

Each simulated node is a namespace; the test plays the controller (it writes
the ENINode spec) and the EC2 hypervisor (it plugs a veth with the ENI's MAC
into the node's namespace). Agents run in-process, one per namespace, except
for the kill -9 case, which runs `python -m eni_controller agent` as a real
process. Needs root (network namespaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from pathlib import Path

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.agent.agent import Agent
from eni_controller.eninode import (
    GROUP,
    PLURAL,
    VERSION,
    ENINodeSpec,
    OperState,
    eninode_body,
)
from tests.harness.agents import (
    JUMBO,
    SETTLE,
    AgentProcess,
    ENINodes,
    SimNode,
    attach,
    entry,
    in_process_agent,
    link_is,
    new_eni,
    wait_cycle,
    wait_entry,
    wait_link,
)
from tests.harness.netns import LinkMonitor, LinkState
from tests.harness.waiting import until_async

HTTP_UNPROCESSABLE = 422

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


@root_only
async def test_three_nodes_bring_each_eni_up_at_9001_and_report_it(
    kube_api: client.ApiClient, three_nodes: list[SimNode], eninodes: ENINodes
) -> None:
    enis = [new_eni() for _ in three_nodes]
    for node, eni in zip(three_nodes, enis, strict=True):
        await attach(eninodes, node, eni)
    async with contextlib.AsyncExitStack() as stack:
        agents = [
            await stack.enter_async_context(in_process_agent(kube_api, n)) for n in three_nodes
        ]
        for node, eni in zip(three_nodes, enis, strict=True):
            state = await wait_link(node.hypervisor, eni[1], mtu=JUMBO)
            reported = await wait_entry(
                eninodes, node.name, eni[0], ready=1, interface_name=state.name, mtu=JUMBO
            )
            assert reported.oper_state == OperState.UP
            assert reported.mac_address == eni[1]
            assert reported.error == ""
        # each agent watches its own ENINode only
        for agent, node in zip(agents, three_nodes, strict=True):
            assert [o["metadata"]["name"] for o in agent.informer.list()] == [node.name]
        # and each touched only its own node's link: the others' namespaces are not its own
        for node, eni in zip(three_nodes, enis, strict=True):
            for other in three_nodes:
                if other is not node:
                    assert await other.hypervisor.link(eni[1]) is None


@root_only
async def test_an_mtu_or_state_changed_by_hand_is_restored_every_time(
    kube_api: client.ApiClient, one_node: SimNode, eninodes: ENINodes
) -> None:
    eni = new_eni()
    hv = one_node.hypervisor
    await attach(eninodes, one_node, eni)
    async with in_process_agent(kube_api, one_node):
        await wait_link(hv, eni[1], mtu=JUMBO)
        for hand_mtu in (1500, 1280, 1500):
            await hv.set_mtu_by_hand(eni[1], hand_mtu)
            await wait_link(hv, eni[1], mtu=JUMBO)
        await hv.set_down_by_hand(eni[1])
        await wait_link(hv, eni[1], mtu=JUMBO)
        await wait_entry(eninodes, one_node.name, eni[0], ready=1, mtu=JUMBO)


@root_only
async def test_spec_mtu_changes_are_applied_and_no_mtu_leaves_it_alone(
    kube_api: client.ApiClient, one_node: SimNode, eninodes: ENINodes
) -> None:
    eni = new_eni()
    hv = one_node.hypervisor
    await attach(eninodes, one_node, eni)
    async with in_process_agent(kube_api, one_node) as agent:
        await wait_link(hv, eni[1], mtu=JUMBO)
        for mtu in (1500, JUMBO, 1500):
            await eninodes.set_spec(one_node.name, ENINodeSpec.of([entry(eni, 1, mtu=mtu)]))
            await wait_link(hv, eni[1], mtu=mtu)
            await wait_entry(eninodes, one_node.name, eni[0], ready=1, mtu=mtu)
        # no MTU in the spec: a hand-set MTU stays, and is what is reported
        await eninodes.set_spec(one_node.name, ENINodeSpec.of([entry(eni, 1, mtu=None)]))
        await hv.set_mtu_by_hand(eni[1], 1400)
        await wait_cycle(agent, eninodes, one_node.name)
        assert await link_is(hv, eni[1], mtu=1400)
        await wait_entry(eninodes, one_node.name, eni[0], ready=1, mtu=1400)
        # and an MTU in the spec again takes over
        await eninodes.set_spec(one_node.name, ENINodeSpec.of([entry(eni, 1)]))
        await wait_link(hv, eni[1], mtu=JUMBO)


@root_only
async def test_an_mtu_above_the_links_max_is_an_error_and_others_are_unaffected(
    kube_api: client.ApiClient, one_node: SimNode, eninodes: ENINodes
) -> None:
    capped, plain = new_eni(), new_eni()
    hv = one_node.hypervisor
    await hv.plug(capped[1], cap_max_mtu=True)
    await hv.plug(plain[1])
    capped_link = await hv.link(capped[1])
    assert capped_link is not None
    assert 1500 < capped_link.max_mtu < JUMBO, capped_link
    limit = capped_link.max_mtu
    spec = ENINodeSpec.of([entry(capped, 1), entry(plain, 2)])
    await eninodes.create(one_node, spec)
    async with in_process_agent(kube_api, one_node):
        await wait_link(hv, plain[1], mtu=JUMBO)
        refused = await wait_entry(
            eninodes, one_node.name, capped[0], ready=1, error=f"mtu {JUMBO} above max {limit}"
        )
        assert refused.interface_name == capped_link.name
        assert refused.mtu == 1500
        assert await link_is(hv, capped[1], mtu=1500)  # brought up, MTU left as it was
        # the spec asks for what the link allows: applied, error gone; then too much again
        for mtu, error, ready in ((3000, "", 2), (JUMBO, f"mtu {JUMBO} above max {limit}", 1)):
            spec = ENINodeSpec.of([entry(capped, 1, mtu=mtu), entry(plain, 2)])
            await eninodes.set_spec(one_node.name, spec)
            await wait_entry(eninodes, one_node.name, capped[0], ready=ready, error=error)
        assert await link_is(hv, capped[1], mtu=3000)
        assert await link_is(hv, plain[1], mtu=JUMBO)


@root_only
async def test_a_link_that_appears_late_is_configured_when_it_appears(
    kube_api: client.ApiClient, three_nodes: list[SimNode], eninodes: ENINodes
) -> None:
    enis = [new_eni() for _ in three_nodes]
    for node, eni in zip(three_nodes, enis, strict=True):
        await eninodes.create(node, ENINodeSpec.of([entry(eni, 1)]))
    async with contextlib.AsyncExitStack() as stack:
        for node in three_nodes:
            await stack.enter_async_context(in_process_agent(kube_api, node))
        for node, eni in zip(three_nodes, enis, strict=True):
            absent = await wait_entry(eninodes, node.name, eni[0], oper_state=OperState.ABSENT)
            assert absent.interface_name is None
        monitors = [
            await stack.enter_async_context(LinkMonitor(node.netns)) for node in three_nodes
        ]
        await asyncio.sleep(5)  # the scenario: hot-plug completes 5 s after the attach
        for node, eni in zip(three_nodes, enis, strict=True):
            await node.hypervisor.plug(eni[1])
        latencies = []
        for node, eni, monitor in zip(three_nodes, enis, monitors, strict=True):
            state = await wait_link(node.hypervisor, eni[1], mtu=JUMBO)
            await wait_entry(eninodes, node.name, eni[0], ready=1, interface_name=state.name)
            appeared = monitor.first(functools.partial(_is, mac=eni[1]))
            configured = monitor.first(functools.partial(_is, mac=eni[1], mtu=JUMBO, up=True))
            assert appeared is not None
            assert configured is not None
            latencies.append(configured.at - appeared.at)
        for node, latency in zip(three_nodes, latencies, strict=True):
            ms = latency * 1000
            print(f"FIGURE agent late link: {node.name} configured {ms:.1f} ms after it appeared")
        worst = max(latencies) * 1000
        print(f"FIGURE agent late link: max {worst:.1f} ms over {len(latencies)} nodes")
        assert max(latencies) < 10.0  # generous: correctness here, speed is the figure


@root_only
async def test_kill_9_and_restart_writes_nothing_and_changes_no_link(
    kube_api: client.ApiClient,
    one_node: SimNode,
    eninodes: ENINodes,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    enis = [new_eni() for _ in range(3)]
    hv = one_node.hypervisor
    await attach(eninodes, one_node, *enis)
    agent = AgentProcess(node=one_node, kubeconfig=kubeconfig, log_dir=tmp_path)
    try:
        agent.start()
        await until_async(agent.ready, within=SETTLE)
        for eni in enis:
            await wait_link(hv, eni[1], mtu=JUMBO)
        await until_async(lambda: _summary_ready(eninodes, one_node.name, 3), within=SETTLE)
        before = await eninodes.get(one_node.name)
        macs = {eni[1] for eni in enis}
        for restart in (1, 2):
            async with LinkMonitor(one_node.netns) as monitor:
                await agent.kill()
                agent.start()
                await until_async(agent.ready, within=SETTLE)
                # ready = its first cycle is done: it observed, planned, and had nothing to do
                after = await eninodes.get(one_node.name)
                assert (
                    after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
                ), f"restart {restart}: the ENINode was written"
                assert await agent.metric("eni_agent_status_writes_total") == 0
                assert await agent.metric("eni_agent_actions_total") == 0
                assert await asyncio.to_thread(agent.get, "/healthz") == (200, "ok")
                # a later cycle, woken on purpose, still finds nothing to do
                cycles = await agent.metric("eni_agent_cycles_total")
                await eninodes.label(one_node.name, "test/poke", str(restart))
                await until_async(
                    functools.partial(_metric_above, agent, "eni_agent_cycles_total", cycles),
                    within=SETTLE,
                )
                assert await agent.metric("eni_agent_status_writes_total") == 0
                assert await agent.metric("eni_agent_actions_total") == 0
                poked = await eninodes.get(one_node.name)
                assert poked["status"] == before["status"], f"restart {restart}: report changed"
                before = poked
            assert monitor.about(macs) == [], f"restart {restart}: a link changed"
    finally:
        await agent.kill()
        print(agent.log_tail(5))


async def _summary_ready(eninodes: ENINodes, name: str, ready: int) -> bool:
    return (await eninodes.status(name)).summary.ready == ready


async def _metric_above(agent: AgentProcess, name: str, floor: float) -> bool:
    return await agent.metric(name) > floor


def _is(state: LinkState, *, mac: str, mtu: int | None = None, up: bool | None = None) -> bool:
    return (
        state.mac == mac
        and (mtu is None or state.mtu == mtu)
        and (up is None or state.admin_up == up)
    )


@root_only
async def test_round_trips_remove_readd_unplug_replug_and_mtu_removed(
    kube_api: client.ApiClient, one_node: SimNode, eninodes: ENINodes
) -> None:
    a, b = new_eni(), new_eni()
    hv = one_node.hypervisor
    both = await attach(eninodes, one_node, a, b)
    async with in_process_agent(kube_api, one_node) as agent:
        await wait_link(hv, a[1], mtu=JUMBO)
        await wait_link(hv, b[1], mtu=JUMBO)
        for _ in range(2):
            # A leaves the spec: its entry goes, its link is left as it is
            await eninodes.set_spec(one_node.name, ENINodeSpec.of([entry(b, 2)]))
            await until_async(lambda: _only(eninodes, one_node.name, {b[0]}), within=SETTLE)
            await hv.set_mtu_by_hand(a[1], 1500)
            await wait_cycle(agent, eninodes, one_node.name)
            assert await link_is(hv, a[1], mtu=1500)
            # A comes back: configured again and reported
            await eninodes.set_spec(one_node.name, both)
            state = await wait_link(hv, a[1], mtu=JUMBO)
            await wait_entry(eninodes, one_node.name, a[0], ready=2, interface_name=state.name)
        # the hypervisor detaches A while listed: absent; attaches it again under a new name
        await hv.unplug(a[1])
        await wait_entry(eninodes, one_node.name, a[0], ready=1, oper_state=OperState.ABSENT)
        new_name = await hv.plug(a[1])
        await wait_link(hv, a[1], mtu=JUMBO)
        await wait_entry(eninodes, one_node.name, a[0], ready=2, interface_name=new_name)
        # B's MTU removed from the spec: left alone, reported as found
        await eninodes.set_spec(one_node.name, ENINodeSpec.of([entry(a, 1), entry(b, 2, mtu=None)]))
        await hv.set_mtu_by_hand(b[1], 1400)
        await wait_entry(eninodes, one_node.name, b[0], ready=2, mtu=1400)
        await wait_cycle(agent, eninodes, one_node.name)
        assert await link_is(hv, b[1], mtu=1400)


@root_only
async def test_an_eninode_made_after_the_agent_started_deleted_and_made_again(
    kube_api: client.ApiClient, one_node: SimNode, eninodes: ENINodes
) -> None:
    eni = new_eni()
    hv = one_node.hypervisor
    await hv.plug(eni[1])
    async with in_process_agent(kube_api, one_node) as agent:
        await until_async(functools.partial(_ready, agent), within=SETTLE)  # nothing to do
        assert await link_is(hv, eni[1], mtu=1500, up=False)  # and nothing done
        spec = ENINodeSpec.of([entry(eni, 1)])
        for _ in range(2):
            await eninodes.create(one_node, spec)
            await wait_link(hv, eni[1], mtu=JUMBO)
            await wait_entry(eninodes, one_node.name, eni[0], ready=1)
            # the controller deletes the object (the node left every NodeENI): the
            # agent runs a cycle, and leaves the link as it is
            cycles = agent.cycles
            await eninodes.delete(one_node.name)
            await until_async(
                functools.partial(_gone_and_cycled, agent, one_node.name, cycles), within=SETTLE
            )
            assert await link_is(hv, eni[1], mtu=JUMBO)
            # a link no spec lists is none of its business: the event is not even a cycle
            cycles, ignored = agent.cycles, _ignored_events(agent)
            await hv.set_mtu_by_hand(eni[1], 1500)
            await until_async(functools.partial(_ignored_above, agent, ignored), within=SETTLE)
            assert agent.cycles == cycles
            assert await link_is(hv, eni[1], mtu=1500)


async def _ready(agent: Agent) -> bool:
    return agent.ready()[0]


async def _gone_and_cycled(agent: Agent, name: str, cycles: int) -> bool:
    return agent.informer.get(name) is None and agent.cycles > cycles


def _ignored_events(agent: Agent) -> float:
    value = agent.metrics.registry.get_sample_value(
        "eni_agent_link_events_total", {"relevant": "false"}
    )
    return value or 0.0


async def _ignored_above(agent: Agent, floor: float) -> bool:
    return _ignored_events(agent) > floor


async def _only(eninodes: ENINodes, name: str, eni_ids: set[str]) -> bool:
    return set((await eninodes.status(name)).by_eni()) == eni_ids


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("macAddress", "02:AB:00:00:00:01"),
        ("mtu", 10000),
        ("eniID", "eni-1"),
        ("deviceIndex", 0),
        ("dpdk", {"driver": "e1000"}),
    ],
)
async def test_the_schema_refuses_a_bad_entry(
    kube_api: client.ApiClient, unique: str, field: str, value: object
) -> None:
    good = entry(new_eni(), 1).to_dict()
    custom = client.CustomObjectsApi(kube_api)
    name = f"{unique}-schema"
    body = eninode_body(
        node_name=name, node_uid="00000000-0000-0000-0000-000000000000", spec=ENINodeSpec()
    )
    body["spec"] = {"interfaces": [{**good, field: value}]}
    with pytest.raises(ApiException) as refused:
        await custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    assert refused.value.status == HTTP_UNPROCESSABLE
    body["spec"] = {"interfaces": [good]}
    created = await custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    try:
        assert created["spec"]["interfaces"] == [good]
    finally:
        await custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)

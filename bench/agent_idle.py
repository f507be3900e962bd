"""Benchmark: what an idle node agent costs its node (RSS, CPU), with 3 ENIs.

The agent runs as a real process (`python -m eni_controller agent`) against the
local API server, in a network namespace of its own holding 3 ENIs (veths with
the ENIs' MACs) that its ENINode asks to be up at MTU 9001. Once it is ready
and has configured them, nothing changes for `--seconds`: the agent should
sleep on its watch and its netlink socket. CPU is read from /proc/<pid>/stat
(user + system ticks) at both ends of the window, RSS from /proc/<pid>/status
every few seconds; the agent's own counters say how many cycles, status writes
and link events the window saw (all should be 0).

    python -m bench.agent_idle [--seconds 60] [--out bench/results/agent_idle.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from eni_controller.eninode import ENINodeSpec
from tests.harness.agents import (
    JUMBO,
    AgentProcess,
    ENINodes,
    entry,
    new_eni,
    simulated_nodes,
    wait_link,
)
from tests.harness.apiserver import LocalAPIServer
from tests.harness.kube import api_client_from_kubeconfig, install_crd
from tests.harness.waiting import until_async

ENIS = 3
RSS_EVERY_SECONDS = 5.0
COUNTERS = (
    "eni_agent_cycles_total",
    "eni_agent_status_writes_total",
    "eni_agent_actions_total",
    "eni_agent_link_events_total",
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


async def run(state: Path, *, seconds: float) -> dict[str, Any]:
    server = LocalAPIServer(state / "api")
    try:
        endpoint = server.start()
        api = await api_client_from_kubeconfig(endpoint.kubeconfig)
        try:
            await install_crd(api)
            async with simulated_nodes(api, prefix="bench-idle", count=1) as (node,):
                enis = [new_eni() for _ in range(ENIS)]
                for eni in enis:
                    await node.hypervisor.plug(eni[1])
                spec = ENINodeSpec.of([entry(eni, i) for i, eni in enumerate(enis, 1)])
                await ENINodes(api).create(node, spec)
                agent = AgentProcess(node=node, kubeconfig=endpoint.kubeconfig, log_dir=state)
                started = time.monotonic()
                proc = agent.start()
                try:
                    await until_async(agent.ready, within=60)
                    ready_seconds = time.monotonic() - started
                    for eni in enis:
                        await wait_link(node.hypervisor, eni[1], mtu=JUMBO)
                    startup_cpu = cpu_seconds(proc.pid)
                    return await measure(agent, proc.pid, seconds, startup_cpu, ready_seconds)
                finally:
                    await agent.kill()
        finally:
            await api.close()
    finally:
        server.stop()


async def measure(
    agent: AgentProcess, pid: int, seconds: float, startup_cpu: float, ready_seconds: float
) -> dict[str, Any]:
    before = {name: await agent.metric(name) for name in COUNTERS}
    cpu_start, t_start = cpu_seconds(pid), time.monotonic()
    rss = [rss_mib(pid)]
    while (elapsed := time.monotonic() - t_start) < seconds:
        await asyncio.sleep(min(RSS_EVERY_SECONDS, seconds - elapsed))
        rss.append(rss_mib(pid))
    cpu = cpu_seconds(pid) - cpu_start
    window = time.monotonic() - t_start
    after = {name: await agent.metric(name) for name in COUNTERS}
    return {
        "enis": ENIS,
        "window_seconds": round(window, 1),
        "idle_cpu_seconds": round(cpu, 3),
        "idle_cpu_percent_of_one_core": round(100 * cpu / window, 3),
        "rss_mib_start": round(rss[0], 1),
        "rss_mib_end": round(rss[-1], 1),
        "rss_mib_max": round(max(rss), 1),
        "threads": threads(pid),
        "startup_cpu_seconds": round(startup_cpu, 3),
        "ready_seconds_after_spawn": round(ready_seconds, 2),
        "during_window": {name: after[name] - before[name] for name in COUNTERS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/agent_idle.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-idle-") as tmp:
        result = asyncio.run(run(Path(tmp), seconds=args.seconds))
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"FIGURE agent idle: {result['idle_cpu_percent_of_one_core']}% of one core,"
        f" RSS {result['rss_mib_max']} MiB max over {result['window_seconds']} s"
        f" with {ENIS} ENIs"
    )


if __name__ == "__main__":
    main()

"""The node agent (`eni-controller agent`): makes each node's ENIs usable and reports them.

It runs on every node (a DaemonSet), watches only its own node's ENINode, and
for each ENI listed there finds the link by MAC, brings it up at the wanted
MTU (or binds its PCI device for DPDK: pci.py, and keeps the SR-IOV device
plugin's config: deviceplugin.py) and writes what it found to the ENINode's
status (report.py). See agent/agent.py for the loop.
"""

"""The node agent (`eni-controller agent`): makes each node's ENIs usable and reports them.

On every node (a DaemonSet) it watches only its own ENINode; for each ENI listed
it finds the link by MAC and brings it up at the wanted MTU, or binds its PCI
device for DPDK (pci.py, deviceplugin.py), and writes what it found to the
ENINode's status (report.py). The loop is agent.py.
"""

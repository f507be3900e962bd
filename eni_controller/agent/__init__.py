"""The node agent: puts the ENIs the controller attached to this node into service.

One module per kind of host state it acts on (links, PCI drivers, the SR-IOV
device plugin's config) and one loop that reads the node's ENINode and drives them.
"""

"""Everything that talks to the Kubernetes API: informers, the work queue, leader election,
status writes.
"""

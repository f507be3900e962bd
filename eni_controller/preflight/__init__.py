"""`eni-controller check`: prove before a rollout that this deployment can do its job.

A controller that lacks one IAM permission or one RBAC verb fails hours later,
on the first node that needs that call. The preflight asks AWS (DryRun) and the
API server (SelfSubjectAccessReview) about every call the controller makes and
prints one table of what passes and what does not.
"""

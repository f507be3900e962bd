"""`eni-controller check`: prove before a rollout that this deployment can do its job
(a missing IAM permission or RBAC verb would otherwise fail hours later), by asking
AWS (DryRun) and the API server (SelfSubjectAccessReview) about every call."""

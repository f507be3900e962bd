"""Everything that talks to EC2: a typed client, error classes, pacing, retries
and the circuit breaker. Nothing outside this package sees botocore."""

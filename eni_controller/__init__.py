"""aws-multi-eni-controller."""

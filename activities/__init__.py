"""Activities: one module per outside system, each idempotent on a key from workflow data."""

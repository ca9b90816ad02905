"""What every edge shares, below the edges and above the workflows: the case gateway and
its read side, security, settings, database, Temporal, the outside systems' adapters,
the dev servers and observability (docs/architecture.md, "infra/, module by module")."""

"""Case workflows: deterministic orchestration only; rules come from `domain.policy`."""

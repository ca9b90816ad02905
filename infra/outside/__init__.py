"""The outside systems over HTTP, and which one the configuration picks."""

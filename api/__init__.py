"""The HTTP API: backend services, warehouse scanners and operators."""

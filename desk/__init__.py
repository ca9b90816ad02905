"""The operators' desk: queues, a case page and its decisions, for staff in a browser."""

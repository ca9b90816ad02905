"""Edges and plumbing: settings, Temporal client, database, dev stack, case gateway."""

"""Plumbing shared by every layer: configuration, database access, auth, crypto,
pagination, logging, typed errors and per-request context."""

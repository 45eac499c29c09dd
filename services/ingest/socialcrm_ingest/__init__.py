"""Ingest: the only door in; network webhooks and pollers normalized into Interaction events."""

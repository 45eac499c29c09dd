"""Ingest: the only door in; network webhooks and pollers normalised into Interaction events."""

"""Ingest: the only door in. Webhooks and pollers per network, normalised into Interaction events."""

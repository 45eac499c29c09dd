"""The network formats ingest reads, each normalized into Interaction events (pure)."""

"""The backfill command (``socialcrm-ingest-backfill``): past posts imported from JSONL files."""

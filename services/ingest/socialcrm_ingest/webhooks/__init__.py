"""The webhooks process (``socialcrm-ingest``): network webhooks in, Interaction events out."""

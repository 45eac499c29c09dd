"""CRM sink: joins social interactions to customer records in MongoDB, idempotently."""

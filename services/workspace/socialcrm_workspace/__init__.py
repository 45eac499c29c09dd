"""The agents' workspace: queues by SLA deadline, the customer across channels, replies."""

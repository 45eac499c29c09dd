"""Router: decides queue, priority, SLA deadline, escalation and next best channel."""

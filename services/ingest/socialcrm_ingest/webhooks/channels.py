"""The webhook channels, as the request pipeline (``handlers``) reads them: the rows of
``socialcrm_ingest.channels``, where each channel is declared once."""

from __future__ import annotations

from socialcrm_ingest.channels import WEBHOOKS, Webhook

__all__ = ["WEBHOOKS", "Webhook"]

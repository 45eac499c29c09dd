from pydantic import Field

from socialcrm.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    service_name: str = "ingest"
    http_port: int = 8001
    default_brand: str = Field("acme", description="Brand of webhooks that do not name one.")

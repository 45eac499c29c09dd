"""Label values that reach metrics and KPI dimensions: from a configured list, bounded.

Each distinct label value is a new Prometheus series (and a new KPI dimension), so a
value that comes from outside (a webhook's ``?brand=``, a field of an event) must not be
free text: brands come from the ``BRANDS`` allow-list, other values are bounded in
length, and anything else is counted under the fixed label ``other``.
"""

from __future__ import annotations

from collections.abc import Collection

from fastapi.exceptions import RequestValidationError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

OTHER = "other"
MAX_LABEL_LENGTH = 64


class BrandSettings(BaseSettings):
    """The brands this platform serves: mixed into the settings of the services that
    accept or count brands (ingest refuses others, kpi counts them as ``other``)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    brands: str = Field(
        "acme,acme-fr",
        description="Brands served, comma-separated: a webhook's ?brand= must be one of "
        f"them (422 otherwise), and KPIs count any other brand as {OTHER!r}.",
    )

    def brand_names(self) -> frozenset[str]:
        return names(self.brands)


def names(value: str) -> frozenset[str]:
    """The non-empty, stripped items of a comma-separated setting."""
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def bounded_label(value: str, allowed: Collection[str] | None = None) -> str:
    """``value`` when it is in ``allowed`` (or, without a list, short enough), else ``other``."""
    if allowed is not None:
        return value if value in allowed else OTHER
    return value if len(value) <= MAX_LABEL_LENGTH else OTHER


def require_brand(brand: str | None, allowed: Collection[str]) -> None:
    """Refuse (422 naming the ``brand`` query parameter) a brand that is not served."""
    if brand is None or brand in allowed:
        return
    choices = ", ".join(sorted(allowed))
    raise RequestValidationError(
        [
            {
                "type": "enum",
                "loc": ("query", "brand"),
                "msg": f"brand must be one of the configured brands (BRANDS): {choices}",
            }
        ]
    )

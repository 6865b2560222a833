"""One reporting currency at one rate, for every money figure the tool prints.

The audit prices in US dollars (provider list prices); everything shown to a person, the report,
the weekly report, the dataset card and the CLI lines, converts with the SAME `currency` and
`usd_to_currency`, read once from the `[report]` section of the config:

    [report]
    currency = "EUR"
    usd_to_currency = 0.92

Window totals and monthly figures are never printed side by side without their period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_CURRENCY = "AUD"  # the guides' thresholds quote AU$
DEFAULT_USD_TO_CURRENCY = 1.5


@dataclass(frozen=True)
class Money:
    currency: str = DEFAULT_CURRENCY
    usd_to_currency: float = DEFAULT_USD_TO_CURRENCY

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Money:
        section = (config or {}).get("report") or {}
        return cls(str(section.get("currency", DEFAULT_CURRENCY)),
                   float(section.get("usd_to_currency", DEFAULT_USD_TO_CURRENCY)))

    def convert(self, usd: float | None) -> float | None:
        return None if usd is None else usd * self.usd_to_currency

    def text(self, usd: float | None) -> str:
        """'18.22 AUD' (whole units from 100 up)."""
        value = self.convert(usd)
        if value is None:
            return "—"
        return f"{value:,.2f} {self.currency}" if abs(value) < 100 else f"{value:,.0f} {self.currency}"

    @property
    def basis(self) -> str:
        return f"{self.currency} (USD x {self.usd_to_currency:g})"

"""Money as integer minor units plus an ISO 4217 code; never a float."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]

# A single order line above this is not a consumer after-sales case (and usually a typo).
MAX_MINOR_UNITS = 100_000_000_00


class CurrencyMismatchError(ValueError):
    pass


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount_minor: Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS)]
    currency: CurrencyCode

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount_minor=0, currency=currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount_minor=self.amount_minor + other.amount_minor, currency=self.currency)

    def minus_floored_at_zero(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(
            amount_minor=max(0, self.amount_minor - other.amount_minor), currency=self.currency
        )

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_minor <= other.amount_minor

    def __str__(self) -> str:
        return f"{self.amount_minor // 100}.{self.amount_minor % 100:02d} {self.currency}"

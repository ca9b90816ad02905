"""Money as integer minor units plus an ISO 4217 code; never a float."""

from __future__ import annotations

from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# ISO 4217 also lists codes that name no money an order is paid in: precious metals,
# bond-market units, the IMF's SDR, the testing code and "no currency".
_NOT_MONEY = frozenset(
    {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)
ISO_4217_CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_MONEY


def _iso_4217(code: str) -> str:
    if code not in ISO_4217_CURRENCIES:
        raise ValueError("not the ISO 4217 code of a currency (e.g. EUR)")
    return code


CurrencyCode = Annotated[
    str,
    Field(
        min_length=3,
        max_length=3,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of a currency (not XXX, XTS, gold)",
    ),
    AfterValidator(_iso_4217),
]

# A single order line above this is not a consumer after-sales case (and usually a typo).
MAX_MINOR_UNITS = 100_000_000_00


class CurrencyMismatchError(ValueError):
    pass


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    # strict: a JSON integer, not "5990" nor true (a string or boolean is a caller's bug).
    amount_minor: Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS, strict=True)]
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

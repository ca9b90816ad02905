"""Searching personal identifiers without storing them: a keyed hash (a "blind index").

A tracking number is personal data (docs/privacy.md): PostgreSQL keeps only
HMAC-SHA256(key, normalised number), so the table alone reveals nothing, and an
attacker without the key cannot confirm a guess (an unkeyed hash of a short number
could be reversed by trying them all). The key is derived from the payload codec's
master keys (infra/security/codec.py KeyRing.derived): nothing new to configure, and it rotates
with them. A value is written under the newest key and searched under every key in the
ring, so rows written before a rotation are found until their key leaves the ring."""

from __future__ import annotations

import hashlib
import hmac
import re

from infra.security.codec import KeyRing

TRACKING_NUMBER_PURPOSE = b"aftersales blind index: tracking number v1"
# Carriers print tracking numbers with spaces or dashes in groups, and people type them
# in either case: all of those are the same number.
_SEPARATORS = re.compile(r"[\s-]+")


def normalised_tracking_number(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


class TrackingNumberIndex:
    def __init__(self, ring: KeyRing) -> None:
        self._keys = ring.derived(TRACKING_NUMBER_PURPOSE)

    def token(self, value: str) -> bytes:
        """What is stored: the hash under the newest key."""
        return self._hash(self._keys[0], value)

    def tokens(self, value: str) -> list[bytes]:
        """What is searched for: the hash under every key of the ring."""
        return [self._hash(key, value) for key in self._keys]

    @staticmethod
    def _hash(key: bytes, value: str) -> bytes:
        normalised = normalised_tracking_number(value).encode()
        return hmac.new(key, normalised, hashlib.sha256).digest()

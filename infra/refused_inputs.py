"""Bad input loses nothing a person needs: what every way in refused is kept in
refused_inputs with the reason (a person resolves it, infra/kept_for_review.py)."""

from __future__ import annotations

import asyncpg

# What refused_inputs keeps of one refused input: enough for a person to act on, and a
# bound on what a caller can make us store (the API's body limit is larger).
MAX_KEPT_CHARS = 64 * 1024


class RefusedInputs:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, *, source: str, operation: str, payload: str, errors: str) -> None:
        """What was refused, kept with the reason, each cut to MAX_KEPT_CHARS (a note says
        how much more there was)."""
        await self._pool.execute(
            """INSERT INTO refused_inputs (source, operation, payload, errors)
               VALUES ($1, $2, $3, $4)""",
            source,
            _storable(operation),
            _storable(payload),
            {"message": _storable(errors)},
        )

    async def any_from(self, *, source: str) -> bool:
        """Whether any refused input from `source` is kept (the demo keeps one, once)."""
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM refused_inputs WHERE source = $1)", source
            )
        )


def _storable(text: str) -> str:
    """Refused input may carry NUL (a raw byte in a broken JSON body), which PostgreSQL
    text and jsonb refuse: it is kept escaped instead."""
    escaped = text.replace("\x00", "\\x00")
    if len(escaped) <= MAX_KEPT_CHARS:
        return escaped
    return (
        f"{escaped[:MAX_KEPT_CHARS]}[... {len(escaped) - MAX_KEPT_CHARS} more characters not kept]"
    )

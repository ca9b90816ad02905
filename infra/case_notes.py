"""Internal notes on a case: staff free text, recorded under its author beside the case's
ledger (`case_notes`) and read with it (`GET /cases/{id}/ledger`).

Straight into PostgreSQL, not through the workflow: a note decides nothing and the case
never reads it, so sending it through Temporal would only add personal free text to a
history (kept to the namespace's retention, beyond erasure's reach but for the data
key) and a workflow task per note; and a note may be written on a closed case (a
chargeback, a dispute months later) whose workflow no longer runs. It is not a
`case_events` row either: the workflow numbers those steps. Erasure and retention
replace its words (`redact_free_text`), as for every reason a person wrote."""

from __future__ import annotations

import asyncpg

from domain.errors import FieldError
from domain.view import CaseNote
from infra.security.identity import Caller


class UnknownNoteCaseError(FieldError, LookupError):
    pass


class NoteIdTakenError(FieldError, ValueError):
    pass


_COLUMNS = "note_id, author, role, written_at, body, redacted_at"


class CaseNotes:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, case_id: str, note_id: str, body: str, author: Caller) -> CaseNote:
        """The note as recorded. Idempotent on (case, note id): the same note again
        answers the first; other words under a taken id are NoteIdTakenError."""
        row = await self._pool.fetchrow(
            f"""INSERT INTO case_notes (case_id, note_id, author, role, body)
                SELECT case_id, $2, $3, $4, $5 FROM cases WHERE case_id = $1
                ON CONFLICT (case_id, note_id) DO NOTHING RETURNING {_COLUMNS}""",
            case_id, note_id, author.actor, author.role.value, body,
        )  # fmt: skip
        if row is not None:
            return CaseNote(**dict(row))
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM case_notes WHERE case_id = $1 AND note_id = $2",
            case_id, note_id,
        )  # fmt: skip
        if row is None:
            raise UnknownNoteCaseError(f"no case {case_id!r}", field="case_id")
        kept = CaseNote(**dict(row))
        if (kept.author, kept.body) != (author.actor, body):
            raise NoteIdTakenError(
                f"{note_id} already names another note on case {case_id}", field="note_id"
            )
        return kept

    async def of_case(self, case_id: str) -> list[CaseNote]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM case_notes WHERE case_id = $1 ORDER BY written_at, note_id",
            case_id,
        )
        return [CaseNote(**dict(r)) for r in rows]

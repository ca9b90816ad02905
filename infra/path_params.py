"""Path parameters every router shares: the API's and the desk's."""

from typing import Annotated

from fastapi import Path

from domain.workflow_ids import CASE_ID_PATTERN, MAX_CASE_ID_LENGTH, MIN_CASE_ID_LENGTH

CaseId = Annotated[
    str,
    Path(min_length=MIN_CASE_ID_LENGTH, max_length=MAX_CASE_ID_LENGTH, pattern=CASE_ID_PATTERN),
]
# An unmatched scan's id: any text but NUL, which PostgreSQL text cannot hold.
ScanId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]

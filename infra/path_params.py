"""Path parameters every router shares: the API's and the desk's."""

from typing import Annotated

from fastapi import Path

# `<kind>-<order>-<line>-<request>`, each part a business key (R2).
CASE_ID_PATTERN = r"^[a-z_]+-[A-Za-z0-9][A-Za-z0-9_.-]*$"
MIN_CASE_ID_LENGTH, MAX_CASE_ID_LENGTH = 7, 220
CaseId = Annotated[
    str,
    Path(min_length=MIN_CASE_ID_LENGTH, max_length=MAX_CASE_ID_LENGTH, pattern=CASE_ID_PATTERN),
]
# An unmatched scan's id: any text but NUL, which PostgreSQL text cannot hold.
ScanId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]

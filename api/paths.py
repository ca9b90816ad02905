"""Path parameters every router shares."""

from typing import Annotated

from fastapi import Path

# `<kind>-<order>-<line>-<request>`, each part a business key (R2).
CASE_ID_PATTERN = r"^[a-z_]+-[A-Za-z0-9][A-Za-z0-9_.-]*$"
CaseId = Annotated[str, Path(min_length=7, max_length=220, pattern=CASE_ID_PATTERN)]

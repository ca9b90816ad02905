"""Who may call a route: the proven caller, acting in the first of the route's roles they
hold (api/auth.py `requires`), as a parameter's type."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth import requires
from domain.case import INTEGRATORS, STAFF_BY_AUTHORITY, Role
from infra.security.identity import Caller

Service = Annotated[Caller, Depends(requires(Role.SERVICE))]
Scanner = Annotated[Caller, Depends(requires(Role.WAREHOUSE))]
CarrierDesk = Annotated[Caller, Depends(requires(Role.CARRIER))]
proven_staff = requires(*STAFF_BY_AUTHORITY)
Staff = Annotated[Caller, Depends(proven_staff)]
Arbiter = Annotated[Caller, Depends(requires(Role.ARBITER))]
PrivacyOfficer = Annotated[Caller, Depends(requires(Role.PRIVACY))]
# A case as each may read it: the shop's backend, staff, and the arbiter a disputed one.
CaseReader = Annotated[Caller, Depends(requires(Role.SERVICE, *STAFF_BY_AUTHORITY, Role.ARBITER))]
# Staff work the queues and read the ledger; the arbiter its disputed cases only (R19).
Auditor = Annotated[Caller, Depends(requires(*STAFF_BY_AUTHORITY, Role.ARBITER))]
# Refused input is raw bodies that may hold anything: the integrators' desk only.
IntegratorsDesk = Annotated[Caller, Depends(requires(*INTEGRATORS))]

"""Every message a case takes is named once, by its handler (infra/case_messages.py): the
registry holds each signal and Update that every kind's workflow registers, under the name
the SDK registers it by, so the API, the desk, the CLI and the grants' authority table
cannot drift from the workflows."""

from __future__ import annotations

from temporalio import workflow

from infra.case_messages import (
    SIGNAL_BY_NAME,
    SIGNALS_OF_KIND,
    UPDATE_BY_NAME,
    UPDATES_OF_KIND,
    WORKFLOW_OF_KIND,
)
from infra.security.grants import AUTHORITY


def test_the_registry_names_every_handler_each_kind_registers() -> None:
    for kind, definition in WORKFLOW_OF_KIND.items():
        # The SDK's own record of the class's handlers, read here only, as a check.
        registered = workflow._Definition.must_from_class(definition)
        assert {n for n in registered.signals if n} == SIGNALS_OF_KIND[kind], kind
        assert {n for n in registered.updates if n} == UPDATES_OF_KIND[kind], kind
        for name in SIGNALS_OF_KIND[kind]:
            assert registered.signals[name].fn is SIGNAL_BY_NAME[name]
        for name in UPDATES_OF_KIND[kind]:
            assert registered.updates[name].fn is UPDATE_BY_NAME[name]


def test_every_update_has_its_senders_in_the_grants_authority_table() -> None:  # R23
    assert set(AUTHORITY) == set(UPDATE_BY_NAME.values())

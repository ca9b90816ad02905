"""The desk's decisions are one table (desk/case_actions.py `DESK_ACTIONS`): every Update
a desk role may send has a form there, each form's page fragment posts the fields its
form model takes, and who may send one is the authority the registry gives its handler
(infra/case_messages.py `AUTHORITY`)."""

from __future__ import annotations

import re

import pytest

from desk.case_actions import DESK_ACTIONS, DeskAction, actions_of_role
from desk.router import DESK_ROLES
from domain.case import Role
from infra.case_messages import AUTHORITY, UPDATE_BY_NAME
from tests.processes import ROOT

_ACTION_TEMPLATES = ROOT / "desk" / "templates" / "actions"


def test_every_update_a_desk_role_may_send_has_a_desk_form() -> None:  # R21, R23
    sent_by_desk_roles = {
        handler for handler, roles in AUTHORITY.items() if set(roles) & set(DESK_ROLES)
    }
    assert {form.handler for form in DESK_ACTIONS.values()} == sent_by_desk_roles
    assert all(form.handler in UPDATE_BY_NAME.values() for form in DESK_ACTIONS.values())


@pytest.mark.parametrize("action", list(DeskAction))
def test_a_forms_fragment_posts_the_fields_its_form_takes(action: DeskAction) -> None:
    form = DESK_ACTIONS[action]
    posted = set(re.findall(r'name="(\w+)"', (_ACTION_TEMPLATES / f"{action}.html").read_text()))
    taken = form.fields.model_fields
    assert posted <= taken.keys(), f"{action} posts fields its form refuses"
    assert {name for name, field in taken.items() if field.is_required()} <= posted


def test_a_roles_forms_are_those_the_grants_let_it_send() -> None:
    assert actions_of_role(Role.ARBITER) == [DeskAction.RULE]
    for role in (Role.AGENT, Role.SUPERVISOR, Role.MANAGER):
        assert DeskAction.RESOLVE_PAYMENT in actions_of_role(role)
        assert DeskAction.RULE not in actions_of_role(role)
    assert actions_of_role(Role.SERVICE) == []

"""The deals edge on its own, without HTTP: the rights checks raise the kernel's refusals (404 as if the deal did
not exist, 403), and the request forms give new things their ids while the domain's commands take them."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from services.deals import domain as d
from services.deals.api import forms
from services.deals.api.rights import numbers_scope, writable
from shared.core.decider import ForbiddenError, NotVisibleError
from shared.edge.auth import Principal
from shared.edge.problems import status_of
from tests.unit.deals.test_rules import DEAL, OPENED, build

LAN = Principal("u-sales", frozenset({"sales"}), "north")
BINH = Principal("u-binh", frozenset({"sales"}), "north")
MANAGER = Principal("u-mai", frozenset({"sales_manager"}), "north")
OTHER_MANAGER = Principal("u-tuan", frozenset({"sales_manager"}), "south")
AUDITOR = Principal("u-audit", frozenset({"auditor"}))


def test_a_deal_the_caller_cannot_see_is_not_visible_and_one_they_cannot_change_is_forbidden() -> None:
    deal = build(OPENED)  # u-sales's, in north
    writable(DEAL, LAN)(deal, 1)
    writable(DEAL, MANAGER)(deal, 1)
    for who, error, status in ((BINH, NotVisibleError, 404), (OTHER_MANAGER, NotVisibleError, 404)):
        with pytest.raises(error) as refused:
            writable(DEAL, who)(deal, 1)
        assert (status_of(refused.value), str(refused.value)) == (status, f"no deal {DEAL}")
    with pytest.raises(NotVisibleError):
        writable(DEAL, MANAGER)(d.Deal(), 0)
    with pytest.raises(ForbiddenError) as forbidden:
        writable(DEAL, AUDITOR)(deal, 1)
    assert (status_of(forbidden.value), forbidden.value.rule) == (403, "forbidden")


def test_a_salesperson_reassigns_a_deal_only_to_themselves() -> None:
    deal = build(OPENED)
    writable(DEAL, LAN, d.Reassign(owner_id="u-sales", team_id=None))(deal, 1)
    with pytest.raises(ForbiddenError, match="reassigned"):
        writable(DEAL, LAN, d.Reassign(owner_id="u-binh", team_id="north"))(deal, 1)
    writable(DEAL, MANAGER, d.Reassign(owner_id="u-binh", team_id="north"))(deal, 1)


def test_numbers_follow_the_callers_scope() -> None:
    assert numbers_scope(LAN, None, None) == ("u-sales", None)
    assert numbers_scope(MANAGER, "u-binh", None) == ("u-binh", "north")
    assert numbers_scope(AUDITOR, None, "south") == (None, "south")
    with pytest.raises(ForbiddenError):
        numbers_scope(LAN, "u-binh", None)
    with pytest.raises(ForbiddenError):
        numbers_scope(MANAGER, None, "south")


@pytest.mark.parametrize(
    ("form", "field", "body"),
    [
        (forms.LogActivity, "activity_id", {"activity_type": "call", "channel": "phone"}),
        (forms.SendQuote, "quote_id", {"lines": [], "valid_until": "2026-12-31"}),
        (forms.StartFollowUp, "follow_up_id", {"due_on": "2026-12-31"}),
    ],
)
def test_the_edge_gives_a_new_thing_its_id_and_the_domain_takes_one(
    form: type[d.Command], field: str, body: dict
) -> None:
    command = d.COMMANDS[form.name]
    assert command.model_fields[field].is_required()
    assert not form.model_fields[field].is_required()
    if form is forms.SendQuote:
        body["lines"] = [{"product": "Tủ", "quantity": "1", "unit_price": {"amount": "1000", "currency": "VND"}}]
    filled, named = form.model_validate(body), form.model_validate(body | {field: str(DEAL)})
    assert isinstance(filled, command)
    assert isinstance(getattr(filled, field), uuid.UUID)
    assert getattr(named, field) == DEAL
    with pytest.raises(ValidationError):
        command.model_validate(body)


def test_every_command_but_opening_a_deal_has_a_route_body_and_forms_keep_the_schemas() -> None:
    assert {c.name for c in forms.COMMAND_BODIES} == set(d.COMMANDS) - {"open_deal"}
    for command, form in forms.FORMS.items():
        assert issubclass(form, command)
        theirs, ours = command.model_json_schema(), form.model_json_schema()
        for schema in (theirs, ours):
            schema.pop("examples", None)
            schema.pop("description", None)
            schema.pop("required", None)
        assert ours == theirs, command.name

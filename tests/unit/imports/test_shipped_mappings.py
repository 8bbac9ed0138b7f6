"""The shipped mappings of other CRMs (Pipedrive, HubSpot, Odoo) against the services they feed, without running
anything: every fact names a command its kind's batch route takes (the first one creating, the next ones after it)
with body keys that command has; every stage they map to is a stage of the default pipeline, every activity type an
activity kind; every file cites its sources and marks what no source showed. A service renaming a command, a field
or a stage breaks this test, not an import at a customer's."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from services.agenda.api.imports import THEN as AGENDA_THEN
from services.agenda.domain.commands import Schedule
from services.deals.api.imports import THEN as DEALS_THEN
from services.deals.domain import DEFAULT_STAGES, OpenDeal
from services.directory.domain import customer_commands as c
from services.leads.api.imports import THEN as LEADS_THEN
from services.leads.domain import CaptureLead
from shared.core.channels import ActivityKind
from shared.imports import mapping

SOURCES = ("pipedrive", "hubspot", "odoo")
FIRST: dict[str, dict[str, type[BaseModel]]] = {
    "organisation": {"register": c.RegisterOrganisation},
    "person": {"register": c.RegisterPerson},
    "deal": {"open_deal": OpenDeal},
    "activity": {"schedule": Schedule},
    "lead": {"capture": CaptureLead},
}
THEN: dict[str, dict[str, type[BaseModel]]] = {
    "organisation": {"change": c.ChangeOrganisation, "reassign": c.ReassignOrganisation},
    "person": {"change": c.ChangePerson, "reassign": c.ReassignPerson},
    "deal": dict(DEALS_THEN),
    "activity": dict(AGENDA_THEN),
    "lead": dict(LEADS_THEN),
}


@pytest.mark.parametrize("source", SOURCES)
def test_every_fact_is_a_command_its_service_takes_with_the_fields_it_has(source: str) -> None:
    loaded = mapping.load(mapping.builtin(source))
    for spec in loaded.files:
        for row in spec.rows:
            for index, fact in enumerate(row.facts):
                commands = FIRST[row.kind] if index == 0 else THEN[row.kind]
                assert fact.command in commands, f"{source} {spec.name} {row.kind}: {fact.command}"
                fields = set(commands[fact.command].model_fields)
                assert set(fact.body) <= fields, f"{source} {spec.name} {fact.command}: {set(fact.body) - fields}"


@pytest.mark.parametrize("source", SOURCES)
def test_stages_and_activity_types_map_onto_ours(source: str) -> None:
    loaded = mapping.load(mapping.builtin(source))
    stages = {s.stage_id for s in DEFAULT_STAGES}
    assert loaded.enums["stage"] and set(loaded.enums["stage"].values()) <= stages
    if "activity_type" in loaded.enums:
        assert set(loaded.enums["activity_type"].values()) <= {k.value for k in ActivityKind}


@pytest.mark.parametrize("source", SOURCES)
def test_each_mapping_cites_its_sources_and_marks_the_unverified(source: str) -> None:
    loaded = mapping.load(mapping.builtin(source))
    assert all(s.startswith(("https://", "Export header", "Column spellings", "UNVERIFIED")) for s in loaded.sources)
    assert any(s.startswith("https://") for s in loaded.sources)

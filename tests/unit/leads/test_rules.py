"""The lead rule table pair by pair, the lifecycle, and scoring with decay under a frozen clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.leads import domain as d
from services.leads import events as ev
from services.leads.events import Attribution, LeadContact, LeadConverted, LeadScored
from shared.core.money import Money
from shared.edge.problems import status_of
from testkit.slices import Slice

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LEAD = uuid.UUID("00000000-0000-0000-0000-0000000000e1")
OTHER = uuid.UUID("00000000-0000-0000-0000-0000000000e2")
DEAL = uuid.UUID("00000000-0000-0000-0000-0000000000d1")
CAPTURE = d.CaptureLead(
    source="website_form",
    external_id="f-1",
    contact=LeadContact(
        name="Đỗ Thu Trang", email="trang@congty.vn", company="Công ty Hạ Long", title="Giám đốc kinh doanh"
    ),
    attribution=Attribution(source="website_form", campaign_id="tet-2027"),
)


def run(state: d.Lead, command: d.Command) -> list:
    return d.decide(state, command, NOW, LEAD, actor="u-mkt")


def build(*commands: d.Command) -> d.Lead:
    state = d.Lead()
    for c in commands:
        state = d.lead_decider.fold(run(state, c), state)
    return state


ASSIGNED = d.Assign(owner_id="u-lan", team_id="north")
STATES = {
    "none": d.Lead(),
    "new": build(CAPTURE),
    "contacted": build(CAPTURE, d.RecordContact(channel="phone")),
    "nurturing": build(CAPTURE, d.StartNurture(sequence_id="welcome")),
    "mql": build(CAPTURE, d.StartNurture(sequence_id="welcome"), d.Qualify(level="mql")),
    "sql": build(CAPTURE, ASSIGNED, d.StartNurture(sequence_id="welcome"), d.Qualify(level="sql")),
    "converted": build(CAPTURE, ASSIGNED, d.Qualify(level="sql"), d.Convert(customer="Hạ Long", title="Máy lạnh")),
    "disqualified": build(CAPTURE, d.Disqualify(reason="no_budget")),
    "merged": build(CAPTURE, d.MergeInto(survivor_id=OTHER)),
}
COMMANDS: dict[str, d.Command] = {
    "capture": CAPTURE,
    "record_duplicate": d.RecordDuplicate(duplicate_of=OTHER, match_keys=("email",)),
    "merge_into": d.MergeInto(survivor_id=OTHER),
    "absorb": d.Absorb(other_lead_id=OTHER),
    "update_contact": d.UpdateContact(contact=LeadContact(phone="+84912345678"), reason="corrected"),
    "assign": d.Assign(owner_id="u-binh", team_id="north"),
    "record_engagement": d.RecordEngagement(kind="email_click", asset_id="m-1"),
    "segment": d.Segment(segments=("hộ kinh doanh",)),
    "score": d.Score(),
    "contact": d.RecordContact(channel="zalo"),
    "start_nurture": d.StartNurture(sequence_id="reactivation"),
    "stop_nurture": d.StopNurture(reason="asked to stop"),
    "record_nurture_email": d.RecordNurtureEmail(step=1, message_id="m-1"),
    "extend_offer": d.ExtendOffer(offer_id="giam-10"),
    "start_trial": d.StartTrial(product="Phần mềm", ends_on=NOW.date() + timedelta(days=14)),
    "qualify": d.Qualify(level="sql"),
    "disqualify": d.Disqualify(reason="wrong_fit"),
    "convert": d.Convert(customer="Hạ Long", title="Máy lạnh", owner_id="u-lan"),
    "recycle": d.Recycle(reason="not now"),
    "record_outcome": d.RecordOutcome(deal_id=DEAL, won=True, value=Money.of(50_000_000), at=NOW),
    "erase": d.Erase(reason="request"),
}
A = "allowed"
STATUSES = ("none", "new", "contacted", "nurturing", "mql", "sql", "converted", "disqualified", "merged")
NF, EX, MG = "lead_not_found", "lead_exists", "lead_merged"
# none   new  contacted  nurturing  mql  sql  converted  disqualified  merged
TABLE = {
    "capture": (A, EX, EX, EX, EX, EX, EX, EX, EX),
    "record_duplicate": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "merge_into": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "absorb": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "update_contact": (NF, A, A, A, A, A, A, A, MG),
    "assign": (NF, A, A, A, A, A, A, "lead_disqualified", MG),
    "record_engagement": (NF, A, A, A, A, A, A, A, MG),
    "segment": (NF, A, A, A, A, A, A, A, MG),
    "score": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "contact": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "start_nurture": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "stop_nurture": (NF, "not_nurtured", "not_nurtured", A, A, A, "lead_converted", "lead_disqualified", MG),
    "record_nurture_email": (NF, "not_nurtured", "not_nurtured", A, A, A, "lead_converted", "lead_disqualified", MG),
    "extend_offer": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "start_trial": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "qualify": (NF, A, A, A, A, "lead_sql", "lead_converted", "lead_disqualified", MG),
    "disqualify": (NF, A, A, A, A, A, "lead_converted", "lead_disqualified", MG),
    "convert": (NF, "lead_new", "lead_contacted", "lead_nurturing", A, A, "lead_converted", "lead_disqualified", MG),
    "recycle": (NF, "lead_new", "lead_contacted", "lead_nurturing", "lead_mql", "lead_sql", A, A, MG),
    "record_outcome": (
        NF,
        "lead_new",
        "lead_contacted",
        "lead_nurturing",
        "lead_mql",
        "lead_sql",
        A,
        "lead_disqualified",
        MG,
    ),
    "erase": (NF, A, A, A, A, A, A, A, A),
}
PAIRS = [(s, c, TABLE[c][i]) for c in TABLE for i, s in enumerate(STATUSES)]


def test_the_table_covers_every_command() -> None:
    assert set(TABLE) == set(d.RULES) == set(COMMANDS)


@pytest.mark.parametrize(("status", "command", "expected"), PAIRS, ids=[f"{s}-{c}" for s, c, _ in PAIRS])
def test_rule(status: str, command: str, expected: str) -> None:
    state = STATES[status]
    assert state.status.value == status
    if expected == A:
        assert run(state, COMMANDS[command]), f"{command} on a {status} lead should produce events"
    else:
        with pytest.raises(d.LeadRuleError) as refused:
            run(state, COMMANDS[command])
        assert refused.value.rule == expected
        assert status_of(refused.value) == (404 if expected == NF else 409)


# ---------------------------------------------------------------------------------------------- given → when → then
# Where the answer depends on history, the test reads as the history (events), the command, and the events or
# the refusal it gives (testkit.slices).
CONTACT = LeadContact(name="Đỗ Thu Trang", email="trang@congty.vn")
lead = Slice(d.lead_decider, lambda state, command: d.decide(state, command, NOW, LEAD, actor="u-mkt", contact=CONTACT))
CAPTURED = ev.LeadCaptured(
    lead_id=LEAD,
    source="website_form",
    external_id="f-1",
    attribution=Attribution(source="website_form", campaign_id="tet-2027"),
    contact=None,
    captured_at=NOW - timedelta(days=2),
)
ASSIGNED_TO_LAN = ev.LeadAssigned(lead_id=LEAD, owner_id="u-lan", team_id="north")
SQL = ev.LeadQualified(lead_id=LEAD, level="sql", by="u-mkt", at=NOW - timedelta(days=1))
MQL = ev.LeadQualified(lead_id=LEAD, level="mql", by="u-mkt", at=NOW - timedelta(days=1))
NURTURED = ev.LeadNurtureStarted(lead_id=LEAD, sequence_id="welcome")


def test_conversion_carries_the_contact_and_attribution_for_the_deal() -> None:
    lead.given(CAPTURED, ASSIGNED_TO_LAN, SQL).when(d.Convert(customer="Hạ Long", title="Máy lạnh")).then(
        LeadConverted(
            lead_id=LEAD,
            customer="Hạ Long",
            contact=CONTACT,
            owner_id="u-lan",
            team_id="north",
            title="Máy lạnh",
            attribution=Attribution(source="website_form", campaign_id="tet-2027"),
        )
    )


def test_a_lead_nobody_owns_is_not_converted() -> None:
    lead.given(CAPTURED, MQL).when(d.Convert(customer="x", title="y")).refused("owner_required")


def test_an_erased_lead_is_not_converted_nor_its_contact_updated() -> None:
    erased = ev.LeadPersonalDataErased(lead_id=LEAD, requested_by="u-mkt", reason="request")
    lead.given(CAPTURED, ASSIGNED_TO_LAN, SQL, erased).when(d.Convert(customer="x", title="y")).refused("lead_erased")
    update = d.UpdateContact(contact=LeadContact(phone="+84912345678"), reason="corrected")
    lead.given(CAPTURED, erased).when(update).refused("lead_erased")


def test_a_nurture_stops_only_if_one_runs() -> None:
    lead.given(CAPTURED, NURTURED).when(d.StopNurture(reason="asked to stop")).then(
        ev.LeadNurtureStopped(lead_id=LEAD, sequence_id="welcome", reason="asked to stop")
    )
    lead.given(CAPTURED, NURTURED, ev.LeadNurtureStopped(lead_id=LEAD, sequence_id="welcome", reason="x")).when(
        d.StopNurture()
    ).refused("not_nurtured")
    lead.given(CAPTURED, NURTURED).when(d.StartNurture(sequence_id="welcome")).then()  # already in it


def test_an_mql_is_not_qualified_as_mql_again_but_may_become_sql() -> None:
    lead.given(CAPTURED, MQL).when(d.Qualify(level="mql")).refused("already_mql")
    lead.given(CAPTURED, MQL).when(d.Qualify(level="sql")).then(
        ev.LeadQualified(lead_id=LEAD, level="sql", by="u-mkt", at=NOW)
    )


def test_the_same_owner_or_segments_again_change_nothing() -> None:
    lead.given(CAPTURED, ASSIGNED_TO_LAN).when(d.Assign(owner_id="u-lan", team_id="north")).then()
    segmented = ev.LeadSegmented(lead_id=LEAD, segments=("a", "b"))
    lead.given(CAPTURED, segmented).when(d.Segment(segments=("b", "a", "b"))).then()


def test_a_deal_outcome_is_recorded_once() -> None:
    converted = LeadConverted(
        lead_id=LEAD, customer="x", contact=None, owner_id="u-lan", title="y", attribution=CAPTURED.attribution
    )
    won = d.RecordOutcome(deal_id=DEAL, won=True, value=Money.of(50_000_000), at=NOW)
    customer = ev.LeadBecameCustomer(lead_id=LEAD, deal_id=DEAL, value=Money.of(50_000_000), won_at=NOW)
    lead.given(CAPTURED, ASSIGNED_TO_LAN, SQL, converted).when(won).then(customer)
    lead.given(CAPTURED, ASSIGNED_TO_LAN, SQL, converted, customer).when(won).then()  # a replay
    lead.given(CAPTURED, ASSIGNED_TO_LAN, SQL, converted).when(d.RecordOutcome(deal_id=DEAL, won=True, at=NOW)).refused(
        "value_required"
    )


def test_a_merged_lead_takes_no_more_commands() -> None:
    merged = ev.LeadMergedInto(lead_id=LEAD, survivor_id=OTHER)
    lead.given(CAPTURED, merged).when(d.Assign(owner_id="u-lan")).refused("lead_merged")


def test_fit_counts_who_the_lead_is_and_engagement_halves_every_half_life() -> None:
    lead = build(
        CAPTURE,
        d.RecordEngagement(kind="form_submit", at=NOW - timedelta(days=14)),
        d.RecordEngagement(kind="email_click", at=NOW),
    )
    fit, engagement, reasons = d.score(lead, NOW, contact=CAPTURE.contact)
    assert fit == 10 + 10 + 15 + 10  # company, business email, senior title ("giám đốc"), website form
    assert engagement == Decimal("10.00")  # 10 halved after 14 days + 5 now
    assert "senior title" in reasons
    later = d.score(lead, NOW + timedelta(days=28))[1]
    assert later == Decimal("2.50")  # 28 days on: 10 after three half-lives (1.25) + 5 after two (1.25)
    (scored,) = d.decide(lead, d.Score(), NOW, LEAD, contact=CAPTURE.contact)
    assert isinstance(scored, LeadScored)
    assert scored.total == Decimal(55) and scored.model_version == d.DEFAULT_RULES.version
    (unopened,) = run(lead, d.Score())  # the state alone does not know who the lead is
    assert isinstance(unopened, LeadScored) and unopened.fit == 10


def test_a_faster_decay_is_a_rule_change_not_a_code_change() -> None:
    lead = build(CAPTURE, d.RecordEngagement(kind="call", at=NOW - timedelta(days=7)))
    rules = d.ScoringRules(version="fast", half_life_days=Decimal(7))
    assert d.score(lead, NOW, rules)[1] == Decimal("5.00")


CAMPAIGN = uuid.UUID("00000000-0000-0000-0000-0000000000c1")
campaign = Slice(d.campaign_decider, lambda state, command: d.decide_campaign(state, command, CAMPAIGN, NOW.date()))
CREATED = ev.CampaignCreated(
    campaign_id=CAMPAIGN, name="Tết", channel="facebook", code="tet-2027", budget=Money.of(100_000_000)
)
LAUNCHED = ev.CampaignStatusChanged(campaign_id=CAMPAIGN, status="active")
SPENT = ev.CampaignSpendRecorded(
    campaign_id=CAMPAIGN, day=NOW.date(), amount=Money.of(2_000_000), impressions=10_000, clicks=150
)
SPEND = d.RecordSpend(amount=Money.of(2_000_000), impressions=10_000, clicks=150)


def test_a_campaign_is_created_once() -> None:
    create = d.CreateCampaign(name="Tết", channel="facebook", code="tet-2027", budget=Money.of(100_000_000))
    campaign.given().when(create).then(CREATED)
    campaign.given(CREATED).when(create).refused("campaign_exists")
    campaign.given().when(SPEND).refused("campaign_not_found")


def test_campaign_spend_is_idempotent_per_day_and_corrections_are_explicit() -> None:
    campaign.given(CREATED).when(SPEND).refused("campaign_not_launched")
    campaign.given(CREATED, LAUNCHED).when(SPEND).then(SPENT)
    campaign.given(CREATED, LAUNCHED, SPENT).when(SPEND).then()  # the same import again changes nothing
    campaign.given(CREATED, LAUNCHED, SPENT).when(d.RecordSpend(amount=Money.of(2_500_000))).refused("spend_recorded")
    correction = d.RecordSpend(amount=Money.of(2_500_000), correction_reason="late invoice")
    campaign.given(CREATED, LAUNCHED, SPENT).when(correction).then(
        ev.CampaignSpendCorrected(
            campaign_id=CAMPAIGN,
            day=NOW.date(),
            old=Money.of(2_000_000),
            new=Money.of(2_500_000),
            reason="late invoice",
        )
    )


def test_an_ended_campaign_does_not_run_again() -> None:
    ended = ev.CampaignStatusChanged(campaign_id=CAMPAIGN, status="ended")
    campaign.given(CREATED, LAUNCHED).when(d.ChangeCampaignStatus(status="active")).then()
    campaign.given(CREATED, LAUNCHED, ended).when(d.ChangeCampaignStatus(status="active")).refused("campaign_status")

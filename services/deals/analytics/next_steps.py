"""The next-step analytics (issue 25, Pipedrive's rule: every open deal has a next activity): open deals without
a next step and with overdue activities, in all and per owner, team and stage, at ``now``.

Read from the analytics' ``deals`` (each deal's current owner, team, stage, status, organisation) and
``next_steps`` (the agenda's activities on deals: ``services.deals.projections.next_steps``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.store.db import Conn

_QUERY = """
WITH d AS (
    SELECT d.deal_id, d.owner_id, d.team_id, d.stage_id, d.stage_order,
           EXISTS (SELECT 1 FROM next_steps n WHERE n.deal_id = d.deal_id AND n.open) AS has_next,
           EXISTS (SELECT 1 FROM next_steps n WHERE n.deal_id = d.deal_id AND n.open AND n.due_at < $1) AS overdue
    FROM deals d
    WHERE d.status = 'open' AND d.pipeline_id = $2
      AND ($3::text IS NULL OR d.owner_id = $3) AND ($4::text IS NULL OR d.team_id = $4)
      AND ($5::uuid[] IS NULL OR d.organisation_id = ANY($5)))
SELECT GROUPING(owner_id) AS g_owner, GROUPING(team_id) AS g_team, GROUPING(stage_id) AS g_stage,
       owner_id, team_id, stage_id, min(stage_order) AS stage_order,
       count(*) AS open_deals,
       count(*) FILTER (WHERE NOT has_next) AS without_next_step,
       count(*) FILTER (WHERE overdue) AS with_overdue
FROM d GROUP BY GROUPING SETS ((), (owner_id), (team_id), (stage_id))
"""


def _counts(r: Any) -> dict[str, int]:
    return {
        "open_deals": r["open_deals"],
        "without_next_step": r["without_next_step"],
        "with_overdue": r["with_overdue"],
    }


async def next_step_counts(
    conn: Conn,
    *,
    now: datetime,
    pipeline_id: str,
    owner_id: str | None = None,
    team_id: str | None = None,
    organisations: list[uuid.UUID] | None = None,
) -> dict[str, Any]:
    """Open deals, those without a next step, those with an overdue activity: in all, per owner, team and stage
    (a deal of no team counts under team ``null``; stages in their order, with their names)."""
    rows = await conn.fetch(_QUERY, now, pipeline_id, owner_id, team_id, organisations)
    names = {
        r["stage_id"]: r["name"]
        for r in await conn.fetch("SELECT stage_id, name FROM pipeline_stages WHERE pipeline_id = $1", pipeline_id)
    }
    total = {"open_deals": 0, "without_next_step": 0, "with_overdue": 0}
    owners, teams, stages = [], [], []
    for r in rows:
        if r["g_owner"] and r["g_team"] and r["g_stage"]:
            total = _counts(r)
        elif not r["g_owner"]:
            owners.append({"owner_id": r["owner_id"], **_counts(r)})
        elif not r["g_team"]:
            teams.append({"team_id": r["team_id"], **_counts(r)})
        else:
            order = r["stage_order"]
            stages.append({"stage_id": r["stage_id"], "name": names.get(r["stage_id"]), "order": order, **_counts(r)})
    return {
        "as_of": now.isoformat(),
        "pipeline_id": pipeline_id,
        **total,
        "by_owner": sorted(owners, key=lambda x: x["owner_id"]),
        "by_team": sorted(teams, key=lambda x: (x["team_id"] is None, x["team_id"] or "")),
        "by_stage": sorted(stages, key=lambda x: (x["order"], x["stage_id"])),
    }

"""The directory's events for ``python -m bench readmodels`` (bench/readmodels.py): template streams driven through
the directory's real handlers — a team, two users (one registered then changed), an organisation registered, changed and
reassigned, a person at it registered, changed and reassigned — cloned in bulk by the harness.

Read models timed (those of the directory's own topic): ``directory``, ``customers``, ``customer360`` (its
organisations; its deals and orders come from the deals' and production's topics, empty here) and ``user_emails``.
The ``reactions`` projection reads the leads' and deals' topics: nothing of it on this topic, so no row of its own.
A clone's personal fields stay sealed under the template's subject's key, which the clone's subject does not have:
they open as None (the blind indexes hash nothing for them), as an erased subject's would.
"""

from __future__ import annotations

import uuid

from bench.readmodels import Template, stored_rows
from services.directory import domain
from services.directory.customers import organisation_stream, person_stream
from services.directory.domain import customer_commands as c
from services.directory.handlers import team_stream, user_stream
from services.directory.main import DirectoryService
from shared.edge.service import ServiceCore
from shared.store.commands import Context

SERVICE = "directory"
READ_MODELS: tuple[str, ...] = ("directory", "customers", "customer360", "user_emails")
REACTIONS: tuple[str, ...] = ()
TEMPLATES = 4


async def _template(core: ServiceCore, n: int) -> Template:
    key = uuid.uuid4()  # every id of the template holds it: the harness replaces it per clone
    team, user, other = f"t-{key}", f"u-{key}", f"v-{key}"
    org, person = uuid.uuid5(key, "organisation"), uuid.uuid5(key, "person")
    ctx = Context(actor="u-admin")
    assert isinstance(core, DirectoryService)
    d, cu = core.directory, core.customers
    await d.handle_team(team, domain.CreateTeam(team_id=team, name=f"Đội {n}"), ctx)
    register = domain.RegisterUser(
        user_id=user, name=f"Người {n}", email=f"user.{key}@example.vn", team_id=team, roles=("sales",)
    )
    await d.handle_user(user, register, ctx)
    await d.handle_user(other, register.model_copy(update={"user_id": other, "email": f"other.{key}@example.vn"}), ctx)
    profile = domain.ChangeProfile(name=f"Nguyễn {n}", email=f"user.{key}@example.vn", language="en", reason="tên")
    await d.handle_user(user, profile, ctx)
    await d.handle_user(user, domain.ChangeRoles(roles=("sales", "sales_manager"), reason="lên chức"), ctx)
    address = (c.AddressInput(line="1 Lê Lợi", province="ha-noi"),)
    await cu.handle_organisation(
        org,
        c.RegisterOrganisation(name=f"Nhà hàng Sen {n}", addresses=address, industry="restaurant", owner_id=user,
                               team_id=team),
        ctx,
    )  # fmt: skip
    await cu.handle_organisation(
        org, c.ChangeOrganisation(name=f"Nhà hàng Sen Vàng {n}", addresses=address, industry="restaurant",
                                  reason="đổi tên"), ctx
    )  # fmt: skip
    await cu.handle_organisation(org, c.ReassignOrganisation(owner_id=other, team_id=team, reason="chia lại"), ctx)
    await cu.handle_person(
        person,
        c.RegisterPerson(organisation_id=org, name=f"Chị Lan {n}", phones=("+84901234567",),
                         emails=(f"lan.{key}@example.vn",)),
        ctx,
    )  # fmt: skip
    await cu.handle_person(
        person, c.ChangePerson(organisation_id=org, name=f"Chị Lan {n}", title="chủ", phones=("+84901234567",),
                               reason="chức danh"), ctx
    )  # fmt: skip
    await cu.handle_person(person, c.ReassignPerson(owner_id=user, team_id=team, reason="chia lại"), ctx)
    streams = [
        team_stream(team),
        user_stream(user),
        user_stream(other),
        organisation_stream(org),
        person_stream(person),
    ]
    return Template(rows=await stored_rows(core, streams), ids=(str(key), str(org), str(person)))


async def templates(core: ServiceCore) -> list[Template]:
    return [await _template(core, n) for n in range(TEMPLATES)]

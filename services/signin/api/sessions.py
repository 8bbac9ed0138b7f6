"""Sessions: signing in with a password, a fresh API token for a session, signing out (this session, everywhere,
an admin ending a user's). The session secret travels in the body only (the board keeps it in an HttpOnly cookie),
never in a URL; answers are ``Cache-Control: no-store``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from services.signin.api.common import ERRORS, ClientAddress, Service
from services.signin.domain.passwords import MAX_CHARS
from shared.core.limits import MAX_ID_CHARS, Email
from shared.edge.auth import Principal, require

router = APIRouter(responses=ERRORS, tags=["sessions"])
Admin = Annotated[Principal, Depends(require())]
USER_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
UserIdParam = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=USER_ID_PATTERN)]
NO_STORE = {"Cache-Control": "no-store"}


class PasswordSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: str = Field(min_length=1, max_length=MAX_CHARS)


class SessionRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str = Field(min_length=1, max_length=64, description="the session secret /sessions/password gave")


class Ended(BaseModel):
    ended: int = Field(description="sessions ended")


@router.post(
    "/sessions/password",
    status_code=201,
    summary="sign in with an email and a password: a session, its CSRF token and a first API token",
)
async def password(body: PasswordSignIn, svc: Service, client: ClientAddress, response: Response) -> dict[str, Any]:
    issued = await svc.sign_in_password(str(body.email), body.password, client)
    response.headers.update(NO_STORE)
    return issued.body()


@router.post("/sessions/token", summary="a fresh API token for a live session (roles and team as the directory says)")
async def token(body: SessionRef, svc: Service, response: Response) -> dict[str, Any]:
    issued = await svc.token(body.session)
    response.headers.update(NO_STORE)
    return issued.body()


@router.post("/sessions/end", response_model=Ended, summary="sign out: this session ends, its tokens are revoked")
async def end(body: SessionRef, svc: Service) -> Ended:
    return Ended(ended=await svc.end(body.session))


@router.post("/sessions/end-all", response_model=Ended, summary="sign out everywhere: every session of the user ends")
async def end_all(body: SessionRef, svc: Service) -> Ended:
    return Ended(ended=await svc.end_all(body.session))


@router.post("/users/{user_id}/sessions/end", response_model=Ended, summary="end every session of a user (admin)")
async def end_user(user_id: UserIdParam, svc: Service, p: Admin) -> Ended:
    return Ended(ended=await svc.end_user(user_id))

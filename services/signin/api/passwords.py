"""Password resets: an admin asks for a one-time link token for a user (their first password is set the same way);
whoever holds it sets the password once, within 24 hours, and every session of the user ends."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from services.signin.api.common import ERRORS, Service
from services.signin.api.sessions import NO_STORE, Admin, UserIdParam
from services.signin.domain.passwords import MAX_CHARS, MIN_CHARS

router = APIRouter(responses=ERRORS, tags=["passwords"])


class ResetLink(BaseModel):
    link_token: str = Field(description="one use; give it to the user only (the board's /reset page takes it)")
    expires_at: datetime


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=64, description="the reset link token")
    password: str = Field(min_length=MIN_CHARS, max_length=MAX_CHARS, description="12 to 128 characters, not the email")


class PasswordSet(BaseModel):
    user_id: str
    ended: int = Field(description="the user's sessions ended")


@router.post(
    "/users/{user_id}/password-reset",
    status_code=201,
    response_model=ResetLink,
    summary="a one-time link token setting a user's password (admin)",
)
async def reset_link(user_id: UserIdParam, svc: Service, p: Admin, response: Response) -> ResetLink:
    token, expires = await svc.reset_link(user_id)
    response.headers.update(NO_STORE)
    return ResetLink(link_token=token, expires_at=expires)


@router.post("/password-resets", response_model=PasswordSet, summary="set the password a reset link is for")
async def reset(body: NewPassword, svc: Service) -> PasswordSet:
    user_id, ended = await svc.reset_password(body.token, body.password)
    return PasswordSet(user_id=user_id, ended=ended)

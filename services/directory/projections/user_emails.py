"""The ``user_emails`` read model: the users' blind index of emails, so the sign-in service finds a user by the
exact email they sign in with (``POST /users/lookup``) while every email stays sealed.

One row per user: the keyed hash (``services.directory.search_keys.key``, kind ``email``, under the blind index's
key) of their normalised email. Computing it needs the plaintext, so this projection opens the profile events'
sealed email with the user's key; an erasure deletes the row (and, the key being gone, a rebuild indexes nothing
for them). Each statement is idempotent per event.
"""

from __future__ import annotations

from typing import Any

from services.directory import events as ev
from services.directory import search_keys
from shared.core import normalize
from shared.messaging.projections import Fact, Projection, one_by_one
from shared.privacy.pii import PersonalData
from shared.store.db import Conn

DDL = """
CREATE TABLE IF NOT EXISTS user_email_keys (user_id text PRIMARY KEY, key text NOT NULL);
CREATE INDEX IF NOT EXISTS user_email_keys_by_key ON user_email_keys (key);
"""


def email_key(secret: bytes, email: str | None) -> str | None:
    """The index key of an email as a user gives it (None: not an email)."""
    normalised = normalize.email(email)
    return None if normalised is None else search_keys.key(secret, "email", normalised)


class UserEmails:
    def __init__(self, personal_data: PersonalData, secret: bytes) -> None:
        self.personal_data = personal_data
        self.secret = secret

    async def apply(self, conn: Conn, fact: Fact) -> None:
        match fact.event:
            case ev.UserRegistered() | ev.UserProfileChanged() as e:
                sealed: dict[str, Any] = {"email": fact.envelope.data.get("email")}
                (opened,) = await self.personal_data.open([sealed])  # None once the user's key is gone
                key = email_key(self.secret, opened.get("email"))
                await conn.execute("DELETE FROM user_email_keys WHERE user_id = $1", e.user_id)
                if key is not None:
                    await conn.execute("INSERT INTO user_email_keys (user_id, key) VALUES ($1, $2)", e.user_id, key)
            case ev.UserPersonalDataErased() as e:
                await conn.execute("DELETE FROM user_email_keys WHERE user_id = $1", e.user_id)


def user_emails(topic: str, personal_data: PersonalData, secret: bytes) -> Projection:
    """The ``user_emails`` read model of the directory's topic; ``secret``: the blind index's key."""
    model = UserEmails(personal_data, secret)
    return Projection(
        name="user_emails",
        topics=(topic,),
        ddl=DDL,
        apply=one_by_one(model.apply),
        accepts=(
            "pipelines.directory.UserRegistered",
            "pipelines.directory.UserProfileChanged",
            "pipelines.directory.UserPersonalDataErased",
        ),
        tables=("user_email_keys",),
    )


async def users_with_email(conn: Conn, key: str) -> list[str]:
    rows = await conn.fetch("SELECT user_id FROM user_email_keys WHERE key = $1 ORDER BY user_id LIMIT 10", key)
    return [r["user_id"] for r in rows]

"""The ``user_emails`` read model: the users' blind index of emails, so the sign-in service finds a user by the
exact email they sign in with (``POST /users/lookup``) while every email stays sealed.

One row per user: the keyed hash (``services.directory.search_keys.key``, kind ``email``, under the blind index's
key) of their normalised email. Computing it needs the plaintext, so this projection opens the profile events'
sealed email with the user's key; an erasure deletes the row (and, the key being gone, a rebuild indexes nothing
for them). A batch's rows are folded in memory and written once (``shared.messaging.rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.directory import events as ev
from services.directory import search_keys
from shared.core import normalize
from shared.messaging.projections import Fact, Projection
from shared.messaging.rows import Rows, Table
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


KEYS = Table("user_email_keys", {"user_id": "text", "key": "text"})
_DETAILS = (ev.UserRegistered, ev.UserProfileChanged)


class UserEmails:
    def __init__(self, personal_data: PersonalData, secret: bytes) -> None:
        self.personal_data = personal_data
        self.secret = secret

    async def apply(self, conn: Conn, facts: Sequence[Fact]) -> None:
        """A batch in order: each user's row is what their last event in it leaves (the emails opened in one
        call); written once."""
        sealed: list[dict[str, Any]] = [
            {"email": f.envelope.data.get("email")} for f in facts if isinstance(f.event, _DETAILS)
        ]
        opened = iter(await self.personal_data.open(sealed) if sealed else [])  # None once the user's key is gone
        rows = Rows(KEYS)
        for fact in facts:
            match fact.event:
                case ev.UserRegistered() | ev.UserProfileChanged() as e:
                    key = email_key(self.secret, next(opened).get("email"))
                    if key is None:
                        rows.delete(e.user_id)
                    else:
                        rows.put(KEYS.new(user_id=e.user_id, key=key))
                case ev.UserPersonalDataErased() as e:
                    rows.delete(e.user_id)
        await rows.flush(conn)


def user_emails(topic: str, personal_data: PersonalData, secret: bytes) -> Projection:
    """The ``user_emails`` read model of the directory's topic; ``secret``: the blind index's key."""
    model = UserEmails(personal_data, secret)
    return Projection(
        name="user_emails",
        topics=(topic,),
        ddl=DDL,
        apply=model.apply,
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

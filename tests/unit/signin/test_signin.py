"""The sign-in service in memory: hashing and rehashing, lockout and throttling arithmetic, sessions' timeouts with a
clock, reset links, revocations published before a session ends, and the routes' answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.signin.api import create_app
from services.signin.directory import DirectoryUser, MemoryUsers
from services.signin.domain import lockout, passwords, sessions
from services.signin.domain.errors import (
    LockedError,
    PasswordRejectedError,
    ResetInvalidError,
    SessionEndedError,
    SignInRefusedError,
    TooManyAttemptsError,
    UnavailableError,
)
from services.signin.handlers import Config, Signin
from services.signin.store import MemoryStore
from shared.edge.auth import InvalidTokenError, TokenVerifier, issue_token
from shared.edge.revocation import RevocationList
from testkit.services import TEST_KEYS

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANNA = DirectoryUser("anna", "Anna", "anna@example.com", "north", ("sales",), True)
GONE = DirectoryUser("gone", "Gone", "gone@example.com", "north", ("sales",), False)
PASSWORD = "correct horse battery"
CONFIG = Config(
    max_failures=3,
    lock_s=600,
    per_minute=100,
    timeouts=sessions.Timeouts(token_s=300, idle_s=1800, absolute_s=7200),
    attempts_key=b"k" * 32,
)
HASHER = passwords.Passwords(passwords.FAST)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Revocations(RevocationList):
    """The process's own list, recording what was published (``refuse``: Kafka away)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[str] = []
        self.refuse = False

    async def publish_session(self, sid: str, expires: float) -> None:
        if self.refuse:
            raise OSError("Kafka is away")
        self.published.append(sid)
        self.revoke("sid:" + sid, expires)


def make(config: Config = CONFIG) -> tuple[Signin, MemoryStore, Clock, Revocations]:
    store, clock, revoked = MemoryStore(), Clock(), Revocations()
    svc = Signin(store, MemoryUsers(ANNA, GONE), TEST_KEYS, revoked, config, hasher=HASHER, clock=clock)
    store.credentials["anna"] = HASHER.hash(PASSWORD)
    store.credentials["gone"] = HASHER.hash(PASSWORD)
    return svc, store, clock, revoked


def verifier(revoked: Any = frozenset()) -> TokenVerifier:
    return TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines", revoked=revoked)


def test_hashes_are_argon2id_and_verify_only_their_password() -> None:
    hashed = HASHER.hash(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert HASHER.verify(hashed, PASSWORD)
    assert not HASHER.verify(hashed, PASSWORD + "!")
    assert not HASHER.verify(None, PASSWORD)  # no hash: the dummy's work, and False
    assert not HASHER.verify("not a hash", PASSWORD)
    assert passwords.Passwords().needs_rehash(hashed)  # other parameters than PARAMETERS
    assert not HASHER.needs_rehash(hashed)


def test_password_policy() -> None:
    assert passwords.policy_problem("short", None) is not None
    assert passwords.policy_problem("x" * 129, None) is not None
    assert passwords.policy_problem("anna@example.com", "Anna@Example.com") is not None
    assert passwords.policy_problem("twelve chars", "anna@example.com") is None


def test_lockout_arithmetic() -> None:
    a = lockout.CLEAR
    for i in range(2):
        a = lockout.after_failure(a, T0 + timedelta(seconds=i), max_failures=3, lock_s=600)
        assert lockout.locked_for(a, T0 + timedelta(seconds=i)) is None
    a = lockout.after_failure(a, T0 + timedelta(seconds=2), max_failures=3, lock_s=600)
    assert lockout.locked_for(a, T0 + timedelta(seconds=2)) == 600
    assert lockout.locked_for(a, T0 + timedelta(seconds=601.5)) == 1
    assert lockout.locked_for(a, T0 + timedelta(seconds=602)) is None
    # failures further apart than the window start a new count
    b = lockout.after_failure(lockout.CLEAR, T0, max_failures=3, lock_s=600)
    b = lockout.after_failure(b, T0 + timedelta(seconds=601), max_failures=3, lock_s=600)
    assert b.failures == 1


def test_throttle_counts_per_address_per_minute() -> None:
    t = lockout.Throttle(2)
    assert t.check("a", T0) is None
    assert t.check("a", T0 + timedelta(seconds=10)) is None
    assert t.check("a", T0 + timedelta(seconds=15)) == 45
    assert t.check("b", T0 + timedelta(seconds=15)) is None
    assert t.check("a", T0 + timedelta(seconds=60)) is None


async def test_sign_in_gives_a_session_and_a_token_an_api_verifies() -> None:
    svc, store, clock, _ = make()
    clock.now = datetime.now(UTC)  # a token an API verifies: minted now
    issued = await svc.sign_in_password("Anna@Example.com", PASSWORD, "10.0.0.1")
    body = issued.body()
    assert set(body) == {"session", "csrf", "token", "token_expires_at", "user"}
    assert body["user"] == {"user_id": "anna", "name": "Anna", "roles": ["sales"], "team": "north"}
    assert sessions.well_formed(body["session"]) and sessions.well_formed(body["csrf"])
    (kept,) = store.sessions.values()
    assert kept.digest == sessions.digest(body["session"]) and body["session"] not in str(kept)
    checked = verifier().check(issued.token)
    assert checked.principal.user_id == "anna" and checked.session_id == kept.sid


@pytest.mark.parametrize(("email", "password"), [("anna@example.com", "wrong password"), ("nobody@x.com", PASSWORD)])
async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(email: str, password: str) -> None:
    svc, *_ = make()
    with pytest.raises(SignInRefusedError) as refused:
        await svc.sign_in_password(email, password, "10.0.0.1")
    assert (refused.value.status, refused.value.rule) == (401, "bad_credentials")


async def test_an_inactive_user_cannot_sign_in() -> None:
    svc, *_ = make()
    with pytest.raises(SignInRefusedError):
        await svc.sign_in_password("gone@example.com", PASSWORD, "10.0.0.1")
    with pytest.raises(SignInRefusedError):
        await svc.start_session("gone")


async def test_lockout_refuses_even_the_right_password_until_the_lock_time_passes() -> None:
    svc, _, clock, _ = make()
    for _ in range(3):
        with pytest.raises(SignInRefusedError):
            await svc.sign_in_password("anna@example.com", "wrong password", "10.0.0.1")
    with pytest.raises(LockedError) as locked:
        await svc.sign_in_password("anna@example.com", PASSWORD, "10.0.0.1")
    assert locked.value.retry_after == 600
    clock.advance(600)
    assert (await svc.sign_in_password("anna@example.com", PASSWORD, "10.0.0.1")).user.user_id == "anna"
    # an unknown email locks the same way (the answers tell nothing about who exists)
    for _ in range(3):
        with pytest.raises(SignInRefusedError):
            await svc.sign_in_password("nobody@example.com", "wrong password", "10.0.0.1")
    with pytest.raises(LockedError):
        await svc.sign_in_password("nobody@example.com", "wrong password", "10.0.0.1")


async def test_throttled_per_client_address() -> None:
    svc, *_ = make(Config(**{**CONFIG.__dict__, "per_minute": 2}))
    for _ in range(2):
        await svc.sign_in_password("anna@example.com", PASSWORD, "10.0.0.9")
    with pytest.raises(TooManyAttemptsError) as throttled:
        await svc.sign_in_password("anna@example.com", PASSWORD, "10.0.0.9")
    assert throttled.value.retry_after == 60
    await svc.sign_in_password("anna@example.com", PASSWORD, "10.0.0.10")


async def test_a_hash_made_with_other_parameters_is_rehashed_on_sign_in() -> None:
    svc, store, _, _ = make()
    old = passwords.Passwords(passwords.Parameters(time_cost=1, memory_cost_kib=512, parallelism=1))
    store.credentials["anna"] = old.hash(PASSWORD)
    await svc.sign_in_password("anna@example.com", PASSWORD, "10.0.0.1")
    assert not HASHER.needs_rehash(store.credentials["anna"])
    assert HASHER.verify(store.credentials["anna"], PASSWORD)


async def test_tokens_follow_the_session_and_its_idle_and_absolute_timeouts() -> None:
    svc, store, clock, _ = make()
    secret = (await svc.sign_in_password("anna@example.com", PASSWORD, "a")).session
    assert secret is not None
    for _ in range(4):  # asked every 29 minutes: never idle, until the absolute end (2 h)
        clock.advance(29 * 60)
        fresh = await svc.token(secret)
        assert fresh.expires <= T0 + timedelta(hours=2)
    clock.advance(5 * 60)  # 2 h 01 after the start
    with pytest.raises(SessionEndedError, match="absolute"):
        await svc.token(secret)
    assert next(iter(store.sessions.values())).ended is not None

    other = (await svc.sign_in_password("anna@example.com", PASSWORD, "a")).session
    assert other is not None
    clock.advance(1800)
    with pytest.raises(SessionEndedError, match="idle"):
        await svc.token(other)


async def test_roles_and_team_are_the_directorys_now_and_deactivation_ends_the_session() -> None:
    svc, _, clock, revoked = make()
    clock.now = datetime.now(UTC)
    issued = await svc.sign_in_password("anna@example.com", PASSWORD, "a")
    assert issued.session is not None
    users = svc.directory
    assert isinstance(users, MemoryUsers)
    users.users["anna"] = DirectoryUser("anna", "Anna", "anna@example.com", "south", ("sales_manager",), True)
    principal = verifier().verify((await svc.token(issued.session)).token)
    assert (principal.team, principal.roles) == ("south", frozenset({"sales_manager"}))
    users.users["anna"] = DirectoryUser("anna", "Anna", "anna@example.com", "south", ("sales_manager",), False)
    with pytest.raises(SessionEndedError):
        await svc.token(issued.session)
    assert len(revoked.published) == 1


async def test_signing_out_everywhere_revokes_every_session_first() -> None:
    svc, store, clock, revoked = make()
    clock.now = datetime.now(UTC)
    one = await svc.sign_in_password("anna@example.com", PASSWORD, "a")
    two = await svc.sign_in_password("anna@example.com", PASSWORD, "a")
    assert one.session is not None and two.session is not None
    revoked.refuse = True  # Kafka away: nothing ends
    with pytest.raises(UnavailableError):
        await svc.end_all(one.session)
    assert all(s.ended is None for s in store.sessions.values())
    revoked.refuse = False
    assert await svc.end_all(one.session) == 2
    with pytest.raises(InvalidTokenError, match="session ended"):
        verifier(revoked).verify(two.token)
    with pytest.raises(SessionEndedError):
        await svc.token(two.session)
    with pytest.raises(SessionEndedError):
        await svc.end(two.session)


async def test_a_reset_link_sets_the_password_once_and_ends_the_sessions() -> None:
    svc, store, clock, revoked = make()
    session = (await svc.sign_in_password("anna@example.com", PASSWORD, "a")).session
    link, expires = await svc.reset_link("anna")
    assert expires == T0 + timedelta(hours=24)
    assert link not in str(store.resets)
    with pytest.raises(PasswordRejectedError):
        await svc.reset_password(link, "anna@example.com")
    assert await svc.reset_password(link, "a new long password") == ("anna", 1)
    assert revoked.published and session is not None
    with pytest.raises(ResetInvalidError):
        await svc.reset_password(link, "another long password")
    await svc.sign_in_password("anna@example.com", "a new long password", "a")
    late, _ = await svc.reset_link("anna")
    clock.advance(24 * 3600)
    with pytest.raises(ResetInvalidError):
        await svc.reset_password(late, "a third long password")


async def _app_client(svc: Signin) -> httpx.AsyncClient:
    app = create_app(svc, verifier(), _ready)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signin")


async def _ready() -> dict[str, str]:
    return {"postgresql": "ok"}


async def test_routes_answer_as_the_notes_say() -> None:
    svc, *_ = make()
    async with await _app_client(svc) as http:
        bad = await http.post("/sessions/password", json={"email": "anna@example.com", "password": "nope"})
        assert bad.status_code == 401 and bad.json()["rule"] == "bad_credentials"
        ok = await http.post("/sessions/password", json={"email": "anna@example.com", "password": PASSWORD})
        assert ok.status_code == 201 and ok.headers["cache-control"] == "no-store"
        session = ok.json()["session"]
        fresh = await http.post("/sessions/token", json={"session": session})
        assert fresh.status_code == 200 and set(fresh.json()) == {"token", "token_expires_at", "csrf", "user"}
        too_long = await http.post("/sessions/token", json={"session": "x" * 65})
        assert too_long.status_code == 422 and too_long.json()["errors"][0]["loc"] == ["body", "session"]
        assert (await http.post("/sessions/end", json={"session": session})).json() == {"ended": 1}
        ended = await http.post("/sessions/token", json={"session": session})
        assert ended.status_code == 401 and ended.json()["rule"] == "session_ended"
        jwks = await http.get("/.well-known/jwks.json")
        assert jwks.json() == TEST_KEYS.jwks() and "d" not in jwks.json()["keys"][0]


async def test_admin_routes_need_an_admin_token() -> None:
    svc, *_ = make()
    sales = {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id="s", roles=["sales"], team="north")}
    admin = {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id="root", roles=["admin"])}
    async with await _app_client(svc) as http:
        for path in ("/users/anna/password-reset", "/users/anna/sessions/end"):
            assert (await http.post(path)).status_code == 401
            assert (await http.post(path, headers=sales)).status_code == 403
        link = await http.post("/users/anna/password-reset", headers=admin)
        assert link.status_code == 201
        assert (await http.post("/users/nobody/password-reset", headers=admin)).status_code == 404
        short = await http.post("/password-resets", json={"token": link.json()["link_token"], "password": "short"})
        assert short.status_code == 422 and short.json()["errors"][0]["loc"] == ["body", "password"]
        done = await http.post("/password-resets", json={"token": link.json()["link_token"], "password": "x" * 12})
        assert done.json() == {"user_id": "anna", "ended": 0}
        assert (await http.post("/users/anna/sessions/end", headers=admin)).json() == {"ended": 0}


async def test_lockout_and_throttle_answers_carry_retry_after() -> None:
    svc, *_ = make(Config(**{**CONFIG.__dict__, "per_minute": 4}))
    async with await _app_client(svc) as http:
        answers = [
            await http.post("/sessions/password", json={"email": "anna@example.com", "password": "wrong"})
            for _ in range(5)
        ]
    assert [a.status_code for a in answers] == [401, 401, 401, 423, 429]
    assert answers[3].headers["retry-after"] == "600" and answers[3].json()["rule"] == "locked"
    assert int(answers[4].headers["retry-after"]) <= 60


async def test_a_burst_of_concurrent_guesses_gets_no_more_than_the_allowed_failures_checked() -> None:
    svc, *_ = make()

    async def guess() -> str:
        try:
            await svc.sign_in_password("anna@example.com", "wrong password", "10.0.0.1")
        except (SignInRefusedError, LockedError) as exc:
            return exc.rule
        return "ok"

    answers = await asyncio.gather(*(guess() for _ in range(10)))
    assert sorted(answers) == ["bad_credentials"] * 3 + ["locked"] * 7


async def test_a_refused_body_never_echoes_a_password_or_a_secret() -> None:
    svc, *_ = make()
    async with await _app_client(svc) as http:
        for path, body in (
            ("/sessions/password", {"password": "hunter2 secret"}),  # no email: the error's input is the whole body
            ("/password-resets", {"token": "t", "password": "short pw"}),
            ("/sessions/token", {"session": "s" * 80}),
        ):
            r = await http.post(path, json=body)
            assert r.status_code == 422 and r.json()["errors"], r.text
            assert "hunter2" not in r.text and "short pw" not in r.text and "sss" not in r.text


async def test_an_idle_timeout_shorter_than_the_tokens_revokes_them() -> None:
    short = Config(**{**CONFIG.__dict__, "timeouts": sessions.Timeouts(token_s=600, idle_s=120, absolute_s=7200)})
    svc, _, clock, revoked = make(short)
    secret = (await svc.sign_in_password("anna@example.com", PASSWORD, "a")).session
    assert secret is not None
    clock.advance(120)
    with pytest.raises(SessionEndedError, match="idle"):
        await svc.token(secret)
    assert len(revoked.published) == 1  # its first token lives 600 s: refused everywhere now

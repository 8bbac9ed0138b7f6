"""schemathesis over an API's OpenAPI document, as callers of several roles (decision 0029).

Two phases, both checked by schemathesis (no 5xx; the status, content type and body each what the document says of
that status):

- every operation: ``EXAMPLES`` generated requests valid by the document and as many invalid, each sent as the
  next caller of ``CALLERS`` (so every role, and no credential at all, meets every route);
- scenarios: schemathesis's state machine, chaining operations by the links it infers from the document (an id a
  command answers, used by the routes that take it), ``SCENARIOS`` scenarios of at most ``STEPS`` steps, each as one
  caller.

Sending is the caller's: a function from httpx arguments to an ``httpx.Response`` (the in-memory apps through a
TestClient, the real services through their ASGI app on the test's event loop). Failures are collected, not
raised, so Hypothesis does not shrink them (each is shown with the request that made it).

In CI the cases are the same every run (derandomized) and few; ``make fuzz`` sets ``PIPELINES_FUZZ_EXAMPLES``,
``PIPELINES_FUZZ_SCENARIOS`` and ``PIPELINES_FUZZ_SEED`` (a number, or ``random``) for a longer, different run.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import NoLinksFound
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from testkit.services import bearer

EXAMPLES = int(os.environ.get("PIPELINES_FUZZ_EXAMPLES", "3"))  # per operation and per mode (valid, invalid)
SCENARIOS = int(os.environ.get("PIPELINES_FUZZ_SCENARIOS", "6"))  # stateful scenarios per API
STEPS = int(os.environ.get("PIPELINES_FUZZ_STEPS", "8"))  # steps of a scenario, at most
_SEED = os.environ.get("PIPELINES_FUZZ_SEED", "")
SEED: int | None = random.randrange(2**32) if _SEED == "random" else int(_SEED) if _SEED else None

# the services fuzzed on PostgreSQL and Kafka (tests/integration/test_api_fuzz.py); every other app of testkit.apps
# (sign-in, the board, any new one) in memory (tests/unit/test_fuzz_apps.py)
REAL = ("leads", "deals", "production", "directory", "agenda")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# the users testkit.apps's replica of the directory knows, in the roles a token may carry (shared.edge.auth.ROLES)
CALLERS: list[tuple[str, dict[str, str]]] = [
    ("admin", bearer("u-admin", "admin")),
    ("sales", bearer("u-lan", "sales", team="north")),
    ("sales_manager", bearer("u-mai", "sales_manager", team="north")),
    ("sales_director", bearer("u-tuan", "sales_director", team="south")),
    ("marketing", bearer("u-binh", "marketing", team="north")),
    ("production", bearer("u-dung", "production", team="south")),
    ("auditor", bearer("u-audit", "auditor", team=None)),
    ("importer", bearer("u-import", "importer", team=None)),
    ("nobody", {}),
]
Send = Callable[[dict[str, Any]], httpx.Response]


def not_a_server_error_but_unavailable(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """For the in-memory apps, which serve no read models and reach no source or dependency: the 503 they answer
    then is the one their document gives (``unavailable``); any other 5xx is a failure. A 503 documented only as the
    in-flight bound's ``busy`` (``x-busy-only``, shared.edge.busy_docs) is no such answer: these apps have no bound."""
    documented = case.operation.definition.raw.get("responses", {}).get("503")
    if response.status_code == 503 and documented and not documented.get("x-busy-only"):
        return None
    return not_a_server_error(ctx, response, case)


IN_MEMORY_CHECKS = [not_a_server_error_but_unavailable, *CHECKS[1:]]


@dataclass
class Outcome:
    """What a run sent and what schemathesis found wrong."""

    sent: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, response: httpx.Response | Response) -> None:
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1

    def summary(self) -> str:
        seed = "the same cases as every run" if SEED is None else f"PIPELINES_FUZZ_SEED={SEED}"
        statuses = dict(sorted(self.statuses.items()))
        return f"{self.sent} requests ({seed}), statuses {statuses}, {len(self.failures)} failures"


def _settings(n: int, **more: Any) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=n,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
        **more,
    )


def draw_cases(strategy: Any, n: int) -> list[schemathesis.Case]:
    """``n`` cases at most from the strategy: the same ones every run unless a seed is given."""
    cases: list[schemathesis.Case] = []

    @_settings(n)
    @given(strategy)
    def collect(case: schemathesis.Case) -> None:
        cases.append(case)

    if SEED is not None:
        collect = hypothesis.seed(SEED)(collect)
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # nothing to make invalid: no inputs
        collect()
    return cases


def request_of(case: schemathesis.Case, headers: dict[str, str]) -> dict[str, Any]:
    """The generated request as httpx arguments (schemathesis serializes for requests), as this caller."""
    kw = case.as_transport_kwargs(base_url="http://api", headers=headers)
    out: dict[str, Any] = {k: kw[k] for k in ("method", "url", "headers", "params") if kw.get(k) is not None}
    # the caller's credential, whatever schemathesis made of the bearer scheme (a random token, or none)
    out["headers"] = {k: v for k, v in out.get("headers", {}).items() if k.lower() != "authorization"} | headers
    if "json" in kw:
        out["json"] = kw["json"]
    elif isinstance(kw.get("data"), bytes | str):
        out["content"] = kw["data"]
    elif kw.get("data") is not None:
        out["data"] = kw["data"]
    return out


def _check(
    case: schemathesis.Case, response: httpx.Response | Response, checks: Sequence[Any], label: str, out: Outcome
) -> None:
    out.add(response)
    try:
        case.validate_response(response, checks=list(checks))
    except FailureGroup as exc:
        out.failures.append(f"{label} [{response.status_code}]: {str(exc)[:1500]}")


def _callers() -> Iterator[tuple[str, dict[str, str]]]:
    while True:
        yield from CALLERS


def every_operation(schema: Any, send: Send, checks: Sequence[Any] = CHECKS, examples: int = EXAMPLES) -> Outcome:
    """The document's own examples as an admin (requests that succeed: something for the reads and the others'
    ids to find), then valid and invalid requests to every operation, each as the next caller."""
    out = Outcome()
    callers = _callers()
    operations = [result.ok() for result in schema.get_all_operations()]
    admin = CALLERS[0][1]
    for op in operations:
        for strategy in schema.get_strategies_from_examples(op):
            for case in draw_cases(strategy, 1):
                _check(case, send(request_of(case, admin)), checks, f"{op.label} example as admin", out)
    for op in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            for case in draw_cases(op.as_strategy(generation_mode=mode), examples):
                role, headers = next(callers)
                _check(case, send(request_of(case, headers)), checks, f"{op.label} {mode.value} as {role}", out)
    return out


def scenarios(
    schema: Any, send: Send, checks: Sequence[Any] = CHECKS, count: int = SCENARIOS, steps: int = STEPS
) -> Outcome:
    """Chains of operations linked by what one answers and the next takes, each scenario as one caller (admins
    more often: the chains they can walk are the longest)."""
    out = Outcome()
    callers = _callers()
    started = [0]
    machine = schema.as_state_machine()

    class Scenario(machine):  # type: ignore[valid-type]
        def setup(self) -> None:
            started[0] += 1
            self.role, self.headers = CALLERS[0] if started[0] % 2 else next(callers)
            while not self.headers:  # no credential: every operation answers 401, no chain (phase one sends those)
                self.role, self.headers = next(callers)

        def call(self, case: schemathesis.Case, **kwargs: Any) -> Response:
            return Response.from_any(send(request_of(case, self.headers)))  # as schemathesis records them

        def validate_response(self, response: Response, case: schemathesis.Case, *a: Any, **k: Any) -> None:
            _check(case, response, checks, f"scenario {case.operation.label} as {self.role}", out)

    # one Hypothesis run a scenario, each with its own seed: what a scenario can do next depends on what the API
    # answered before (ids it gave), so runs sharing Hypothesis's memory of earlier draws would find them "flaky"
    settings = hypothesis.settings(_settings(1, stateful_step_count=steps), derandomize=False)
    for i in range(count):
        Scenario._hypothesis_internal_use_seed = (SEED or 0) + i
        try:
            Scenario.run(settings=settings)
        except NoLinksFound:  # nothing one operation answers that another takes: no chains to walk
            break
        except hypothesis.errors.Unsatisfiable:
            continue
    return out

"""Unit tests read settings from the environment: a shell with ``scripts/stack env`` evaluated holds the local stack's
token keys, which no unit test may depend on or be disturbed by (they sign with testkit's TEST_KEYS)."""

from __future__ import annotations

import pytest

from testkit.services import KEY_SETTINGS


@pytest.fixture(autouse=True)
def _no_stack_token_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_SETTINGS:
        monkeypatch.delenv(name, raising=False)

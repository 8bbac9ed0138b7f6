"""Every API's Swagger UI works with no internet access (shared/edge/docs.py): ``/docs`` names no other site, each
script, style and icon it names answers 200 from the API itself, the page's Content-Security-Policy allows only
the API's own origin, and ``/redoc`` (ReDoc would load from the internet) sends to ``/docs``."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from testkit.apps import apps

SERVICES = ["deals", "leads", "production", "directory", "agenda", "signin"]


@pytest.mark.parametrize("service", SERVICES)
def test_docs_use_only_the_apis_own_assets(service: str) -> None:
    client = TestClient(apps()[service])
    page = client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(?:https?:)?//", page.text), "the page names another site"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "unsafe" not in csp and "http" not in csp
    named = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {n.rsplit("/", 1)[-1] for n in named} >= {"swagger-ui-bundle.js", "swagger-ui.css", "start.js"}
    for url in named:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
    start = client.get("/docs/assets/start.js").text
    assert "SwaggerUIBundle" in start and "http" not in start
    assert re.search(r'data-openapi="/openapi.json"', page.text)
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404
    assert client.get("/docs/assets/index.html").status_code == 404  # only the listed assets
    redoc = client.get("/redoc", follow_redirects=False)
    assert redoc.status_code == 307 and redoc.headers["location"] == "/docs"

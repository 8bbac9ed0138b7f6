"""Every API's Swagger UI and ReDoc work with no internet access (shared/edge/docs.py): ``/docs`` and ``/redoc``
name no other site, each script, style and icon they name answers 200 from the API itself, the pages'
Content-Security-Policy allows only the API's own origin, and the document is given as it is (OpenAPI 3.1, no
relabel to 3.0: Swagger UI 5 reads it)."""

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
    assert "SwaggerUIBundle" in start and "http" not in start and "3.0" not in start  # the document as it is
    assert "validatorUrl: null" in start  # no badge from validator.swagger.io
    assert 'PACKAGE_VERSION:"5.' in client.get("/docs/assets/swagger-ui-bundle.js").text  # Swagger UI 5 reads 3.1
    assert re.search(r'data-openapi="/openapi.json"', page.text)
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1.")
    assert client.get("/docs/assets/..%2Fpyproject.toml").status_code == 404
    assert client.get("/docs/assets/index.html").status_code == 404  # only the listed assets
    redoc = client.get("/redoc", follow_redirects=False)
    assert redoc.status_code == 200 and not re.search(r"(?:https?:)?//", redoc.text), "ReDoc, offline too"
    csp = redoc.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp and "unsafe-eval" not in csp
    named = re.findall(r'(?:src|href)="([^"]+)"', redoc.text)
    assert {n.rsplit("/", 1)[-1] for n in named} >= {"redoc.standalone.js", "redoc-start.js"}
    assert all(client.get(url).status_code == 200 for url in named)

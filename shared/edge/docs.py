"""Every API's Swagger UI (``/docs``) from the installed ``swagger-ui-bundle`` package, never from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and style from cdn.jsdelivr.net (and ``/redoc`` loads ReDoc
and fonts from the internet): on a machine with no internet access the page is blank. ``install_docs`` (called by
``shared.edge.http.install_common`` for every API) replaces them: ``/docs`` is a page of this API's own
``/docs/assets/…`` (the package's ``swagger-ui-bundle.js``, ``swagger-ui.css``, its icon, and a start script of ours,
since the page allows no inline script), with a strict Content-Security-Policy; ``/redoc`` sends to ``/docs``.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HEADERS = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
ASSETS = {  # what /docs/assets/ serves: these names only
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# Swagger UI 4 (the package's) reads OpenAPI 3.0 only and FastAPI writes 3.1: the page fetches the document and
# shows it as 3.0 (what it renders of a 3.1 document is the same for these APIs: nullable fields read as anyOf).
START = """window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  fetch(root.getAttribute("data-openapi"), {credentials: "same-origin"})
    .then(function (answer) { return answer.json(); })
    .then(function (spec) {
      if (/^3\\.1\\./.test(spec.openapi || "")) { spec.openapi = "3.0.3"; }
      window.ui = SwaggerUIBundle({
        spec: spec,
        dom_id: "#swagger-ui",
        deepLinking: true,
        showExtensions: true,
        showCommonExtensions: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
        layout: "BaseLayout"
      });
    });
});
"""
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" type="image/png" href="{base}/assets/favicon-32x32.png">
<link rel="stylesheet" href="{base}/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{base}/assets/swagger-ui-bundle.js"></script>
<script src="{base}/assets/start.js"></script>
</body>
</html>
"""


def asset_path(name: str) -> Path:
    return Path(str(swagger_ui_path)) / name


def install_docs(app: FastAPI) -> None:
    """Serve the app's ``/docs`` (when it has one) from local assets; ``/redoc`` answers a redirect to it."""
    docs, openapi = app.docs_url, app.openapi_url
    if not docs or not openapi:
        return
    replaced = {docs, app.redoc_url}
    app.router.routes[:] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path in replaced)]

    async def page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        body = PAGE.format(title=escape(f"{app.title} — API"), base=escape(root + docs), openapi=escape(root + openapi))
        return HTMLResponse(body, headers=HEADERS | {"Cache-Control": "no-store"})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "start.js":
            return Response(START, media_type="application/javascript", headers=HEADERS)
        if name not in ASSETS:
            raise HTTPException(404, detail=f"no asset {name[:60]!r}")
        return FileResponse(
            asset_path(name), media_type=ASSETS[name], headers=HEADERS | {"Cache-Control": "public, max-age=86400"}
        )

    async def redoc(request: Request) -> Response:
        return RedirectResponse(docs, status_code=307)

    app.add_route(docs, page, include_in_schema=False)
    app.add_route(f"{docs}/assets/{{name}}", asset, include_in_schema=False)
    if app.redoc_url:
        app.add_route(app.redoc_url, redoc, include_in_schema=False)

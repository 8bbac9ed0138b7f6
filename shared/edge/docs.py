"""Every API's Swagger UI (``/docs``) and ReDoc (``/redoc``) from the installed ``fastapi-offline`` package's
assets (Swagger UI 5, ReDoc 2), never from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and style from cdn.jsdelivr.net (and ``/redoc`` loads ReDoc
and fonts from the internet): on a machine with no internet access the page is blank. ``install_docs`` (called by
``shared.edge.http.install_common`` for every API) replaces both: ``/docs`` and ``/redoc`` are pages of this API's
own ``/docs/assets/…`` (the package's ``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js``, its
icon, and a start script of ours, since the pages allow no inline script), with a strict Content-Security-Policy.
Swagger UI 5 and ReDoc 2 read the OpenAPI 3.1 document FastAPI writes as it is (Swagger UI 4 read 3.0 only).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# ReDoc styles itself with <style> elements it writes at run time (styled-components) and searches in a worker it
# makes from a blob: still no script but the API's own, and nothing from another origin.
REDOC_CSP = DOCS_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + "; worker-src 'self' blob:"
HEADERS = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
STATIC = Path(fastapi_offline.__file__).parent / "static"
ASSETS = {  # what /docs/assets/ serves: these names only
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "application/javascript",
    "favicon.png": "image/png",
}
START = """window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
});
"""
REDOC_START = """window.addEventListener("load", function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-openapi"), {hideDownloadButton: false}, root);
});
"""
SCRIPTS = {"start.js": START, "redoc-start.js": REDOC_START}
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" type="image/png" href="{base}/assets/favicon.png">
<link rel="stylesheet" href="{base}/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{base}/assets/swagger-ui-bundle.js"></script>
<script src="{base}/assets/start.js"></script>
</body>
</html>
"""
REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" type="image/png" href="{base}/assets/favicon.png">
</head>
<body>
<div id="redoc" data-openapi="{openapi}"></div>
<script src="{base}/assets/redoc.standalone.js"></script>
<script src="{base}/assets/redoc-start.js"></script>
</body>
</html>
"""


def asset_path(name: str) -> Path:
    return STATIC / name


def install_docs(app: FastAPI) -> None:
    """Serve the app's ``/docs`` and ``/redoc`` (when it has them) from local assets."""
    docs, openapi = app.docs_url, app.openapi_url
    if not docs or not openapi:
        return
    replaced = {docs, app.redoc_url}
    app.router.routes[:] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path in replaced)]

    def render(request: Request, template: str, csp: str) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        title, base = escape(f"{app.title} — API"), escape(root + docs)
        body = template.format(title=title, base=base, openapi=escape(root + openapi))
        return HTMLResponse(body, headers=HEADERS | {"Content-Security-Policy": csp, "Cache-Control": "no-store"})

    async def page(request: Request) -> HTMLResponse:
        return render(request, PAGE, DOCS_CSP)

    async def redoc(request: Request) -> HTMLResponse:
        return render(request, REDOC_PAGE, REDOC_CSP)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name in SCRIPTS:
            return Response(SCRIPTS[name], media_type="application/javascript", headers=HEADERS)
        if name not in ASSETS:
            raise HTTPException(404, detail=f"no asset {name[:60]!r}")
        return FileResponse(
            asset_path(name), media_type=ASSETS[name], headers=HEADERS | {"Cache-Control": "public, max-age=86400"}
        )

    app.add_route(docs, page, include_in_schema=False)
    app.add_route(f"{docs}/assets/{{name}}", asset, include_in_schema=False)
    if app.redoc_url:
        app.add_route(app.redoc_url, redoc, include_in_schema=False)

"""The demo's stand-in for Facebook's Graph API: the one endpoint a Lead Ads webhook makes the leads service call.

A Page webhook carries only ids (``leadgen_id``); the leads service fetches the lead's fields with
``GET /{version}/{leadgen_id}?fields=…&access_token=…`` from ``PIPELINES_FACEBOOK_GRAPH_URL``. In the demo that URL
is this server: the simulation first puts a lead here (``PUT /_demo/leads/{leadgen_id}``, this stub's own route),
then sends the signed webhook, and the leads service reads the lead from here exactly as it would from Facebook.

The answer has the shape Facebook documents for a lead (Marketing API, "Retrieving Leads"):
``{"id", "created_time": "2026-11-24T09:03:15+0000", "ad_id", "form_id", "campaign_id", "field_data": [{"name",
"values": [...]}]}``; a wrong access token answers 400 with Graph's error object (code 190), an unknown lead 400
with code 100, as Graph does.

``python -m tools.graph_stub --port 8126`` (the access token it accepts: ``PIPELINES_FACEBOOK_ACCESS_TOKEN``).
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_LEADS = 100_000  # the demo's leads it keeps (the oldest forgotten first)
LEAD_ID = re.compile(r"^[0-9]{1,40}$")
VERSION = re.compile(r"^v[0-9]{1,3}\.[0-9]{1,2}$")


def _error(message: str, code: int, kind: str = "GraphMethodException") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=400)


def app(access_token: str) -> Starlette:
    leads: dict[str, dict[str, Any]] = {}

    async def put_lead(request: Request) -> Response:
        leadgen_id = request.path_params["leadgen_id"]
        if not LEAD_ID.match(leadgen_id):
            return JSONResponse({"detail": "a leadgen id is digits"}, status_code=422)
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("field_data"), list):
            return JSONResponse({"detail": "a lead is an object with field_data"}, status_code=422)
        if len(leads) >= MAX_LEADS:
            leads.pop(next(iter(leads)))
        leads[leadgen_id] = body | {"id": leadgen_id}
        return Response(status_code=204)

    async def get_lead(request: Request) -> Response:
        version, leadgen_id = request.path_params["version"], request.path_params["leadgen_id"]
        if not VERSION.match(version):
            return _error(f"Unknown path components: /{version}", 2500, "OAuthException")
        if request.query_params.get("access_token") != access_token:
            return _error("Invalid OAuth access token.", 190, "OAuthException")
        lead = leads.get(leadgen_id)
        if lead is None:
            return _error(f"Unsupported get request. Object with ID '{leadgen_id}' does not exist", 100)
        wanted = request.query_params.get("fields")
        if wanted:
            keep = set(wanted.split(",")) | {"id"}
            lead = {k: v for k, v in lead.items() if k in keep}
        return JSONResponse(lead)

    async def ready(_: Request) -> Response:
        return JSONResponse({"status": "ready", "leads": len(leads)})

    return Starlette(
        routes=[
            Route("/_demo/leads/{leadgen_id}", put_lead, methods=["PUT"]),
            Route("/readyz", ready),
            Route("/{version}/{leadgen_id}", get_lead),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8126)
    args = parser.parse_args()
    token = os.environ.get("PIPELINES_FACEBOOK_ACCESS_TOKEN")
    if not token:
        raise SystemExit("PIPELINES_FACEBOOK_ACCESS_TOKEN is not set: the stub answers only that token")
    uvicorn.run(app(token), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

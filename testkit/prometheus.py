"""A real Prometheus (Debian's binary, installed by ``scripts/stack setup``) for a test: its own config and data dir
in a temporary folder, on loopback and a free port, scraping the targets given and evaluating the shipped rules of
deploy/monitoring/rules.yaml with their waits shortened (``quick_rules``: the same rules, never a second copy)."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from shared.ops.stack import ROOT, free_port

RULES = ROOT / "deploy" / "monitoring" / "rules.yaml"
DASHBOARD = ROOT / "deploy" / "monitoring" / "dashboard.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
_WINDOW = re.compile(r"\[(\d+)[mh]\]")
_OFFSET = re.compile(r"offset (\d+)[mh]")


def quick_rules(source: Path, *, interval: str, hold: str, window: str) -> dict[str, Any]:
    """The shipped rules as a test runs them: every group evaluated each ``interval``, every alert's ``for:`` set
    to ``hold``, and every range window and offset of the expressions set to ``window`` (a test cannot wait
    the minutes a cluster does). The expressions are otherwise the shipped ones."""
    rules = yaml.safe_load(source.read_text())
    for group in rules["groups"]:
        group["interval"] = interval
        for rule in group["rules"]:
            rule["expr"] = _OFFSET.sub(f"offset {window}", _WINDOW.sub(f"[{window}]", rule["expr"]))
            if "alert" in rule:
                rule["for"] = hold
    return dict(rules)


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]

    async def get(self, path: str, **params: str) -> Any:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{self.url}{path}", params=params)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        return list((await self.get("/api/v1/query", query=expr))["result"])

    async def firing(self, alertname: str) -> list[dict[str, str]]:
        """The labels of each firing alert of that name."""
        alerts = (await self.get("/api/v1/alerts"))["alerts"]
        return [a["labels"] for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


@contextlib.contextmanager
def prometheus(
    workdir: Path, jobs: dict[str, list[str]], rules: dict[str, Any], every: str = "1s"
) -> Iterator[Prometheus]:
    """Prometheus scraping each job's targets (host:port, /metrics) every ``every`` with ``rules`` loaded; stopped
    and its data dropped afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {
        "global": {"scrape_interval": every, "evaluation_interval": every, "scrape_timeout": every},
        "rule_files": [str(workdir / "rules.yaml")],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": t}]} for job, t in jobs.items()],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    command = [
        PROMETHEUS,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    server = Prometheus(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not start: {(workdir / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        shutil.rmtree(workdir / "data", ignore_errors=True)

"""Each service's process knows every event type its code names: a reaction or read model that accepts another
service's type must find it in the registry of the process that runs it (``python -m services.<svc>``), which
imports that service's ``main`` and what it imports, not every contract as the tests' own process does.

A type missing there is dead-lettered as "unknown event type" on every message (found so: the directory's
conversion links never ran in a deployment, its process did not import the leads' contract). Checked in one fresh
interpreter, the services' modules dropped and the registry emptied between services."""

from __future__ import annotations

import json
import subprocess
import sys

from shared.core.events import registry
from shared.ops.settings import SERVICES
from shared.ops.stack import ROOT
from tools import contract  # noqa: F401  # registers every contract: what a real type is

CHECK = """
import importlib, json, re, sys
from pathlib import Path
from shared.core.events import registry
out = {}
for svc in sys.argv[1:]:
    for name in [m for m in sys.modules if m == "services" or m.startswith("services.")]:
        del sys.modules[name]
    registry._types.clear()
    importlib.import_module(f"services.{svc}.main")
    named = set()
    for path in Path("services", svc).rglob("*.py"):
        named |= set(re.findall(r'"(pipelines\\.[a-z]+\\.[A-Z][A-Za-z]+)"', path.read_text()))
    out[svc] = {"named": sorted(named), "registered": sorted(t for t in named if t in registry)}
print(json.dumps(out))
"""


def test_every_event_type_a_services_code_names_is_registered_in_its_own_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK, *SERVICES], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    for service in SERVICES:
        real = {t for t in found[service]["named"] if t in registry}  # not a prefix such as "pipelines.agenda.Activity"
        assert real, f"{service}: its code names no event type?"
        assert real - set(found[service]["registered"]) == set(), f"{service}'s process lacks these types"

"""A PostgreSQL cluster of a test's own with deploy/postgres/roles.sql applied, as a deployment's database is: each
service's role with a password chosen here (the per-service roles tests and the compose test run the services as
those roles)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from shared.ops.settings import SERVICES
from shared.ops.stack import ROOT

ROLES_SQL = ROOT / "deploy" / "postgres" / "roles.sql"
ROLES = (*SERVICES, "signin", "webhooks")  # roles.sql's login roles (signin: decision 0022; webhooks: 0026)


def stack(run_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [str(ROOT / "scripts/stack"), "--run-dir", str(run_dir), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def psql(url: str, *args: str) -> None:
    tool = shutil.which("psql") or str(max(Path("/usr/lib/postgresql").glob("*/bin/psql")))
    done = subprocess.run(
        [tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


@contextmanager
def role_database(run_dir: Path, database: str = "pipelines_roles") -> Iterator[dict[str, str]]:
    """A fresh cluster in ``run_dir`` (``scripts/stack pg-up``) and database, roles.sql applied by psql as the
    superuser (the stack's: postgres/postgres); yields each role's URL; wipes the cluster after."""
    out = stack(run_dir, "pg-up")
    url = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export DATABASE_URL="))
    port = urlsplit(url).port
    superuser = f"postgresql://postgres:postgres@127.0.0.1:{port}"
    try:
        psql(f"{superuser}/postgres", "-c", f'CREATE DATABASE "{database}"')
        passwords = {role: secrets.token_hex(16) for role in ROLES}
        variables = [arg for role, pw in passwords.items() for arg in ("-v", f"{role}_password={pw}")]
        psql(f"{superuser}/{database}", *variables, "-f", str(ROLES_SQL))
        yield {role: f"postgresql://{role}:{pw}@127.0.0.1:{port}/{database}" for role, pw in passwords.items()}
    finally:
        stack(run_dir, "down", "--wipe")

"""``pipelines import SOURCE FILE…``: another system's exports into the services, through their batch routes
(decision 0021; the core is ``shared.imports``). A progress bar (rows/s, ETA) while it runs, a summary after it;
bad and refused rows in the report (CSV: file, row, column, reason); a checkpoint so that the same command, after a
kill, resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from shared.imports.mapping import SERVICE_ORDER, MappingError, builtin, load
from shared.imports.reader import FileError
from shared.imports.runner import Counts, HttpSender, Options, Run, RunError
from shared.ops.settings import Settings, SettingsError


def local_token(settings: Settings, user: str) -> str:
    """An importer's token signed with the deployment's key (the local stack's: a deployment gives PIPELINES_TOKEN)."""
    from shared.edge.auth import issue_token
    from shared.edge.keys import SigningKeys

    return issue_token(SigningKeys.from_settings(settings), user_id=user, roles=["importer"], ttl=timedelta(hours=12))


def default_owner(user: str | None, team: str | None) -> dict[str, str | None] | None:
    """``--owner USER [--owner-team TEAM]``: the owner of rows whose owner the mapping does not know."""
    return {"user": user, "team": team} if user else None


def checkpoint_path(run_dir: Path, source: str, files: Sequence[Path]) -> Path:
    """One checkpoint per source and set of files (by name: the content's hash is checked inside)."""
    names = "\n".join(sorted(str(f.resolve()) for f in files))
    return run_dir / "imports" / f"{source}-{hashlib.sha256(names.encode()).hexdigest()[:16]}.json"


def run_import(
    settings: Settings,
    console: Console,
    *,
    source: str,
    files: Sequence[Path],
    mapping: Path | None,
    dry_run: bool,
    report: Path | None,
    owner: str | None,
    owner_team: str | None = None,
    run_dir: Path,
) -> int:
    """Run the import; the exit code (0: every row created or already there; 1: some bad or refused; 2: refused
    as a whole)."""
    try:
        loaded = load(mapping or builtin(source))
        token = os.environ.get("PIPELINES_TOKEN") or local_token(settings, "u-import")
    except (MappingError, SettingsError) as exc:
        console.print(f"[red]{exc}")
        return 2
    urls = {service: settings.api_url(service) for service in SERVICE_ORDER}
    options = Options(
        source,
        dry_run=dry_run,
        report=report or Path(f"{source}-import-report.csv"),
        checkpoint=checkpoint_path(run_dir, source, files),
        default_owner=default_owner(owner, owner_team),
    )
    started = time.monotonic()
    try:
        counts = asyncio.run(_run(loaded, urls, token, options, files, console))
    except (RunError, FileError) as exc:
        console.print(f"[red]import refused[/]: {exc}", soft_wrap=True)
        return 2
    _summary(console, counts, time.monotonic() - started, options, loaded.title)
    return 1 if counts.bad or counts.refused else 0


async def _run(loaded, urls, token, options, files, console) -> Counts:  # type: ignore[no-untyped-def]
    sender = HttpSender(urls, token)
    started = time.monotonic()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]} rows · {task.fields[rate]:.0f} rows/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("dry run" if options.dry_run else "import", total=1.0, rows=0, rate=0.0)

        def step(counts: Counts, fraction: float | None) -> None:
            rate = counts.rows / max(time.monotonic() - started, 1e-6)
            progress.update(task, completed=fraction if fraction is not None else 0.0, rows=counts.rows, rate=rate)

        run = Run(loaded, sender, options, step)
        try:
            return await run.run(files)
        finally:
            await sender.close()
            for plan in run.plans:  # which encoding and delimiter were sniffed
                console.print(plan.describe(), soft_wrap=True, highlight=False)


def _summary(console: Console, counts: Counts, seconds: float, options: Options, title: str) -> None:
    table = Table("rows", "created", "already there", "refused", "bad", "resumed past", "rows/s")
    rate = counts.rows / seconds if seconds > 0 else 0.0
    table.add_row(
        *(str(x) for x in (counts.rows, counts.created, counts.exists, counts.refused, counts.bad, counts.skipped)),
        f"{rate:.0f}",
    )
    console.print(f"{title}{' (dry run: nothing written)' if options.dry_run else ''}")
    console.print(table)
    if counts.bad or counts.refused:
        console.print(f"bad and refused rows: {options.report}", soft_wrap=True)

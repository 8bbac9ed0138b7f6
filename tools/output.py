"""How every ``pipelines`` command answers, the way command-line tools conventionally do:

- results on stdout: a table for a person at a terminal; when stdout is piped, tab-separated lines with a header and
  every value whole (a table cut at the terminal's width would cut values mid-way); with ``--json``, JSON;
- errors on stderr, one line (``error: …``), and a non-zero exit: 2 for a mistake in the command line, 1 when what
  was asked for cannot be done (an unknown id, a service that does not answer), 3 for a relay stopped before an event,
  4 when a service answered busy (``error: busy, retry in N s``: its requests in flight at their bound, decision 0032);
  never a traceback for a user's mistake (``PIPELINES_DEBUG=1`` shows one for a fault of ours).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

# typer 0.29 carries its own copy of click (pinned in uv.lock): its exceptions are these, not the click package's
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from shared.ops.settings import SettingsError

console = Console()  # progress bars and human notes (results go through emit)
JSON = typer.Option("--json", help="print JSON (one document) instead of a table")


class UserError(ClickException):
    """What was asked cannot be done (an unknown id, nothing at that offset): one line on stderr, exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:  # click's own printing (CliRunner, standalone): one line too
        typer.echo(f"error: {self.format_message()}", err=True)


class UnansweredError(UserError):
    """A service or key the command needs did not answer or is not configured: exit 2."""

    exit_code = 2


class BusyError(UserError):
    """A service answered 503 ``busy`` (decision 0032): ``error: busy, retry in N s``, exit 4. Not retried here:
    a script decides when to retry, and an overloaded API is not sent more."""

    exit_code = 4

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy, retry in {retry_after} s")
        self.retry_after = retry_after


def piped() -> bool:
    return not sys.stdout.isatty()


def as_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def emit(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], *, json_out: bool) -> None:
    """``rows`` as JSON (every key), or a table of ``columns`` (key → header): rich at a terminal, TSV when piped."""
    if json_out:
        as_json(list(rows))
        return
    if piped():
        sys.stdout.write("\t".join(columns.values()) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(_cell(row.get(k)) for k in columns) + "\n")
        return
    table = Table(*columns.values())
    for row in rows:
        table.add_row(*(_cell(row.get(k)) for k in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(text.split()) if ("\t" in text or "\n" in text) else text


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        try:
            where = f"{exc.request.url.scheme}://{exc.request.url.netloc.decode()}"
        except RuntimeError:  # no request attached
            where = "the service"
        return f"cannot reach {where}: is it running? (pipelines services status)"
    return " ".join(str(exc).split()) or type(exc).__name__


def run(app: Callable[..., Any]) -> None:
    """The console script: the typer app without its framed error panels and tracebacks."""
    debug = os.environ.get("PIPELINES_DEBUG") == "1"
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError:
        sys.exit(2)  # the help was printed
    except UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        _fail(f"{' '.join(exc.format_message().split())}{hint}", 2)
    except ClickException as exc:
        _fail(" ".join(exc.format_message().split()), exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except (SettingsError, httpx.HTTPError, OSError, LookupError, ValueError) as exc:
        if debug:
            raise
        _fail(_one_line(exc), 1)
    except Exception as exc:
        if debug:
            raise
        _fail(f"{type(exc).__name__}: {_one_line(exc)} (a fault of ours: PIPELINES_DEBUG=1 shows where)", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)

"""What the README, docs/ and deploy/'s READMEs name exists in the code: settings, metrics, files, commands, tests.

The mechanical half of reading the documents against the code (test_docs_routes.py does the routes):

- every ``PIPELINES_*`` variable the documents name is read by the code (a setting of ``shared.ops.settings``, or
  read from the environment by a script, a tool or the tests), and every setting is documented in the README or
  docs/OPERATIONS.md;
- every metric ``pipelines_*`` they name is one the processes export;
- every repository path they name (``services/<svc>/events.py``, ``tests/integration/test_restore_drill.py``) exists,
  ``<name>`` and ``{name}`` matching any one part and a trailing ``…`` anything;
- every ``pipelines <command>`` is a command of tools/cli.py with the options named, every ``scripts/stack <action>``
  an action of the script, every ``make <target>`` a target, every ``python -m <module>`` a module that runs;
- every ``test_…`` named as proof is a test file or a test function.

What a document names on purpose without it existing (a decision recording what was) is listed below with why;
an exception no longer needed fails too."""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import pytest
import typer.core
import typer.main
from pydantic import AliasChoices

from shared.ops import metrics
from shared.ops.secret_files import file_settings, variables
from shared.ops.settings import SERVICES, Settings
from tools.cli import app

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "deploy").rglob("*.md"))]
# where a setting counts as documented for an operator
OPERATOR_DOCS = [ROOT / "README.md", ROOT / "docs" / "OPERATIONS.md"]

# paths a document names that are not in the repository, and why
NOT_REPO_PATHS = {
    "shared/decider.py": "decision 0016 tells where the decider was before the layout change",
    "postgres/roles.sql": "the README's tree, under deploy/",
}


def texts() -> list[tuple[Path, str]]:
    return [(doc, doc.read_text()) for doc in DOCS]


def spans(text: str) -> list[tuple[int, str]]:
    """(line, content) of every span in backquotes outside fenced blocks; a span wrapped over lines is joined."""
    text = re.sub(r"```.*?```", lambda b: "\n" * b[0].count("\n"), text, flags=re.S)
    return [
        (text.count("\n", 0, m.start()) + 1, re.sub(r"\s*\n\s*", " ", m[1]).strip())
        for m in re.finditer(r"`([^`]+)`", text)
    ]


def where(doc: Path, line: int) -> str:
    return f"{doc.relative_to(ROOT)}:{line}"


# ---------------------------------------------------------------- settings


def setting_names() -> dict[str, set[str]]:
    """Each setting → the environment variables that set it."""
    out = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            out[name] = {str(choice) for choice in alias.choices}
        else:
            out[name] = {f"PIPELINES_{name.upper()}"}
    return out


@functools.cache
def read_by_code() -> frozenset[str]:
    """``PIPELINES_*`` variables that scripts, tools and tests read from the environment."""
    found: set[str] = set()
    for path in [*ROOT.glob("[!.]*/**/*.py"), ROOT / "Makefile", ROOT / ".ci" / "run", *(ROOT / "scripts").iterdir()]:
        if ".venv" in path.parts or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".py":
            found |= set(re.findall(r"(?:environ\.get|getenv|env\.get)\(\s*[\"'](PIPELINES_\w+)", text))
            found |= set(re.findall(r"environ\[[\"'](PIPELINES_\w+)", text))
        else:
            found |= set(re.findall(r"\$\{?(PIPELINES_\w+)", text))  # a shell script reading it
            for recipe in re.findall(r"(?m)^\t.*$", text):  # make passing it to a command
                found |= set(re.findall(r"\b(PIPELINES_\w+)=", recipe))
    return frozenset(found)


def env_mentions() -> list[tuple[str, str]]:
    return [
        (where(doc, text.count("\n", 0, m.start()) + 1), m[1])
        for doc, text in texts()
        for m in re.finditer(r"\b(PIPELINES_[A-Z0-9_]*[A-Z0-9])\b", text)
    ]


@pytest.mark.parametrize(("at", "name"), env_mentions(), ids=lambda v: str(v))
def test_a_variable_the_docs_name_is_read_by_the_code(at: str, name: str) -> None:
    known = set().union(*setting_names().values()) | read_by_code()
    # a secret's <VAR>_FILE (shared.ops.secret_files)
    known |= {f"{v}_FILE" for f, info in file_settings(Settings).items() for v in variables(f, info, "PIPELINES_")}
    assert name in known, f"{at}: {name} is no setting and nothing reads it"


@pytest.mark.parametrize("setting", sorted(setting_names()))
def test_every_setting_is_documented_for_operators(setting: str) -> None:
    documented = "\n".join(doc.read_text() for doc in OPERATOR_DOCS)
    names = setting_names()[setting]
    # a service's own database URL is documented once for them all, as <SERVICE>_DATABASE_URL
    service = "|".join(SERVICES).upper()
    generic = {re.sub(rf"^({service})_", "<SERVICE>_", n) for n in names}
    assert any(re.search(rf"(?<![A-Z_<]){re.escape(n)}\b", documented) for n in names | generic), (
        f"setting {setting} ({' or '.join(sorted(names))}) is in neither the README nor docs/OPERATIONS.md"
    )


# ---------------------------------------------------------------- metrics


@functools.cache
def exported_metrics() -> frozenset[str]:
    """Every name a scrape shows: families and their samples (``_total``, ``_bucket``, ``_sum``, ``_count``)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if hasattr(value, "collect") and hasattr(value, "_name"):
            for family in value.collect():
                names.add(family.name)
                names |= {sample.name for sample in family.samples}
            names |= {f"{value._name}_total", f"{value._name}_sum", f"{value._name}_count", f"{value._name}_bucket"}
    return frozenset(names)


def metric_mentions() -> list[tuple[str, str]]:
    return [
        (where(doc, text.count("\n", 0, m.start()) + 1), m[1])
        for doc, text in texts()
        # not after "-": the board's cookie __Host-pipelines_csrf is no metric
        for m in re.finditer(r"(?<![\w.-])(pipelines_[a-z0-9_]*[a-z0-9])\b", text)
    ]


@pytest.mark.parametrize(("at", "name"), metric_mentions(), ids=lambda v: str(v))
def test_a_metric_the_docs_name_is_exported(at: str, name: str) -> None:
    assert name in exported_metrics(), f"{at}: {name} is no metric of shared/ops/metrics.py"


def test_the_metrics_exist_at_all() -> None:
    assert {"pipelines_relay_stuck", "pipelines_dead_letters_total"} <= exported_metrics()


def test_the_metrics_module_lists_every_metric_it_defines() -> None:
    listed = set(re.findall(r"^\| `(pipelines_\w+)`", metrics.__doc__ or "", re.M))
    defined = {v._name for v in vars(metrics).values() if hasattr(v, "collect") and hasattr(v, "_name")}
    kinds = {v._name: type(v).__name__ for v in vars(metrics).values() if hasattr(v, "_name")}
    scraped = {f"{name}_total" if kinds[name] == "Counter" else name for name in defined}
    assert listed == scraped, (
        f"shared/ops/metrics.py's table: missing {scraped - listed}, not defined {listed - scraped}"
    )


# ---------------------------------------------------------------- paths

TOP = [
    "bench",
    "deploy",
    "docs",
    "scripts",
    "services",
    "shared",
    "testkit",
    "tests",
    "tools",
    ".ci",
]  # the repository's folders
BARE_PATH = re.compile(rf"(?<![\w/.:<>-])((?:{'|'.join(map(re.escape, TOP))})/[\w./<>*{{}}-]*\w)")


def path_mentions() -> list[tuple[str, str]]:
    """Spans in backquotes that read as a repository path, and bare paths with an extension under a top folder."""
    found = []
    for doc, text in texts():
        for line, span in spans(text):
            first = span.split("/", 1)[0]
            looks = "/" in span and (first in TOP or re.search(r"\.\w+$", span)) and not span.startswith(("/", "<"))
            if looks and not re.search(r"\s|://", span.replace("<run dir>", "")):
                found.append((where(doc, line), span))
        for m in BARE_PATH.finditer(re.sub(r"`[^`]*`", lambda b: "\n" * b[0].count("\n"), text)):
            if re.search(r"\.\w+$", m[1]):
                found.append((where(doc, text.count("\n", 0, m.start()) + 1), m[1]))
    return found


@pytest.mark.parametrize(("at", "path"), path_mentions(), ids=lambda v: str(v))
def test_a_path_the_docs_name_exists(at: str, path: str) -> None:
    if path in NOT_REPO_PATHS:
        return
    pattern = re.sub(r"<[^>]*>|\{[^}]*\}", "*", path).rstrip("/").replace("…", "*")
    assert next(ROOT.glob(pattern), None), f"{at}: {path} is not in the repository"


# ---------------------------------------------------------------- commands


def command_mentions(prefix: str) -> list[tuple[str, list[str]]]:
    """The words after ``prefix`` of every span in backquotes that starts with it (a ``.venv/bin/`` before it too)."""
    found = []
    for doc, text in texts():
        for line, span in spans(text):
            span = span.removeprefix(".venv/bin/").removeprefix('eval "$(').removesuffix(')"')
            if span.startswith(prefix + " "):
                found.append((where(doc, line), span.split()[1:]))
    return found


@pytest.mark.parametrize(("at", "words"), command_mentions("pipelines"), ids=lambda v: str(v))
def test_a_pipelines_command_the_docs_name_exists_with_its_options(at: str, words: list[str]) -> None:
    command = typer.main.get_command(app)
    for word in words:
        if not isinstance(command, typer.core.TyperGroup) or word.startswith("-"):
            break
        sub = command.get_command(typer.Context(command), word)
        assert sub is not None, f"{at}: pipelines has no command {' '.join(words[: words.index(word) + 1])}"
        command = sub
    options = {  # a flag's --no-… is its secondary option
        opt for param in command.params for opt in (*getattr(param, "opts", []), *getattr(param, "secondary_opts", []))
    } | {"--help"}
    named = [w for w in words if w.startswith("--")]
    assert not [o for o in named if o not in options], f"{at}: {' '.join(words)} names an option it does not take"


def stack_actions() -> set[str]:
    text = (ROOT / "scripts" / "stack").read_text()
    return set(re.findall(r"(?m)^  ([a-z-]+)\)", text)) | {"--secure", "--nodes", "--run-dir"}


@pytest.mark.parametrize(("at", "words"), command_mentions("scripts/stack"), ids=lambda v: str(v))
def test_a_stack_action_the_docs_name_exists(at: str, words: list[str]) -> None:
    for action in words[0].split("|"):
        assert action in stack_actions(), f"{at}: scripts/stack has no {action}"


@pytest.mark.parametrize(("at", "words"), command_mentions("make"), ids=lambda v: str(v))
def test_a_make_target_the_docs_name_exists(at: str, words: list[str]) -> None:
    targets = set(re.findall(r"(?m)^([a-z][\w-]*):", (ROOT / "Makefile").read_text()))
    assert words[0] in targets, f"{at}: the Makefile has no target {words[0]}"


@pytest.mark.parametrize(("at", "words"), command_mentions("python -m"), ids=lambda v: str(v))
def test_a_module_the_docs_run_exists(at: str, words: list[str]) -> None:
    module = words[1]
    modules = [module.replace("<service>", s) for s in SERVICES] if "<" in module else [module]
    for name in modules:
        spec = importlib.util.find_spec(name)
        assert spec is not None, f"{at}: no module {name}"
        if spec.submodule_search_locations:  # a package runs its __main__
            assert importlib.util.find_spec(f"{name}.__main__"), f"{at}: {name} has no __main__"
        else:
            assert spec.origin and '__name__ == "__main__"' in Path(spec.origin).read_text(), (
                f"{at}: {name} runs nothing"
            )


def test_every_exception_is_still_needed() -> None:
    named = {path for _, path in path_mentions()}
    assert not [p for p in NOT_REPO_PATHS if p not in named], "a document no longer names it: drop the exception"
    assert not [p for p in NOT_REPO_PATHS if next(ROOT.glob(p), None)], "it exists now: drop the exception"


# ---------------------------------------------------------------- tests named as proof


def named_tests() -> list[tuple[str, str]]:
    return [
        (where(doc, text.count("\n", 0, m.start()) + 1), m[1])
        for doc, text in texts()
        for m in re.finditer(r"\b(test_[a-z0-9_]+)\b", text)
    ]


@functools.cache
def defined_tests() -> frozenset[str]:
    found = set()
    for path in (ROOT / "tests").rglob("*.py"):
        found.add(path.stem)
        found |= set(re.findall(r"def (test_\w+)\(", path.read_text()))
    return frozenset(found)


@pytest.mark.parametrize(("at", "name"), named_tests(), ids=lambda v: str(v))
def test_a_test_the_docs_name_as_proof_exists(at: str, name: str) -> None:
    assert name in defined_tests(), f"{at}: no test file or test function {name}"

"""``python -m bench [name …] [--quick]``: run the benchmarks on the servers, print tables, write bench/results/.

A quick run writes into a new temporary directory unless ``--out`` says where: it must never overwrite the kept
results.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, Env, Report, machine, write
from shared.ops.stack import Endpoints, Servers, start_servers

BENCHMARKS = (
    "append",
    "relay",
    "e2e",
    "overload",
    "rebuild",
    "replay",
    "growth",
    "projectors",
    "memory",
    "customers",
    "agenda",
    "notifier",
    "imports",
    "board",
    "tracing",
    "webhooks",
    "readmodels",
)


def summary(reports: list[Report], info: dict[str, object], seconds: float) -> str:
    head = [
        "# Benchmark results",
        "",
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB; Python {info['python']}, "
        f"PostgreSQL {info['postgresql']} (fsync {info['postgresql_fsync']}, synchronous_commit "
        f"{info['postgresql_synchronous_commit']}), Apache Kafka {info['kafka']} ({info['kafka_source']}); "
        f"commit {info['commit']}; {seconds / 60:.1f} min in all.",
        "",
        "Medians of several rounds; every figure beside a baseline doing the same work by hand in the same run.",
        "",
    ]
    targets = ["| benchmark | target | measured | goal | |", "|---|---|---|---|---|"]
    for r in reports:
        for t in r.targets:
            targets.append(f"| {r.name} | {t.name} | {t.value:g} | {t.goal} | {'met' if t.met else '**missed**'} |")
    return "\n".join([*head, "## Targets", "", *targets, "", *(r.table() for r in reports)])


async def main(names: list[str], quick: bool, out: Path, endpoints: Endpoints | None = None) -> int:
    """Run the benchmarks on ``endpoints`` (default: the servers tests use: environment, containers, local stack)."""
    servers = Servers(endpoints, lambda: None) if endpoints else start_servers()
    try:
        info = await machine(servers.endpoints)
        env = Env(servers.endpoints, quick=quick, out=out)
        reports = []
        started = time.monotonic()
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            print(f"== {name} …", flush=True)
            report: Report = await module.run(env)
            print(report.table(), flush=True)
            write(out, report, info)
            reports.append(report)
        text = summary(reports, info, time.monotonic() - started)
        if set(names) == set(BENCHMARKS):
            (out / "README.md").write_text(text)
        print(f"results in {out}")
        return 0
    finally:
        servers.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"which to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks run, measures nothing")
    parser.add_argument(
        "--out", type=Path, help="where results go (default bench/results; with --quick a new temporary directory)"
    )
    args = parser.parse_args()
    if unknown := set(args.names) - set(BENCHMARKS):
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}; there are {', '.join(BENCHMARKS)}")
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-quick-")) if args.quick else RESULTS)
    print(f"results go to {out}", flush=True)
    sys.exit(asyncio.run(main(args.names or list(BENCHMARKS), args.quick, out)))

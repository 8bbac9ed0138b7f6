"""CPU time of whole processes, per process kind, read from ``/proc/<pid>/stat`` (Linux).

A kind's CPU is its process tree's: the process's own user and system time, the time of the children it has
reaped (``cutime``/``cstime``: a PostgreSQL backend that ended, an API worker that exited) and that of its live
children, recursively. Across two readings a child that ended in between is counted once: in the first reading
as a live child, in the second inside its parent's reaped time, which holds its whole life.

``Meter`` reads every kind at once; ``Meter.spent()`` after a run is each kind's CPU seconds in it.
PostgreSQL is found from a backend (``pg_backend_pid()``'s parent is the postmaster), Kafka from the process
listening on its bootstrap port; either is left out when it does not run on this machine (a container).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

TICKS = os.sysconf("SC_CLK_TCK")
LOAD = "load generator"
BUDGET_MS = 2.3  # issue 32: 2,000 CPU-ms/s on 2 cores ÷ 850 commands/s, every process included


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command's name (the first is the state, field 3)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _children() -> dict[int, list[int]]:
    """Every live process's children, by parent pid."""
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
            found.setdefault(parent, []).append(int(entry.name))
    return found


def own_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` alone (user and system), without any child's."""
    try:
        return sum(int(x) for x in _stat(pid)[11:13]) / TICKS
    except OSError:
        return 0.0


def tree_seconds(pid: int, children: dict[int, list[int]] | None = None) -> float:
    """CPU seconds of ``pid``, its reaped children and its live descendants."""
    children = _children() if children is None else children
    try:
        f = _stat(pid)
    except OSError:
        return 0.0
    own = sum(int(x) for x in f[11:15]) / TICKS  # utime, stime, cutime, cstime
    return own + sum(tree_seconds(c, children) for c in children.get(pid, []))


async def postmaster(dsn: str) -> int | None:
    """The pid of the PostgreSQL server behind ``dsn`` when it runs on this machine."""
    conn = await asyncpg.connect(dsn)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        parent = int(_stat(backend)[1])  # while the backend lives: it ends with the connection
        name = Path(f"/proc/{parent}/comm").read_text().strip()
    except (OSError, IndexError, ValueError):
        return None  # not here (a container, another host)
    finally:
        await conn.close()
    return parent if name.startswith("postgres") else None


def listener(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` on this machine, if any (one whose sockets can be read)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rpartition(":")[2], 16) == port:  # LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not inodes:
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:
            continue  # not ours to read, or ended
    return None


@dataclass
class Meter:
    """Process kinds by name (each a root pid whose tree is counted); ``start()`` then ``spent()``."""

    roots: dict[str, int]
    within: dict[str, str] = field(default_factory=dict)  # a kind counted alone and taken out of another's tree
    before: dict[str, float] = field(default_factory=dict)

    def read(self) -> dict[str, float]:
        children = _children()
        alone = {LOAD, *self.within}  # the benchmark's own process without the services it started; the parts
        found = {
            kind: own_seconds(pid) if kind in alone else tree_seconds(pid, children) for kind, pid in self.roots.items()
        }
        for part, whole in self.within.items():
            if whole in found:
                found[whole] -= found[part]
        return found

    def start(self) -> None:
        self.before = self.read()

    def spent(self) -> dict[str, float]:
        now = self.read()
        return {kind: now[kind] - self.before.get(kind, now[kind]) for kind in self.roots}


WATCHER = "watcher's PG backend"  # the benchmark's polls of the read model: measuring, not the project's work


async def kinds(processes: dict[str, int], dsn: str, bootstrap: str, watcher: int | None = None) -> Meter:
    """The meter of a run: the service's processes, PostgreSQL, Kafka (first bootstrap server) and this process (the
    load generator), each where it runs on this machine; ``watcher``: the PostgreSQL backend of the benchmark's
    watcher, counted apart from PostgreSQL's."""
    roots = dict(processes)
    within = {}
    if (pg := await postmaster(dsn)) is not None:
        roots["postgresql"] = pg
        if watcher is not None:
            roots[WATCHER] = watcher
            within[WATCHER] = "postgresql"
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host in ("127.0.0.1", "localhost", "::1", "[::1]") and (kafka := listener(int(port))) is not None:
        roots["kafka"] = kafka
    roots[LOAD] = os.getpid()  # its children (the services, the baseline's consumer) are not counted in it
    return Meter(roots, within)


def per_command_ms(spent: dict[str, float], commands: int) -> dict[str, float]:
    """CPU milliseconds per command, per kind and in total."""
    if not commands:
        return {}
    out = {kind: round(s * 1000 / commands, 3) for kind, s in spent.items()}
    out["total"] = round(sum(spent.values()) * 1000 / commands, 3)
    return out


@dataclass
class Tally:
    """CPU seconds per kind and commands answered, summed over the measured rounds of each offered rate."""

    meter: Meter
    seconds: dict[int, dict[str, float]] = field(default_factory=dict)
    commands: dict[int, int] = field(default_factory=dict)
    idle: dict[str, float] = field(default_factory=dict)  # CPU ms per second of each kind with no command offered

    async def measure_idle(self, seconds: float = 2.0) -> None:
        self.meter.start()
        await asyncio.sleep(seconds)
        self.idle = {kind: round(s * 1000 / seconds, 1) for kind, s in self.meter.spent().items()}

    def add(self, rate: int, spent: dict[str, float], commands: int) -> None:
        mine = self.seconds.setdefault(rate, {})
        for kind, s in spent.items():
            mine[kind] = mine.get(kind, 0.0) + s
        self.commands[rate] = self.commands.get(rate, 0) + commands

    def per_command(self) -> dict[int, dict[str, float]]:
        return {rate: per_command_ms(spent, self.commands[rate]) for rate, spent in self.seconds.items()}

    def table(self) -> str:
        """One line per kind, one column per rate: CPU ms per command, the total beside the budget."""
        per = self.per_command()
        rates = sorted(per)
        head = "CPU ms per command".ljust(22) + "".join(f"{r:>10}/s" for r in rates) + "  idle ms/s"
        lines = [head]
        for kind in [*self.meter.roots, "total"]:
            idle = sum(self.idle.values()) if kind == "total" else self.idle.get(kind, 0.0)
            cells = "".join(f"{per[r].get(kind, 0.0):>12.3f}" for r in rates)
            lines.append(kind.ljust(22) + cells + f"{idle:>12.1f}")
        lines.append("budget (issue 32)".ljust(22) + "".join(f"{BUDGET_MS:>12.3f}" for _ in rates))
        return "\n".join(lines)

    def note(self) -> str:
        per = self.per_command()
        parts = [
            f"at {r}/s: " + ", ".join(f"{k} {v:g}" for k, v in per[r].items()) + f" ({self.commands[r]:,} commands)"
            for r in sorted(per)
        ]
        return (
            f"CPU ms per command, per process kind (its process tree's user + system time from /proc/<pid>/stat over "
            f"the project's measured rounds ÷ commands answered; PostgreSQL: every process of the server but the "
            f"backend answering the benchmark's watcher (polling the read model every 5 ms), shown apart; load generator: this benchmark's process alone), budget {BUDGET_MS} ms in "
            "total: "
            + "; ".join(parts)
            + ". With nothing offered, CPU ms per second: "
            + ", ".join(f"{k} {v:g}" for k, v in self.idle.items())
            + "".join(f". Not measured (not running on this machine): {m}" for m in self.missing())
        )

    def ceiling(self, rate: int) -> dict[str, float]:
        """Commands/s the CPU measured at ``rate`` allows: the API process on one core (1,000 ms ÷ its CPU-ms per
        command) and every process on the machine's cores (their sum)."""
        per = self.per_command().get(rate, {})
        api, total = per.get("api", 0.0), per.get("total", 0.0)
        return {
            "api_ms": api,
            "api_commands_per_s": round(1000 / api) if api else 0,
            "total_ms": total,
            "machine_commands_per_s": round((os.cpu_count() or 1) * 1000 / total) if total else 0,
        }

    def limits(self, achieved: dict[int, object]) -> str:
        """The ceilings beside what was achieved, ``achieved``: the project's achieved rate ÷ the baseline's, per
        offered rate (issue 32 item 2: >= 850/s and >= 0.85× the baseline at 1,000/s offered)."""
        parts = []
        for rate in sorted(self.commands):
            c = self.ceiling(rate)
            parts.append(
                f"at {rate}/s offered: achieved ÷ the baseline's {achieved.get(rate, '?')} (target 0.85 at 1,000/s); "
                f"the API process at {c['api_ms']:g} CPU-ms a command tops out at {c['api_commands_per_s']:,} "
                f"commands/s on one core; every process at {c['total_ms']:g} ms a command, at "
                f"{c['machine_commands_per_s']:,}/s on {os.cpu_count()} cores"
            )
        return "Limits measured in this run: " + "; ".join(parts) + "."

    def missing(self) -> list[str]:
        return [kind for kind in ("postgresql", "kafka") if kind not in self.meter.roots]

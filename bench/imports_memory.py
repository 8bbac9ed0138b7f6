"""``python -m bench.imports_memory N``: the importer's core over N generated rows in this process, every batch
answered at once by a sender that only counts; prints {"rows", "created", "peak_kib"} (VmHWM) as the last line.
Run by bench/imports.py once per size, so each size's peak is its own process's."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.imports import MAPPING, write_csv
from bench.processes import memory_kib
from shared.imports.mapping import load
from shared.imports.runner import Options, Run


class Counting:
    """A sender answering every row of a batch ``created``, keeping nothing."""

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        rows = batch["rows"]
        return {"results": [{"row": r["row"], "status": "created", "id": None, "errors": []} for r in rows]}


async def main(n: int) -> dict[str, int]:
    with TemporaryDirectory(prefix="bench-imports-memory-") as tmp:
        mapping = Path(tmp) / "bench.toml"
        mapping.write_text(MAPPING)
        path = write_csv(Path(tmp) / "deals.csv", n)
        counts = await Run(load(mapping), Counting(), Options("benchmemory")).run([path])
    return {"rows": counts.rows, "created": counts.created, "peak_kib": memory_kib(os.getpid())["VmHWM"]}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1])))))

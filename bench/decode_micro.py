"""Micro-bench of a projector's per-record CPU: decode and typing, on real envelopes, no servers (decision 0031).

``python -m bench.decode_micro [--rounds N]``: the deals history bench/rebuild.py produces (testkit/deals_history.py)
and the documented examples of the directory's events (docs/events/examples.jsonl, re-written as the relay writes
them), each step timed with timeit over all messages (the fastest of three passes, median over rounds), in µs per
message:

- the envelope: ``CloudEvent.from_kafka`` (pydantic), ``fast_envelope.decode`` (msgspec, every attribute);
- what the runner does per record: before session 40 ``decode`` then ``to_event()``; now ``decode_fact`` for a read
  model taking the type (the envelope and its typed ``Fact``) and for one not taking it (the envelope's head only);
- the typed event from the decoded envelope: ``to_event()``, then pydantic's other entries to the same validation
  given data already upcast and its tokens None (so without that work, which ``to_event()`` includes), among them
  ``model_validate_json`` of that data's JSON text (which a consumer would first have to scan for tokens, and fall
  back from: measured that way in session 40, no cheaper than ``to_event()``, so not used).

Not part of ``python -m bench`` (it measures no server): a helper to choose what pays before building it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from shared.core.events import registry
from shared.messaging import fast_envelope
from shared.messaging.envelope import CloudEvent
from shared.messaging.projections import Fact
from shared.privacy.pii import parse_stored, without_personal_data
from testkit.deals_history import History
from tools import asyncapi, contract  # noqa: F401 - contract registers every service's events

NOTHING = ("pipelines.none.",)  # a read model taking none of these types: only the head is needed
EVERY = ("pipelines.",)


def deals(n_deals: int = 200) -> list[bytes]:
    return [value for _, value in History(n_deals).messages()]


def directory() -> list[bytes]:
    examples = [json.loads(line)["value"] for line in asyncapi.EXAMPLES.read_text().splitlines()]
    return [
        CloudEvent.model_validate(e).kafka_value() for e in examples if e["type"].startswith("pipelines.directory.")
    ]


def per_message(values: list[Any], step: Callable[[Any], Any], rounds: int) -> float:
    """µs per message of ``step`` over ``values``: the median over rounds of the fastest of three passes (on a
    shared machine the fastest pass is the one least disturbed)."""
    times = [min(timeit.repeat(lambda: [step(v) for v in values], number=1, repeat=3)) for _ in range(rounds)]
    return statistics.median(times) / len(values) * 1e6


def _before(value: bytes) -> tuple[CloudEvent, Fact | None]:
    """What the runner did per record before session 40 (both kept, as decode_fact's answer is)."""
    envelope = fast_envelope.decode(value)
    return envelope, Fact(envelope, envelope.to_event())


def _data(e: CloudEvent) -> dict[str, Any]:
    """What the class validates: data upcast, tokens None (parse_stored's steps)."""
    return registry.upcast(e.type, e.schemaversion, without_personal_data(e.data))


def steps() -> dict[str, Callable[[Any], Any]]:
    adapters: dict[str, TypeAdapter[Any]] = {}

    def validate_python(e: CloudEvent) -> Any:
        cls = registry.get(e.type)
        return cls.__pydantic_validator__.validate_python(_data(e))

    def validate_json(raw: tuple[str, bytes]) -> Any:  # data's JSON text, its tokens already None
        return registry.get(raw[0]).model_validate_json(raw[1])

    def adapter(e: CloudEvent) -> Any:
        a = adapters.get(e.type) or adapters.setdefault(e.type, TypeAdapter(registry.get(e.type)))
        return a.validate_python(_data(e))

    def model_validate(e: CloudEvent) -> Any:
        cls = registry.get(e.type)
        return cls.model_validate(_data(e))

    return {
        "to_event (parse_stored)": lambda e: e.to_event(),
        "parse_stored direct": lambda e: parse_stored(e.type, e.schemaversion, e.data),
        "model_validate only": model_validate,
        "validator.validate_python": validate_python,
        "TypeAdapter.validate_python": adapter,
        "model_validate_json (data bytes)": validate_json,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_micro", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for name, values in (("deals", deals()), ("directory", directory())):
        print(f"\n{name}: {len(values)} messages, mean {statistics.mean(map(len, values)):.0f} bytes")
        decodes: dict[str, Callable[[bytes], Any]] = {
            "json.loads (raw read)": json.loads,
            "CloudEvent.from_kafka (pydantic)": CloudEvent.from_kafka,
            "fast_envelope.decode": fast_envelope.decode,
            "decode + to_event (the runner before)": _before,
            "decode_fact, type taken (the runner now)": lambda v: fast_envelope.decode_fact(v, EVERY),
            "decode_fact, type not taken": lambda v: fast_envelope.decode_fact(v, NOTHING),
        }
        for label, decode in decodes.items():
            print(f"  {label:45} {per_message(values, decode, args.rounds):7.2f} µs")
        envelopes = [fast_envelope.decode(v) for v in values]
        raws = [(e.type, json.dumps(_data(e)).encode()) for e in envelopes]
        for label, step in steps().items():
            given: list[Any] = raws if "json" in label else envelopes
            print(f"  {label:45} {per_message(given, step, args.rounds):7.2f} µs")


if __name__ == "__main__":
    main()

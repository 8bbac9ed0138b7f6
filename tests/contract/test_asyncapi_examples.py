"""The AsyncAPI documents' examples (docs/events/examples.jsonl, decision 0024 "AsyncAPI" and "TLS"): real messages
read from topics, and an older version only where it is exactly a real message as that version (``derived_from``):
the real message's fields the older schema has, which the code's own upcast turns back into the real data. And every
message of the documents has an example but the few listed here, each with why."""

from __future__ import annotations

import copy
import json
from typing import Any

from shared.core.events import registry
from tools import asyncapi, contract
from tools.asyncapi_examples import older_versions

# messages no example can honestly show, and why
NO_EXAMPLE: dict[str, str] = {}


def records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in asyncapi.EXAMPLES.read_text().splitlines()]


def test_an_older_versions_example_is_a_real_message_the_code_upcasts_back_exactly() -> None:
    real = {(r["value"]["id"], r["value"]["schemaversion"]): r for r in records() if "derived_from" not in r}
    derived = [r for r in records() if "derived_from" in r]
    assert derived, "ActivityLogged v1 has its example from a real v2 message"
    for record in derived:
        value, source = record["value"], record["derived_from"]
        original = real[(source["id"], source["schemaversion"])]["value"]  # a real message in the file
        assert value["schemaversion"] < source["schemaversion"] == registry.get(value["type"]).schema_version
        assert registry.upcast(value["type"], value["schemaversion"], value["data"]) == original["data"]
        same = {k: v for k, v in value.items() if k not in ("schemaversion", "data", "dataschema")}
        assert same == {k: v for k, v in original.items() if k not in ("schemaversion", "data", "dataschema")}
        assert value["dataschema"].endswith(f".v{value['schemaversion']}.json")
        assert older_versions(real[(source["id"], source["schemaversion"])]) == [record]  # made the documented way


def test_no_older_version_is_derived_when_the_upcast_would_not_give_the_real_data_back() -> None:
    (outbound,) = [r for r in records() if r["value"]["type"].endswith(".ActivityLogged") and "derived_from" not in r]
    assert outbound["value"]["data"]["direction"] == "outbound" and len(older_versions(outbound)) == 1
    inbound = copy.deepcopy(outbound)
    inbound["value"]["data"]["direction"] = "inbound"  # v1 had no inbound activities: its upcast says outbound
    assert older_versions(inbound) == []
    zalo = copy.deepcopy(outbound)
    zalo["value"]["data"]["channel"] = "zalo"  # a channel v1's schema does not list
    assert older_versions(zalo) == []


def test_the_documents_say_which_example_is_derived() -> None:
    message = asyncapi.service_document("deals")["components"]["messages"]["ActivityLogged.v1"]
    (example,) = message["examples"]
    assert "as an older release wrote it" in example["summary"] and "upcasts back" in example["summary"]
    real = asyncapi.service_document("deals")["components"]["messages"]["ActivityLogged.v2"]["examples"][0]
    assert real["summary"] == "a real ActivityLogged v2"


def test_every_message_has_an_example_but_those_listed_with_why() -> None:
    missing = set()
    for path in sorted(contract.DOCS.glob("*/asyncapi.json")):
        for name, message in json.loads(path.read_text())["components"]["messages"].items():
            if not message.get("examples"):
                missing.add(f"{path.parent.name}/{name}")
    assert missing == set(NO_EXAMPLE)

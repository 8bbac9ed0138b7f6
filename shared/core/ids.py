"""Ids the services derive, and ids a client may choose.

What a reaction creates (a converted lead's deal, a won deal's order, a shipment's follow-up, a reaction's events)
and what a source's verified delivery captures get ids derived from what caused them: name-based UUIDs (version 5,
``uuid.uuid5`` in a namespace of the service), so doing it twice finds what the first time made.

A client may name the id of something it creates where the API lets it (a retry then finds it), but only a random
one (version 4 or 7): no such id can ever equal a derived one, whose version is 5. A name-based id could be the one
a reaction is about to derive, and taking it first would take over what the reaction makes there (issue 20: a
salesperson opening, under their name, the deal a lead's conversion was about to open). ``ClientId`` is the type of
such a field or parameter: anything else answers 422 naming it.

What an import brings (issue 26: a deal, a person, an activity of another CRM's export) gets the id ``import_id``
derives from the source, the kind and the source's row id, in ``NS_IMPORTS``: one namespace for every service, so a
deal's organisation derives to the directory's id for it, and a second run of the same file finds what the first
made. Being version 5, such an id is one no client can claim first.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator

# Imported rows' ids: uuid5(NS_IMPORTS, "<source>/<kind>/<key>"), the same in every service (decision 0021).
NS_IMPORTS = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e26")
CLIENT_ID_VERSIONS = frozenset({4, 7})
CLIENT_ID_RULE = (
    "a random UUID (version 4 or 7): name-based ids (versions 3 and 5) are the ones the services derive, "
    "and no client may choose one of those"
)


def is_client_id(value: uuid.UUID) -> bool:
    """Whether a client may name this id: a random one, never one a service could derive."""
    return value.variant == uuid.RFC_4122 and value.version in CLIENT_ID_VERSIONS


def client_id(value: uuid.UUID) -> uuid.UUID:
    if not is_client_id(value):
        raise ValueError(f"must be {CLIENT_ID_RULE}")
    return value


ClientId = Annotated[uuid.UUID, AfterValidator(client_id)]


def import_id(source: str, kind: str, key: str) -> uuid.UUID:
    """The id of what an import of ``source``'s row ``key`` of ``kind`` makes, in every service: name-based
    (version 5), so no client may name it (``ClientId``) and a second import of the row finds the first's."""
    return uuid.uuid5(NS_IMPORTS, f"{source}/{kind}/{key}")

"""The keys of the customers' blind index (decision 0017, "Search over sealed fields"): HMAC-SHA-256, under a key
derived from the master key (as the leads' duplicate index's), of normalised values, so a person's name, phones
and emails are found without being kept readable anywhere.

Each key is ``<kind>:<hex digest>`` of one normalised value:

- ``email``: lower-cased (``shared.core.normalize.email``);
- ``phone``: E.164 as leads normalise phones (``0912 345 678`` = ``+84912345678``);
- ``tax``: the tax code's characters (``0100109106``, ``0100109106-001``), and ``taxparent`` its first ten
  (a branch is found by its parent's code);
- ``zalo``: the Zalo id as given;
- ``name``: each whole token of a name, folded — lower case, without diacritics, ``đ`` as ``d`` — so ``Nguyễn``
  finds ``nguyen`` and ``NGUYEN``. Whole tokens only: a keyed hash of a prefix finds nothing the whole does not.

A query is turned into keys the same way (``query_keys``); an entity matches when it holds every name key of the
query, or any of its other keys. Pure (no keys kept here: the caller passes the secret).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable

from shared.core import normalize

DUPLICATE_KINDS = ("email", "phone", "tax")  # what two customers may not share without being one
_TAX = re.compile(r"[0-9]{10}(-[0-9]{3})?")
_TOKEN = re.compile(r"[0-9a-z]+")
MAX_NAME_TOKENS = 12


def key(secret: bytes, kind: str, value: str) -> str:
    return f"{kind}:" + hmac.new(secret, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()


def fold(text: str) -> str:
    """Lower case, without diacritics: ``Trần Thị Đào`` → ``tran thi dao``."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def name_tokens(name: str | None) -> list[str]:
    return list(dict.fromkeys(_TOKEN.findall(fold(name or ""))))[:MAX_NAME_TOKENS]


def name_keys(secret: bytes, name: str | None) -> set[str]:
    return {key(secret, "name", t) for t in name_tokens(name)}


def organisation_keys(secret: bytes, name: str | None, tax_code: str | None) -> set[str]:
    keys = name_keys(secret, name)
    if tax_code:
        keys |= {key(secret, "tax", tax_code), key(secret, "taxparent", tax_code[:10])}
    return keys


def person_keys(
    secret: bytes,
    name: str | None,
    phones: Iterable[str] | None,
    emails: Iterable[str] | None,
    zalo_id: str | None,
) -> set[str]:
    keys = name_keys(secret, name)
    keys |= {key(secret, "phone", p) for v in phones or () if (p := normalize.phone(v))}
    keys |= {key(secret, "email", e) for v in emails or () if (e := normalize.email(v))}
    if zalo_id:
        keys.add(key(secret, "zalo", zalo_id))
    return keys


def query_keys(secret: bytes, q: str) -> tuple[set[str], set[str]]:
    """The keys a search for ``q`` looks for: (name keys, all of which must match; other keys, any of which
    does). ``q`` is read as an email, a phone, a tax code and a name at once."""
    text = q.strip()
    others: set[str] = set()
    if (e := normalize.email(text)) is not None:
        others.add(key(secret, "email", e))
        return set(), others
    cleaned = re.sub(r"[\s.]", "", text)
    if _TAX.fullmatch(cleaned):
        others |= {key(secret, "tax", cleaned), key(secret, "taxparent", cleaned)}
    if (p := normalize.phone(text)) is not None and re.fullmatch(r"[0-9+()\s.-]+", text):
        others.add(key(secret, "phone", p))
    if others:
        return set(), others
    others.add(key(secret, "zalo", text))
    return name_keys(secret, text), others

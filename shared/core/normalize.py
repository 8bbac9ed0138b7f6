"""Normalising contact details for duplicate detection and search (pure, the kernel's: the leads service finds
duplicate leads with it, the directory its blind index of people). Vietnamese text is kept intact: NFC, never
stripped of its diacritics.

Phones become E.164: ``0912 345 678``, ``84912345678``, ``+84 912-345-678`` and ``+84 (0) 912 345 678`` (the
trunk prefix written after the country code) are all ``+84912345678``. Digits of any script (Arabic-Indic
``٠٩١٢…``, full-width ``０９１２…``) are read as the ASCII digits they are, so the E.164 form is ASCII and the same
number finds its duplicate however it was typed. In 2018 Vietnam moved 11-digit mobile numbers to 10 digits; an old
number is mapped to its new one (``01662 345 678`` → ``+84362345678``), so a lead who still writes the old number is
recognised.
"""

from __future__ import annotations

import re
import unicodedata

from shared.core.limits import ascii_digits

# the 2018 renumbering of mobile prefixes (old 4-digit "01xx" → new 3-digit "0xx")
OLD_MOBILE_PREFIXES = {
    "0120": "070",
    "0121": "079",
    "0122": "077",
    "0126": "076",
    "0128": "078",  # MobiFone
    "0123": "083",
    "0124": "084",
    "0125": "085",
    "0127": "081",
    "0129": "082",  # VinaPhone
    "0162": "032",
    "0163": "033",
    "0164": "034",
    "0165": "035",
    "0166": "036",
    "0167": "037",
    "0168": "038",
    "0169": "039",  # Viettel
    "0186": "056",
    "0188": "058",  # Vietnamobile
    "0199": "059",  # Gmobile
}


def text(value: str | None) -> str | None:
    """Trimmed, single-spaced, Unicode NFC (diacritics kept); None when empty."""
    if value is None:
        return None
    cleaned = " ".join(unicodedata.normalize("NFC", value).split())
    return cleaned or None


def email(value: str | None) -> str | None:
    v = text(value)
    if v is None or "@" not in v:
        return None
    local, _, domain = v.rpartition("@")
    return f"{local}@{domain.lower()}".lower() if local else None


TRUNK_PREFIX = re.compile(r"\(\s*0\s*\)")  # "+84 (0) 912…", "+44 (0)20…": the national 0, not dialled from abroad


def phone(value: str | None) -> str | None:
    """E.164 for Vietnamese numbers (and any number given with +country code); None if it is not a phone."""
    if value is None:
        return None
    raw = ascii_digits(unicodedata.normalize("NFKC", value)).strip()
    plus = raw.startswith("+") or raw.startswith("00")
    if plus:
        raw = TRUNK_PREFIX.sub("", raw)
    digits = re.sub(r"[^0-9]", "", raw)
    if raw.startswith("00"):
        digits = digits[2:]
    if plus and not digits.startswith("84"):
        return f"+{digits}" if 8 <= len(digits) <= 15 else None
    if digits.startswith("84"):
        digits = "0" + digits[2:].removeprefix("0")  # "+84 0912…": the trunk 0 again, without parentheses
    if not digits.startswith("0"):
        digits = "0" + digits
    if len(digits) == 11 and digits[:4] in OLD_MOBILE_PREFIXES:
        digits = OLD_MOBILE_PREFIXES[digits[:4]] + digits[4:]
    if len(digits) not in (10, 11):  # mobiles have 10 digits; some landlines 11 (0 + 2-digit area + 8)
        return None
    return "+84" + digits[1:]

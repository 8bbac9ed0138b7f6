"""The Vietnamese tax code (mã số thuế, MST) of an organisation, checked as its issuer checks it. Pure.

A tax code is 10 digits ``N1…N10`` — an enterprise's, or a parent unit's — or those 10 digits, a hyphen and a
3-digit branch number (``0100109106-001``) for a dependent unit (a branch, a representative office). The tenth
digit is a check digit over the first nine, by the rule the General Department of Taxation (Tổng cục Thuế)
publishes with the structure of the tax code (Decision 75/1998/QĐ-TCT on the tax code's structure; Circular
105/2020/TT-BTC, Article 5, keeps the 10- and 13-character forms):

    S = 31·N1 + 29·N2 + 23·N3 + 19·N4 + 17·N5 + 13·N6 + 7·N7 + 5·N8 + 3·N9
    N10 = 10 − (S mod 11)

A remainder of 0 would give 10, which is no digit: no tax code is issued with those nine digits, so none is
valid. A branch number is 001 to 999 (000 is the parent itself, written without a suffix).

Examples (published codes): Viettel 0100109106, FPT 0101248141, Vinamilk 0300588569.
"""

from __future__ import annotations

import re

WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
TAX_CODE_PATTERN = r"^[0-9]{10}(-[0-9]{3})?$"
_SHAPE = re.compile(TAX_CODE_PATTERN)


def check_digit(first_nine: str) -> int | None:
    """The tenth digit of a tax code beginning with these nine digits; None: no code is issued with them."""
    total = sum(int(d) * w for d, w in zip(first_nine, WEIGHTS, strict=True))
    digit = 10 - total % 11
    return None if digit == 10 else digit


def tax_code_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a tax code (None: nothing). It is taken as written: digits, and the hyphen
    before a branch; spaces and dots are the caller's to remove (``normalise``)."""
    if not _SHAPE.fullmatch(value):
        return "a tax code is 10 digits, or 10 digits, '-' and a 3-digit branch (0100109106 or 0100109106-001)"
    expected = check_digit(value[:9])
    if expected is None:
        return f"no tax code begins {value[:9]}: its check digit would be 10"
    if int(value[9]) != expected:
        return f"the check digit (the 10th) of {value[:10]} should be {expected}"
    if value[11:] == "000":
        return "branch 000 is the parent unit: write the 10 digits alone"
    return None


def normalise(value: str) -> str:
    """The tax code as typed, cleaned: surrounding and inner spaces and dots removed (``0100 109 106``)."""
    return re.sub(r"[\s.]", "", value)


def valid_tax_code(value: str) -> str:
    """A validator: the cleaned tax code, or ValueError saying what is wrong (422 naming the field)."""
    cleaned = normalise(value)
    if problem := tax_code_problem(cleaned):
        raise ValueError(problem)
    return cleaned


def parent_of(tax_code: str) -> str:
    """The parent unit's 10 digits (a branch's first ten)."""
    return tax_code[:10]

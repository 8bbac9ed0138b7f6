"""How large anything a request puts into an event may be: every header and body field, bounded at the HTTP edge.

An event is published to Kafka as one record (``shared.store.wire``, 1 MiB at most); the body limit (``PIPELINES_MAX_BODY_
BYTES``) bounds a request, not what one field of it becomes once sealed, escaped and wrapped. So each field a
command carries has its own limit here, answered 422 naming the field and the limit (``loc``, ``msg``, ``ctx``),
and the headers copied into an event's metadata are checked before anything runs (400). The event store's size
check at append stays the backstop for what these limits cannot see (the sum of many fields at their limit).

- Strings: ``Identifier``, ``ExternalId``, ``Code``, ``Label``, ``Url``, ``Phone``, ``Email``; any other string of
  a command is at most ``MAX_TEXT_CHARS`` (its model's ``str_max_length``).
- Numbers: ``Amount`` (money), ``Quantity``, ``QuantityOrZero``, ``Count``; a decimal sent as a string is at most
  ``MAX_DECIMAL_CHARS`` long (``DecimalText``).
- Free-form JSON (a source's raw payload): ``JsonObject``, bounded in bytes, depth and keys.
- Dates and times: ``Day`` (a date written YYYY-MM-DD, ``MIN_DAY`` to ``MAX_DAY``), ``Moment`` and ``AwareMoment``
  (a time, with its offset, in the same years): what PostgreSQL and Python can both hold, whatever the offset.
- Text: a lone surrogate (``"\\ud800"`` in JSON) is not a character; PostgreSQL cannot store it, so any string
  holding one is refused (422) where it enters (``check_text``), and never echoed back raw.
- The event contract's value types (``Money``, ``ProductLine``, ``LeadContact``…) are not bounded for requests:
  events already stored must stay readable. A command field takes such a value through its request form, a
  subclass with the limits: ``Annotated[Money, ValidatedAs(MoneyInput)]`` validates (and documents, in OpenAPI) a
  ``MoneyInput`` and holds a plain ``Money``, so events and states never see the form.
- Headers: ``X-Correlation-ID`` and ``X-Causation-ID`` (``check_trace_header``), ``Idempotency-Key``.

All limits are the constants below; the API docs show them (``maxLength``, ``maxItems``, ``maximum``) and a test
walks each service's OpenAPI document so that a field without one fails it.
"""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from shared.core.money import Money

# ---------------------------------------------------------------------------------------------- strings
MAX_ID_CHARS = 100  # ids we give or a caller chooses: owners, teams, contacts, pipelines, stages
MAX_EXTERNAL_ID_CHARS = 200  # ids a source gives: a Google lead id, an ad, a form, a campaign, a tracking number
MAX_CODE_CHARS = 60  # short codes: a source, a channel, a rule, a consent text's version, a country
MAX_UNIT_CHARS = 20  # a unit of measure
MAX_NAME_CHARS = 200  # names and titles: people, companies, products, address lines, UTM values
MAX_TEXT_CHARS = 2000  # free text: notes, reasons, comments (every command's default for its other strings)
MAX_ANSWER_CHARS = 4000  # one answer to a lead form's question (a message may be long)
MAX_URL_CHARS = 2048
MAX_EMAIL_CHARS = 254  # RFC 5321
MAX_PHONE_CHARS = 30
MAX_DECIMAL_CHARS = 40  # a decimal number sent as a JSON string ("12500000.00")

# ---------------------------------------------------------------------------------------------- collections
MAX_ITEMS = 50  # a short list: a deal's needs, a lead's segments
MAX_ANSWERS = 100  # a lead form's answers
MAX_ANSWERS_BYTES = 64 * 1024  # a lead's answers, together, as compact UTF-8 JSON
MAX_RAW_PAYLOAD_BYTES = 64 * 1024  # a source's payload kept with its lead, as compact UTF-8 JSON
MAX_JSON_DEPTH = 16  # objects and arrays nested in a free-form JSON value
MAX_JSON_KEYS = 500  # keys of a free-form JSON object, at its top level

# ---------------------------------------------------------------------------------------------- numbers
MAX_AMOUNT = 10**15  # an amount of money, in units of its currency (10^15 VND is about 40 billion USD)
MAX_QUANTITY = 10**9  # a quantity of a product or material, in its unit
MAX_COUNT = 10**9  # a count: packages, impressions, clicks, a step, a stage's order
MAX_DECIMAL_DIGITS = 22  # as Money's amount
MAX_QUANTITY_DIGITS = 18  # as the production events' quantities
MAX_OFFSET = 2**31 - 1  # a page's offset (inside a cursor): far beyond any list, within a PostgreSQL integer

# ---------------------------------------------------------------------------------------------- dates and times
MIN_DAY = date(1900, 1, 1)  # a business date or a query's bound; any offset keeps it inside Python's datetime
MAX_DAY = date(2199, 12, 31)

# ---------------------------------------------------------------------------------------------- headers
MAX_TRACE_ID_CHARS = 128  # X-Correlation-ID, X-Causation-ID
TRACE_ID_CHARACTERS = "A-Z a-z 0-9 . _ : -"
TRACE_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_TRACE_ID_CHARS}}}")
MAX_IDEMPOTENCY_KEY_CHARS = 200
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"  # printable ASCII
MAX_ETAG_CHARS = 40  # If-Match: "3" or W/"3"
MAX_VERSION = 2**31 - 1  # a stream's version (If-Match, ?version=): a PostgreSQL integer
MAX_POSITION = 2**63 - 1  # a global position (?position=): a PostgreSQL bigint
MAX_TIME_HEADER_CHARS = 40  # X-Occurred-At: an ISO 8601 time with offset
ECHO_CHARS = 16  # at most this much of a rejected value is shown back

# ---------------------------------------------------------------------------------------------- string types
Identifier = Annotated[str, Field(max_length=MAX_ID_CHARS)]
ExternalId = Annotated[str, Field(max_length=MAX_EXTERNAL_ID_CHARS)]
Code = Annotated[str, Field(max_length=MAX_CODE_CHARS)]
Label = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
Url = Annotated[str, Field(max_length=MAX_URL_CHARS)]


def ascii_digits(value: str) -> str:
    """Every decimal digit of any script (Arabic-Indic ``٠١٢``, full-width ``０１２``…) as its ASCII digit: a phone
    written with them is the same phone, for storing and for finding duplicates."""
    if value.isascii():
        return value
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in value)


Phone = Annotated[str, Field(max_length=MAX_PHONE_CHARS), AfterValidator(ascii_digits)]
Email = Annotated[EmailStr, Field(max_length=MAX_EMAIL_CHARS)]


# ---------------------------------------------------------------------------------------------- numbers
class DecimalText:
    """A decimal sent as a JSON string is at most ``MAX_DECIMAL_CHARS`` long, as its schema says (``maxLength``).
    ``max_digits`` already bounds the value; this bounds the text it is read from."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def short(value: Any) -> Any:
            if isinstance(value, str) and len(value) > MAX_DECIMAL_CHARS:
                raise PydanticCustomError(
                    "string_too_long",
                    "String should have at most {max_length} characters",
                    {"max_length": MAX_DECIMAL_CHARS},
                )
            return value

        return core_schema.no_info_before_validator_function(short, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        for branch in json_schema.get("anyOf", [json_schema]):
            if branch.get("type") == "string":
                branch["maxLength"] = MAX_DECIMAL_CHARS
        return json_schema


Amount = Annotated[
    Decimal,
    Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, max_digits=MAX_DECIMAL_DIGITS, allow_inf_nan=False),
    DecimalText(),
]
Quantity = Annotated[
    Decimal, Field(gt=0, le=MAX_QUANTITY, max_digits=MAX_QUANTITY_DIGITS, allow_inf_nan=False), DecimalText()
]
QuantityOrZero = Annotated[
    Decimal, Field(ge=0, le=MAX_QUANTITY, max_digits=MAX_QUANTITY_DIGITS, allow_inf_nan=False), DecimalText()
]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


# ---------------------------------------------------------------------------------------------- dates and times
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _written_as_a_day(value: Any) -> Any:
    """A date is written YYYY-MM-DD: not a number of seconds since 1970 (``0`` is not a day), nor a time."""
    if (isinstance(value, str) and not _ISO_DAY.fullmatch(value)) or isinstance(value, int | float | datetime):
        raise PydanticCustomError("date_format", "Date should be written YYYY-MM-DD")
    return value


def _within_days(value: date) -> date:
    if not MIN_DAY <= value <= MAX_DAY:
        raise PydanticCustomError(
            "date_out_of_range",
            "Date should be from {min_day} to {max_day}",
            {"min_day": MIN_DAY.isoformat(), "max_day": MAX_DAY.isoformat()},
        )
    return value


def _within_moments(value: datetime) -> datetime:
    if value.tzinfo is not None:  # naive times are refused by the type (AwareDatetime) or the route
        try:
            day = value.astimezone(UTC).date()
        except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            day = date.min
        if not MIN_DAY <= day <= MAX_DAY:
            raise PydanticCustomError(
                "datetime_out_of_range",
                "Time should be from {min_day} to {max_day}",
                {"min_day": MIN_DAY.isoformat(), "max_day": MAX_DAY.isoformat()},
            )
    return value


class InRange:
    """Documents a date's or a time's range in its JSON Schema: ``formatMinimum`` and ``formatMaximum`` (the
    keywords of JSON Schema's format vocabulary proposals, as Ajv reads them), the bounds ``Day`` and ``Moment``
    check, so a client (and the route-walking test) sees the range, not only ``format``."""

    def __init__(self, low: str, high: str) -> None:
        self.low, self.high = low, high

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        for branch in json_schema.get("anyOf", [json_schema]):
            if branch.get("format") in ("date", "date-time"):
                branch["formatMinimum"], branch["formatMaximum"] = self.low, self.high
        return json_schema


DAY_RANGE = f"YYYY-MM-DD, from {MIN_DAY} to {MAX_DAY}"
DAYS = InRange(MIN_DAY.isoformat(), MAX_DAY.isoformat())
MOMENTS = InRange(f"{MIN_DAY}T00:00:00Z", f"{MAX_DAY}T23:59:59.999999Z")  # in UTC, whatever the offset
Day = Annotated[date, BeforeValidator(_written_as_a_day), AfterValidator(_within_days), DAYS]
Moment = Annotated[datetime, AfterValidator(_within_moments), MOMENTS]
AwareMoment = Annotated[AwareDatetime, AfterValidator(_within_moments), MOMENTS]  # a command's time: with its offset


def moment_problem(value: datetime) -> str | None:
    """What is wrong with a time a header gives (None: nothing), as ``Moment`` checks it."""
    try:
        _within_moments(value)
    except PydanticCustomError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------- text
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
LONE_SURROGATE = "a lone surrogate (\\ud800 to \\udfff), which is not a character"


def has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (a key too) holds a lone surrogate: JSON's ``"\\ud800"`` parses to
    one, and PostgreSQL, UTF-8 and Kafka cannot hold it. Without recursion."""
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, str):
            if not node.isascii() and _SURROGATE.search(node):
                return True
        elif isinstance(node, Mapping):
            todo.extend(node.keys())
            todo.extend(node.values())
        elif isinstance(node, list | tuple):
            todo.extend(node)
    return False


def may_hold_surrogates(body: bytes) -> bool:
    """Whether a JSON body escapes a surrogate (``\\ud800``…, pairs too): only then is it worth walking."""
    return _SURROGATE_ESCAPE.search(body) is not None


def readable(value: Any) -> Any:
    """``value`` safe to answer as JSON: a lone surrogate is written as its escape (``\\ud800``), as text."""
    if isinstance(value, str):
        return (
            value
            if value.isascii() or not _SURROGATE.search(value)
            else value.encode("utf-8", "backslashreplace").decode()
        )
    if isinstance(value, Mapping):
        return {readable(k): readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [readable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- free-form JSON
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
_SCALARS = frozenset({str, int, float, bool, type(None)})  # JSON's own scalars: nothing nests in them


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON; ValueError if it holds NaN or an infinity (not JSON),
    UnicodeEncodeError (a ValueError) if it holds a lone surrogate."""
    return len(_COMPACT_JSON.encode(value).encode())


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (a scalar: 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        children: Iterable[Any] = ()
        if isinstance(node, dict):  # what parsed JSON holds, checked before the slower abstract Mapping
            children = node.values()
        elif isinstance(node, list | tuple):
            children = node
        elif isinstance(node, Mapping):
            children = node.values()
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:  # enough to refuse it
            break
        todo.extend((child, depth + 1) for child in children if child.__class__ not in _SCALARS)
    return deepest


def json_bytes_at_most(limit: int) -> Callable[[Any], Any]:
    """A validator: the value is at most ``limit`` bytes of compact UTF-8 JSON and ``MAX_JSON_DEPTH`` deep."""

    def check(value: Any) -> Any:
        depth = json_depth(value)
        if depth > MAX_JSON_DEPTH:
            raise PydanticCustomError(
                "json_too_deep",
                "JSON should nest at most {max_depth} objects or arrays deep",
                {"max_depth": MAX_JSON_DEPTH},
            )
        try:
            size = json_size(value)
        except UnicodeEncodeError:
            raise PydanticCustomError("string_unicode", f"Text should not hold {LONE_SURROGATE}") from None
        except ValueError:
            raise PydanticCustomError("json_invalid", "JSON cannot hold NaN or Infinity") from None
        if size > limit:
            raise PydanticCustomError(
                "json_too_large",
                "JSON should be at most {max_bytes} bytes (compact, UTF-8), not {bytes}",
                {"max_bytes": limit, "bytes": size},
            )
        return value

    return check


JsonObject = Annotated[
    dict[str, Any],
    Field(
        max_length=MAX_JSON_KEYS,
        description=f"any JSON object of at most {MAX_RAW_PAYLOAD_BYTES} bytes (compact UTF-8 JSON), "
        f"{MAX_JSON_KEYS} keys and {MAX_JSON_DEPTH} levels of nesting",
    ),
    AfterValidator(json_bytes_at_most(MAX_RAW_PAYLOAD_BYTES)),
]


# ---------------------------------------------------------------------------------------------- request forms
class ValidatedAs:
    """``Annotated[Value, ValidatedAs(ValueInput)]``: a field holding an event contract's value type, validated and
    documented as its request form (a subclass adding limits), holding the plain value type afterwards.

    A ``Value`` given in Python (a webhook's mapping, a reaction, a test) is checked against the form too."""

    def __init__(self, form: type[BaseModel]) -> None:
        self.form = form

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        form = self.form
        if not (isinstance(source, type) and issubclass(source, BaseModel) and issubclass(form, source)):
            raise TypeError(f"{form.__name__} is not a request form of {source!r}")

        def as_form(value: Any) -> Any:
            if isinstance(value, BaseModel) and not isinstance(value, form):
                return value.model_dump(exclude_unset=True)
            return value

        def as_value(value: BaseModel) -> Any:
            data = {name: getattr(value, name) for name in value.model_fields_set}
            if all(v is None or type(v) is str or type(v) is Decimal for v in data.values()):
                # text (or an amount) the form validated, under limits at least the value type's (and its
                # validators, which the form inherits): the value type would take it as it is, so it is not
                # validated twice (an e-mail address's check is a tenth of an import row's time; an amount's
                # minor units are checked by the form already)
                return source.model_construct(_fields_set=set(data), **data)
            return source.model_validate(value.model_dump(exclude_unset=True))

        return core_schema.no_info_before_validator_function(
            as_form,
            core_schema.no_info_after_validator_function(as_value, handler.generate_schema(form)),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value, info: value.model_dump(mode=info.mode), info_arg=True
            ),
        )


class MoneyInput(Money):
    """An amount of money: a decimal (as a string, exact) of at most 10^15 units of its currency either way."""

    amount: Amount


MoneyField = Annotated[Money, ValidatedAs(MoneyInput)]


# ---------------------------------------------------------------------------------------------- headers
def check_trace_header(name: str, value: bytes) -> str | None:
    """What is wrong with a correlation or causation id header (None: nothing; an empty value counts as absent).
    The message names the header and its limit and shows at most ``ECHO_CHARS`` of the value."""
    text = value.decode("latin-1")
    if not text or TRACE_ID.fullmatch(text):
        return None
    return (
        f"{name} must be 1 to {MAX_TRACE_ID_CHARS} characters of {TRACE_ID_CHARACTERS}; "
        f"got {len(text):,} characters starting {text[:ECHO_CHARS]!r}"
    )


def shown(value: str, limit: int = ECHO_CHARS) -> str:
    """``value`` shown back in an error: its repr, cut to about ``limit`` characters."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value):,} characters)"


def bounded_errors(errors: Sequence[Mapping[str, Any]], prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Validation errors to answer, as JSON: each field's ``loc``, ``msg``, ``type`` and ``ctx`` (the limit), and
    the input only when it is small (a long string: its start), never the megabyte that broke the limit."""
    out = []
    for error in errors:
        item = {k: v for k, v in error.items() if k not in ("input", "url", "ctx")}
        item["loc"] = [*prefix, *error.get("loc", ())]
        if error.get("type") == "string_unicode":  # pydantic's words for it: "unable to parse raw data"
            item["msg"] = f"Text should not hold {LONE_SURROGATE}"
        if "ctx" in error:
            item["ctx"] = {k: v if isinstance(v, str | int | bool) else str(v) for k, v in error["ctx"].items()}
        value = error.get("input")
        if isinstance(value, str):
            item["input"] = value if len(value) <= 2 * ECHO_CHARS else value[: 2 * ECHO_CHARS] + "…"
        elif "input" in error:
            with contextlib.suppress(ValueError, RecursionError):  # not JSON (NaN, a huge number, too deep)
                text = json.dumps(value, default=str, allow_nan=False)
                if len(text) <= 8 * ECHO_CHARS:
                    item["input"] = json.loads(text)
        out.append(readable(item))  # a lone surrogate in the input or a key cannot be answered as UTF-8
    return out

"""Validation errors quote their input; the logs, standard library's and structlog's, do not."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import BaseModel, EmailStr, ValidationError

from shared.ops.logs import redact_inputs, stdlib_formatter

EMAIL, PHONE = "an.nguyen@example", "0912 345 678"


class Contact(BaseModel):
    email: EmailStr
    age: int


def test_a_validation_error_is_logged_without_the_input_it_quotes() -> None:
    data = {"email": EMAIL, "age": PHONE}
    with pytest.raises(ValidationError) as caught:
        Contact.model_validate(data)
    text = str(caught.value)
    assert PHONE in text and EMAIL in text  # what pydantic says
    assert PHONE not in redact_inputs(text)
    assert EMAIL not in redact_inputs(text)
    assert redact_inputs(text).count("input_value=***") == 2
    assert redact_inputs("cut short: [type=x, input_value='0912 345") == "cut short: [type=x, input_value=***"
    try:
        raise caught.value
    except ValidationError:
        record = logging.makeLogRecord({"msg": "Exception in ASGI application", "exc_info": sys.exc_info()})
    for as_json in (True, False):  # uvicorn's "Exception in ASGI application", as a JSON line and for a console
        line = stdlib_formatter("leads", "api", json=as_json).format(record)
        assert "Traceback" in line and "validation error" in line
        assert PHONE not in line and EMAIL not in line
    assert json.loads(stdlib_formatter("leads", "api").format(record))["exception"].startswith("Traceback")

"""The API's JSON parser: DRF's, made strict (NaN/Infinity and absurd nesting are parse errors, not 500s)
and capped at DATA_UPLOAD_MAX_MEMORY_SIZE whatever stream it is handed. DRF 3.18 hands JSON parsers
`request.body`, where Django enforces the same cap by raising RequestDataTooBig; core.errors turns
both into one 413."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request body is too large; send smaller batches."


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class CappedJSONParser(JSONParser):
    """Reads at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes; NaN/Infinity and absurd nesting are parse errors."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes; send smaller batches.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(raw.decode(encoding), parse_constant=_reject_constant)
        except UnicodeDecodeError as exc:
            raise ParseError(f"The body is not valid {encoding}: {exc.reason} at byte {exc.start}.") from None
        except ValueError as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        except RecursionError:
            raise ParseError("The body is not valid JSON: nested too deeply.") from None

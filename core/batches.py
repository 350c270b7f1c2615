"""The envelope of batch endpoints: `{"<key>": [ ... up to RECSYS_MAX_BATCH ... ]}`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError

from core.payloads import printable


def check_batch(data: Any, *, key: str) -> list[Any]:
    """Return the list under `key`, or raise a 400 that names the field and the reason."""
    if not isinstance(data, dict):
        raise ValidationError({key: [f'The body must be a JSON object: {{"{key}": [...]}}.']})
    unknown = sorted(set(data) - {key})
    if unknown:
        raise ValidationError({printable(name): ["Unknown field."] for name in unknown})
    batch = data.get(key)
    if not isinstance(batch, list):
        raise ValidationError({key: ["This field is required and must be a list."]})
    if not batch:
        raise ValidationError({key: ["Must not be empty."]})
    if len(batch) > settings.RECSYS_MAX_BATCH:
        raise ValidationError({key: [f"At most {settings.RECSYS_MAX_BATCH} per request (got {len(batch)})."]})
    return batch

"""Events as the ingestion service takes them: through the API's own validation (`check_event`), so the
tests' events have exactly the shape and defaults a stored request has."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.payloads import check_event


def validated_event(*, timestamp: datetime, **fields: Any) -> dict[str, Any]:
    clean, errors = check_event({**fields, "timestamp": timestamp.isoformat()})
    assert not errors, errors
    return clean

"""Log records never carry a shop's user id: the API paths that hold one are logged with it redacted."""

from __future__ import annotations

import logging
import re

# /api/v1/users/{id} (erasure) and /api/v1/recommendations/users/{id}: the id is the path segment after
# `users/`, up to the next slash, query, quote or blank (runserver logs `"GET /path HTTP/1.1" 200 12`).
USER_ID_IN_PATH = re.compile(r"(/api/v1/(?:recommendations/)?users/)[^/?#\s\"']+")
REDACTED = "<redacted>"


def redact_user_ids(text: str) -> str:
    return USER_ID_IN_PATH.sub(rf"\g<1>{REDACTED}", text)


class RedactUserIds(logging.Filter):
    """A handler filter: rewrites the record's message with user ids redacted (an erased user must not
    survive in access logs; Django logs request paths for runserver's access lines and for 4xx/5xx)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_user_ids(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True

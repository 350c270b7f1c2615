"""Writes of the storefront: erasure of a visitor's Django sessions."""

from __future__ import annotations

from collections.abc import Collection

from django.contrib.sessions.models import Session


def visitor_sessions_erase(*, user_id: str, session_ids: Collection[str]) -> dict[str, int]:
    """Deletes the Django sessions that hold this visitor id (part of erasing the user), so that their
    cookie maps to no visitor any more: the next request starts a new visitor with a new id. The
    storefront's session id is the session key, so the user's sessions are among `session_ids`; session
    data is signed and encoded, so each candidate is decoded to check that it is this visitor's."""
    keys = [
        session.session_key
        for session in Session.objects.filter(session_key__in=set(session_ids))
        if session.get_decoded().get("visitor_id") == user_id
    ]
    return {"storefront_sessions": Session.objects.filter(session_key__in=keys).delete()[0]}

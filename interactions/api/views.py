from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.authentication import HasApiKey
from core.batches import check_batch
from core.payloads import ErrorSerializer, EventBatchIn, check_event, printable
from interactions import selectors, services
from interactions.api.serializers import (
    EventBatchOutSerializer,
    UserActivityOutSerializer,
    UserErasedSerializer,
    UserQuerySerializer,
)


class EventBatchIngestView(APIView):
    permission_classes = [HasApiKey]

    @extend_schema(
        request=EventBatchIn,
        responses={200: EventBatchOutSerializer, 400: EventBatchOutSerializer, 401: ErrorSerializer},
        summary="Ingest a batch of events",
        description="Each event is validated on its own; valid events are stored even when others are "
        "rejected. A replayed event_id counts as a duplicate. 200 when anything was accepted or "
        "duplicated, 400 when every event was rejected. A 200 means the accepted events are durable.",
    )
    def post(self, request):
        raw_events = check_batch(request.data, key="events")
        valid: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for index, raw in enumerate(raw_events):
            clean, errors = check_event(raw)
            if clean is None:
                entry = {"index": index, "errors": errors}
                if isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
                    entry["event_id"] = printable(raw["event_id"][:128])
                rejected.append(entry)
            else:
                valid.append(clean)
        result = services.events_ingest(events=valid) if valid else services.IngestResult()
        body = {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": rejected}
        if not valid:
            # Every event was rejected: nothing was written. Same error shape as every other 400.
            body = {"error": "invalid", "detail": "Every event was rejected; see rejected.", **body}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body)


class UserEraseView(APIView):
    """`/api/v1/users/{id}`: GET shows a user to support staff; DELETE erases them (one path, so one view)."""

    permission_classes = [HasApiKey]

    @extend_schema(
        parameters=[UserQuerySerializer],
        responses={200: UserActivityOutSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
        summary="A user's profile and recent events",
        description="For support staff: the profile (whether a vector is stored, counters), the number of "
        "events per type, and the newest events. 404 when no profile and no event knows the id.",
    )
    def get(self, request, user_id: str):
        query = UserQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        activity = selectors.user_activity_get(user_id=user_id, limit=query.validated_data["limit"])
        return Response(UserActivityOutSerializer(activity).data)

    @extend_schema(responses={200: UserErasedSerializer, 401: ErrorSerializer}, summary="Erase a user")
    def delete(self, request, user_id: str):
        deleted = services.user_erase(user_id=user_id)
        return Response({"user_id": user_id, "deleted": deleted})

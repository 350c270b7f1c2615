"""Output shapes of the event and user APIs, and the user query. An event as the API takes it is defined
once, in core.payloads (`EventIn`, `check_event`), shared with the import commands."""

from __future__ import annotations

from rest_framework import serializers


class EventRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    event_id = serializers.CharField(required=False)
    # named like a Serializer attribute: DRF's metaclass moves declared fields out of the class
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class EventBatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = EventRejectedSerializer(many=True)


class UserErasedSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    deleted = serializers.DictField(child=serializers.IntegerField())


USER_EVENTS_DEFAULT = 50
USER_EVENTS_MAX = 500  # larger limits are capped, not refused


class UserQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False,
        default=USER_EVENTS_DEFAULT,
        min_value=1,
        help_text=f"How many recent events; default {USER_EVENTS_DEFAULT}, values above {USER_EVENTS_MAX} "
        "are capped.",
    )

    def validate_limit(self, value: int) -> int:
        return min(value, USER_EVENTS_MAX)


class UserProfileOutSerializer(serializers.Serializer):
    has_vector = serializers.BooleanField(
        help_text="Whether personalised recommendations use a stored vector."
    )
    embedding_model = serializers.CharField()
    event_count = serializers.IntegerField(help_text="Events folded into the vector.")
    purchase_count = serializers.IntegerField()
    last_event_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class UserEventOutSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    session_id = serializers.CharField()
    item_id = serializers.CharField(source="item_external_id")
    event_type = serializers.CharField()
    timestamp = serializers.DateTimeField()
    device_type = serializers.CharField()
    recommendation_id = serializers.UUIDField(allow_null=True)
    surface = serializers.CharField()
    position = serializers.IntegerField(allow_null=True)
    value = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    quantity = serializers.IntegerField(allow_null=True)


class UserActivityOutSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    profile = UserProfileOutSerializer(allow_null=True, help_text="null: no vector computed yet.")
    event_counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="All their events, per type."
    )
    events = UserEventOutSerializer(many=True, help_text="The newest first.")

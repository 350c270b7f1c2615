"""The interaction stream (events) and per-user state (profile, vector)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import VectorField


class EventType(models.TextChoices):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_FAVORITES = "add_to_favorites"
    ADD_TO_CART = "add_to_cart"
    CONTACT_SELLER = "contact_seller"
    PURCHASE = "purchase"
    REVIEW = "review"


class Event(models.Model):
    """One interaction, idempotent on the client's `event_id`. The item is linked when known; otherwise
    `item_external_id` holds the raw id and the link is made when the item arrives."""

    event_id = models.CharField(max_length=128, unique=True)
    user_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001 - NULL: anonymous session
    session_id = models.CharField(max_length=128, blank=True, default="")
    # No index of its own: `event_item_time` (item, timestamp) leads with it, and serves the FK's SET NULL
    # on item deletion as well as every lookup by item.
    item = models.ForeignKey(
        "catalog.Item",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
    )
    item_external_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    device_type = models.CharField(max_length=50, blank=True, default="")
    recommendation_id = models.UUIDField(null=True, blank=True)
    surface = models.CharField(max_length=100, blank=True, default="")
    position = models.PositiveIntegerField(null=True, blank=True)
    value = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    quantity = models.IntegerField(null=True, blank=True)
    # Whether this event is already folded into its user's vector sums (interactions/user_vectors.py).
    # False until the item has a vector; the claim `UPDATE ... WHERE NOT vector_applied` makes applying
    # it exactly-once. db_default: bulk inserts (events_ingest, imports) need not know about it.
    vector_applied = models.BooleanField(default=False, db_default=False)
    # Whether this event is folded into item co-visitation (recommendations/covisitation.py), claimed the
    # same way. Events without an item wait for it; events without a user or session count nothing.
    covisitation_folded = models.BooleanField(default=False, db_default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            # a user's recent events (user vectors, seen/bought exclusion, explanations)
            models.Index(fields=["user_id", "-timestamp"], name="event_user_recent"),
            models.Index(fields=["session_id", "-timestamp"], name="event_session_recent"),
            # events by item and by time (popularity, trending, co-occurrence, rollups)
            models.Index(fields=["item", "timestamp"], name="event_item_time"),
            models.Index(fields=["timestamp"], name="event_time"),
            models.Index(
                fields=["recommendation_id"],
                name="event_recommendation",
                condition=models.Q(recommendation_id__isnull=False),
            ),
            # events of known users not yet in their user's vector (the user-vector sweep's work list)
            models.Index(
                fields=["item"],
                name="event_vector_pending",
                condition=models.Q(vector_applied=False, user_id__isnull=False),
            ),
            # events not yet folded into co-visitation (the co-visitation sweep's work list)
            models.Index(
                fields=["id"],
                name="event_covisit_pending",
                condition=models.Q(covisitation_folded=False, item__isnull=False),
            ),
            # events waiting for their item to arrive
            models.Index(
                fields=["item_external_id"], name="event_unlinked_item", condition=models.Q(item__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.item_external_id} by {self.user_id or self.session_id}"


class UserProfile(models.Model):
    """A user's state: their vector (weighted, decayed mean of item vectors) and counters."""

    external_id = models.CharField(max_length=128, unique=True)
    embedding = VectorField(dimensions=settings.EMBEDDING_DIM, null=True, blank=True)
    # Decayed running sums behind `embedding` (interactions/user_vectors.py): vector_sum = sum of
    # weight * 2^(-(decay_ref_at - t) / half_life) * item vector, weight_sum the same without the vector.
    # Both are scaled to `decay_ref_at` (the newest applied event), so one event is O(1) to add.
    vector_sum = VectorField(dimensions=settings.EMBEDDING_DIM, null=True, blank=True)
    weight_sum = models.FloatField(default=0.0)
    decay_ref_at = models.DateTimeField(null=True, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True, default="")
    event_count = models.PositiveIntegerField(default=0)
    purchase_count = models.PositiveIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return self.external_id

"""The feedback loop's records: attributions of events to served lists, daily metric rollups, and saved
offline evaluation runs."""

from __future__ import annotations

from django.db import models


class AttributionKind(models.TextChoices):
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    CONVERSION = "conversion"


class Attribution(models.Model):
    """One event credited to one served list. A click or add-to-cart carrying a `recommendation_id` gets a
    row of its own kind; `list_known` is False when no served list has that id (the event is still stored
    in interactions, and flagged here). A purchase of the same item by the same user or session within the
    attribution window after an attributed click gets a `conversion` row pointing at that click."""

    event = models.ForeignKey("interactions.Event", on_delete=models.CASCADE, related_name="attributions")
    kind = models.CharField(max_length=20, choices=AttributionKind.choices)
    recommendation_id = models.UUIDField()
    list_known = models.BooleanField(default=True)
    surface = models.CharField(max_length=100, blank=True, default="")
    scenario = models.CharField(max_length=100, blank=True, default="")
    position = models.PositiveIntegerField(null=True, blank=True)
    # the served list's A/B experiment (its id) and arm, copied from the list (a conversion: from its click)
    experiment = models.PositiveIntegerField(null=True, blank=True)
    variant = models.CharField(max_length=50, blank=True, default="")
    item = models.ForeignKey(
        "catalog.Item", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # For a conversion: the attributed click it follows; revenue = value x quantity of the purchase.
    source_event = models.ForeignKey(
        "interactions.Event", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # value x quantity: at most 1e14 under the event validator's caps (core/payloads.py), and
    # up to 1e15 for events stored under the older caps (1e9 x 1e6); 16 integer digits hold both.
    revenue = models.DecimalField(max_digits=20, decimal_places=4, default=0)
    occurred_at = models.DateTimeField(help_text="The event's own timestamp.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            # Attribution may run twice over the same events (task retries, the sweep's overlap window).
            models.UniqueConstraint(fields=["event", "kind"], name="attribution_once_per_event_kind"),
        ]
        indexes = [
            models.Index(fields=["occurred_at"], name="attribution_time"),
            models.Index(fields=["recommendation_id"], name="attribution_list"),
            models.Index(
                fields=["experiment", "variant"],
                name="attribution_experiment",
                condition=models.Q(experiment__isnull=False),
            ),
            # the conversion lookup: attributed clicks of this item, shortly before a purchase
            models.Index(
                fields=["item", "occurred_at"],
                name="attribution_click_item",
                condition=models.Q(kind__in=["click", "add_to_cart"], list_known=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.recommendation_id} at {self.position}"


class AttributionCursor(models.Model):
    """The attribution sweep's high-water mark over `interactions.Event.id` (a single row, name
    `events`). The sweep re-reads a short overlap behind it, because ids are allocated before commit and a
    lower id can become visible after a higher one."""

    name = models.CharField(max_length=50, unique=True)
    last_event_pk = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_event_pk}"


class DailyMetric(models.Model):
    """The live metrics of one day for one surface and scenario, written by the rollup (re-running it for a
    day overwrites that day). Ratios are stored with their counts, so any window can be re-aggregated."""

    day = models.DateField()
    surface = models.CharField(max_length=100, blank=True, default="")
    scenario = models.CharField(max_length=100, blank=True, default="")
    lists_served = models.PositiveIntegerField(default=0)
    impressions = models.PositiveIntegerField(default=0, help_text="Items shown: the sum of list lengths.")
    clicks = models.PositiveIntegerField(default=0)
    add_to_carts = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    # a day's sum of conversions: 26 integer digits hold 1e11 of them at the largest accepted revenue
    revenue = models.DecimalField(max_digits=30, decimal_places=4, default=0)
    distinct_items = models.PositiveIntegerField(default=0)
    catalog_size = models.PositiveIntegerField(default=0)
    coverage = models.FloatField(default=0.0)
    diversity = models.FloatField(null=True, blank=True)
    gini = models.FloatField(default=0.0)
    novelty = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "surface", "scenario"]
        constraints = [
            models.UniqueConstraint(fields=["day", "surface", "scenario"], name="dailymetric_unique_slice"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.surface}/{self.scenario}"

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.clicks if self.clicks else 0.0


class DailyItemMetric(models.Model):
    """Per item and day: how often it was shown in served lists, clicked from them and converted. Feeds the
    long-tail chart and the top-items / top-categories tables without re-reading the served-list log."""

    day = models.DateField()
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+")
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    # a day's sum of conversions: 26 integer digits hold 1e11 of them at the largest accepted revenue
    revenue = models.DecimalField(max_digits=30, decimal_places=4, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "-impressions", "item_id"]
        constraints = [models.UniqueConstraint(fields=["day", "item"], name="dailyitemmetric_unique")]

    def __str__(self) -> str:
        return f"{self.day} item {self.item_id}: {self.impressions}"


class DeadLetterSweep(models.TextChoices):
    ATTRIBUTION = "attribution", "attribution (key: event id)"
    DAILY_METRICS_ROLLUP = "daily_metrics_rollup", "daily metrics rollup (key: day)"


class DeadLetter(models.Model):
    """A row a sweep could not process (one event to attribute, one day to roll up), with the error. The
    sweep records it and moves on, so one bad row never stops it. The sweeps try the row again when they
    meet it, up to DEAD_LETTER_MAX_ATTEMPTS times in all, then skip it; a fixed row is retried from admin
    (analytics.deadletters.dead_letter_retry). `created_at` is when it first failed, `updated_at` the last
    attempt."""

    sweep = models.CharField(max_length=50, choices=DeadLetterSweep.choices)
    key = models.CharField(max_length=100, help_text="The row: an event id (pk) or a day (YYYY-MM-DD).")
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    resolved = models.BooleanField(default=False, help_text="Processed by a later attempt.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["resolved", "-updated_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["sweep", "key"], name="deadletter_once_per_row")]

    def __str__(self) -> str:
        return f"{self.sweep} {self.key} ({self.attempts} attempts)"


class EvaluationRun(models.Model):
    """One offline evaluation (`manage.py evaluate`): the protocol, what data it ran on, how it was
    configured, and per method the metrics at each K."""

    protocol = models.CharField(max_length=30)
    dataset_fingerprint = models.CharField(max_length=64)
    configuration = models.JSONField(default=dict)
    # {"method": {"recall@10": 0.1, ...}, ...}
    metrics = models.JSONField(default=dict)
    summary = models.JSONField(default=dict, help_text="Counts: users evaluated, train/test events, ...")
    duration_seconds = models.FloatField(default=0.0)
    label = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.protocol} {self.created_at:%Y-%m-%d %H:%M}"


class EvaluationJobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class EvaluationJob(models.Model):
    """An evaluation started from the report page: queued for a worker (`evaluation_job_maintenance_task`, on the maintenance queue), its
    progress while it runs, and the runs it saved. A job the worker lost (no progress for
    `JOB_STALE_AFTER`) can be claimed again."""

    status = models.CharField(
        max_length=10, choices=EvaluationJobStatus.choices, default=EvaluationJobStatus.QUEUED
    )
    scope = models.CharField(
        max_length=20, default="quick", help_text="quick: the baselines; full: and the served path"
    )
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    message = models.CharField(max_length=300, blank=True, default="")
    run = models.ForeignKey(EvaluationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.CharField(max_length=150, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"evaluation job #{self.pk} {self.status}"

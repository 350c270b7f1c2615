"""Serving state: per-surface re-ranking profiles, item popularity, the served-list log and the admin audit."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from pgvector.django import VectorField

DEFAULT_PROFILE = "default"


class Scenario(models.TextChoices):
    USER = "user"
    SIMILAR = "similar"
    SESSION = "session"
    TRENDING = "trending"
    SEARCH = "search"
    BOUGHT_TOGETHER = "bought_together"
    # the anchor has no co-visitation yet: content neighbours instead
    BOUGHT_TOGETHER_FALLBACK = "bought_together_fallback_content"
    CART = "cart"
    CART_FALLBACK = "cart_fallback_content"


# Room for the longest scenario name (the served-list log and the profiles' per-scenario lists).
SCENARIO_MAX_LENGTH = 40


class DiversityMode(models.TextChoices):
    NONE = "none"
    MMR = "mmr"
    CAPS = "caps"


def _default_exclude_bought() -> list[str]:
    return [Scenario.USER, Scenario.SIMILAR, Scenario.SESSION, Scenario.TRENDING]


def _default_exclude_seen() -> list[str]:
    return [Scenario.USER]


class RerankProfile(models.Model):
    """The re-ranking weights of one surface (`home`, `pdp`, ...); `default` serves surfaces that have no
    profile of their own. Read on every request, so an edit in admin applies to the next answer. `version`
    goes up on every save and is logged with each served list."""

    surface = models.CharField(max_length=100, unique=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    candidate_k = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(10), MaxValueValidator(2000)],
        help_text="Candidates retrieved before re-ranking: ANN, trending, bought together (the ranker's "
        "sources take their own). 100: chosen by the offline evaluation (docs/serving-speed.md).",
    )
    # freshness
    freshness_weight = models.FloatField(
        default=0.0,
        help_text="Added to the score of a brand-new item (0: off; it cost accuracy in the re-ranking "
        "ablation, and exploration still gives new items a slot).",
    )
    freshness_half_life_days = models.FloatField(default=30.0, validators=[MinValueValidator(0.1)])
    # inventory
    in_stock_only = models.BooleanField(default=True)
    low_stock_threshold = models.PositiveIntegerField(default=3)
    low_stock_factor = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Score multiplier.",
    )
    # seen / bought, per scenario
    exclude_bought_in = ArrayField(
        models.CharField(max_length=SCENARIO_MAX_LENGTH, choices=Scenario.choices),
        default=_default_exclude_bought,
        blank=True,
        help_text="Scenarios that hide items the user already bought (leave out where repeat purchase is "
        "normal).",
    )
    exclude_seen_in = ArrayField(
        models.CharField(max_length=SCENARIO_MAX_LENGTH, choices=Scenario.choices),
        default=_default_exclude_seen,
        blank=True,
        help_text="Scenarios that hide items the user already viewed.",
    )
    # promotions
    promotions_enabled = models.BooleanField(default=True)
    # popularity bias
    popularity_penalty = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0)],
        help_text="Subtracted for the most popular item (0: off; it cost accuracy in the re-ranking ablation).",
    )
    # near duplicates
    duplicate_similarity = models.FloatField(
        default=0.97,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Cosine similarity above which a lower-ranked item is collapsed into a higher one.",
    )
    # diversity
    diversity_mode = models.CharField(max_length=10, choices=DiversityMode.choices, default=DiversityMode.MMR)
    mmr_lambda = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="1 = pure relevance, 0 = pure diversity. Lower it to turn diversity up (what it costs: "
        "`evaluate --ablation`).",
    )
    max_per_category = models.PositiveIntegerField(default=0, help_text="Caps mode; 0 = no cap.")
    max_per_brand = models.PositiveIntegerField(default=0, help_text="Caps mode; 0 = no cap.")
    # exploration
    exploration_share = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)], help_text="Share of slots."
    )
    exploration_max_age_days = models.FloatField(default=14.0, validators=[MinValueValidator(0.0)])

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["surface"]

    def __str__(self) -> str:
        return f"{self.surface} (v{self.version})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            # Two admins saving at once may both write the same next version; the log still tells the
            # settings apart by updated_at, and this keeps the save a plain UPDATE.
            self.version += 1
        super().save(*args, **kwargs)


class ItemPopularity(models.Model):
    """Time-decayed popularity of an item, recomputed from the event stream by a periodic task
    (recommendations.services.item_popularity_refresh). Trending and the popularity penalty read it."""

    item = models.OneToOneField("catalog.Item", primary_key=True, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(default=0.0)
    interaction_count = models.PositiveIntegerField(default=0)
    last_interaction_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-score"]
        indexes = [models.Index(fields=["-score"], name="popularity_score")]
        verbose_name_plural = "item popularity"

    def __str__(self) -> str:
        return f"{self.item_id}: {self.score:.3f}"


class ServedList(models.Model):
    """One answer of the recommendation API, exactly as served: what attribution and CTR are computed
    from (events carry the `recommendation_id`). Written off the request path, in batches, a fraction of a
    second after the answer (recommendations/served_log.py)."""

    recommendation_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.CharField(max_length=128, blank=True, default="")
    session_id = models.CharField(max_length=128, blank=True, default="")
    surface = models.CharField(max_length=100, blank=True, default="")
    scenario = models.CharField(max_length=SCENARIO_MAX_LENGTH, choices=Scenario.choices)
    profile_surface = models.CharField(max_length=100, blank=True, default="")
    profile_version = models.PositiveIntegerField(default=0)
    model_version = models.CharField(max_length=200, blank=True, default="")
    backend = models.CharField(max_length=50, blank=True, default="")
    # the A/B experiment (Experiment id; not a foreign key: a deleted experiment keeps its log) and arm
    experiment = models.PositiveIntegerField(null=True, blank=True)
    variant = models.CharField(max_length=50, blank=True, default="")
    # the list, in served order
    item_pks = ArrayField(models.BigIntegerField(), default=list)
    item_ids = ArrayField(models.CharField(max_length=255), default=list)
    scores = ArrayField(models.FloatField(), default=list)
    reasons = models.JSONField(default=list)
    # the 1-based positions the visitor's client reported as actually seen (impressions, e.g. through an
    # IntersectionObserver); empty when no client reported any
    seen_positions = ArrayField(models.PositiveSmallIntegerField(), default=list, blank=True)
    # how long the shopper waited for this list, in milliseconds: from the start of the serving view to
    # its response, the log's own hand-off excluded (served_log.served_log_timed); NULL for lists served
    # before it was recorded. The default makes the buffered log fill it in for rows that leave it out.
    latency_ms = models.FloatField(null=True, blank=True, default=None)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="servedlist_created"),
            models.Index(fields=["user_id"], name="servedlist_user", condition=~models.Q(user_id="")),
            models.Index(
                fields=["experiment", "variant"],
                name="servedlist_experiment",
                condition=models.Q(experiment__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recommendation_id} {self.scenario} {self.surface}"


class AuditEntry(models.Model):
    """Who changed what in the merchandising admin (promotions, re-ranking profiles), and when, with the
    values before and after."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=10)  # create / change / delete
    model = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300, blank=True, default="")
    changes = models.JSONField(default=dict, help_text="{field: [before, after]}")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.username} {self.action} {self.model} {self.object_id}"


# --- co-visitation (recommendations/covisitation.py)


class CovisitationKind(models.TextChoices):
    BOUGHT = "bought"  # add_to_cart and purchase events only
    VIEWED = "viewed"  # every event type
    SHOPPERS = "shoppers"  # distinct actors who had both items, any event type, any time apart


class CovisitationPair(models.Model):
    """The compacted directed co-visitation weight item_a -> item_b of one kind (raw, before the
    popularity normalisation). The row (a, a) holds item a's popularity in the kind: an item never pairs
    with itself, and keeping it here lets the fold write one table. Recent events are in
    CovisitationDelta until the next compaction; reads sum both. Items are plain ids, not foreign keys:
    the fold appends without FK checks, and deactivated items are filtered out when read."""

    pk = models.CompositePrimaryKey("kind", "item_a", "item_b")
    kind = models.CharField(max_length=8, choices=CovisitationKind.choices)
    item_a = models.BigIntegerField()
    item_b = models.BigIntegerField()
    weight = models.FloatField()
    # db_default: the rebuild writes rows with COPY
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["kind", "item_a", "-weight"]
        indexes = [
            # the popularity rows (a, a), which every co-visitation read looks up for each neighbour: a
            # small covering index makes those lookups one index-only scan (~1 ms for 500 neighbours on
            # Online Retail, ~11 ms through the primary key; bench/ranked_latency.py)
            models.Index(
                fields=["kind", "item_a"],
                include=["weight"],
                condition=models.Q(item_a=models.F("item_b")),
                name="covisit_pair_popularity",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.item_a} -> {self.item_b}: {self.weight:.3f}"


class CovisitationDelta(models.Model):
    """Increments appended by the fold (one row per pair per folded batch), merged into CovisitationPair by
    the compaction. Append-only, so two workers folding at once never wait on each other's row locks."""

    kind = models.CharField(max_length=8, choices=CovisitationKind.choices)
    item_a = models.BigIntegerField()
    item_b = models.BigIntegerField()
    weight = models.FloatField()
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())  # never updated; the house rule

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["kind", "item_a"], name="covisit_delta_anchor")]

    def __str__(self) -> str:
        return f"+{self.kind} {self.item_a} -> {self.item_b}: {self.weight:.3f}"


# --- the two-tower model (recommendations/two_tower/)

# Dimension of the two-tower item and user vectors (TrainConfig.dim must match: the vector column is typed).
TWO_TOWER_DIM = 64


class ModelVersion(models.Model):
    """One training run of the two-tower model: its configuration, the training-data window, the metrics
    of the gate's evaluation, the artifact on disk, and the decision (promoted or rejected, and why). At
    most one version is active; serving uses it, and content vectors when none is."""

    class Status(models.TextChoices):
        TRAINING = "training"
        PROMOTED = "promoted"
        REJECTED = "rejected"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"

    class Kind(models.TextChoices):
        TWO_TOWER = "two_tower"
        RANKER = "ranker"  # the LightGBM ranker over the candidate sources (recommendations/ranker/)

    # Each kind has its own active version, gate and rollback.
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TWO_TOWER)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TRAINING)
    is_active = models.BooleanField(default=False)
    reason = models.TextField(blank=True, default="", help_text="Why it was promoted, rejected or failed.")
    configuration = models.JSONField(default=dict)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    events = models.PositiveIntegerField(default=0)
    gate_metric = models.CharField(max_length=50, blank=True, default="")
    gate_protocol = models.CharField(max_length=20, blank=True, default="")
    candidate_score = models.FloatField(null=True, blank=True)
    reference_score = models.FloatField(null=True, blank=True)
    reference = models.CharField(max_length=100, blank=True, default="", help_text="What it was compared to.")
    metrics = models.JSONField(default=dict, help_text="The gate run's metrics per method; training history.")
    # analytics.EvaluationRun of the gate (an id, not a foreign key: recommendations does not import analytics)
    evaluation_run_id = models.PositiveIntegerField(null=True, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True, default="")
    training_seconds = models.FloatField(null=True, blank=True)
    seed = models.IntegerField(default=0)
    item_vectors = models.PositiveIntegerField(default=0, help_text="Item vectors written for serving.")
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "is_active"],
                condition=models.Q(is_active=True),
                name="one_active_model_per_kind",
            )
        ]

    def __str__(self) -> str:
        label = "two-tower" if self.kind == self.Kind.TWO_TOWER else self.kind
        return f"{label} v{self.pk} ({self.status}{', active' if self.is_active else ''})"

    @property
    def name(self) -> str:
        """What the served-list log records as the model version."""
        return f"two-tower-v{self.pk}" if self.kind == self.Kind.TWO_TOWER else f"{self.kind}-v{self.pk}"


class ModelItemVector(models.Model):
    """An item-tower vector of one model version. Each version gets its own partial HNSW index (built
    before the version is activated: training.two_tower.registry), so switching versions needs no
    rebuild and content vectors (catalog_item.embedding) stay untouched as the fallback."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+")
    embedding = VectorField(dimensions=TWO_TOWER_DIM)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["version", "item"]
        constraints = [models.UniqueConstraint(fields=["version", "item"], name="model_item_vector_unique")]

    def __str__(self) -> str:
        return f"v{self.version_id} item {self.item_id}"


class CandidateList(models.Model):
    """A user's ranked candidates, computed by the worker before the request's hard filters and the live
    re-ranking (recommendations/candidate_cache.py). A cache: the table is UNLOGGED (a crash empties it,
    and serving falls back to the live path until the worker refills it), and every row can be rebuilt.
    `item_pks`, `scores` and `reason_index` are aligned, best first; `reason_index` points into `reasons`
    (the list's distinct source reasons: a few anchors for 500 candidates), -1 for a candidate explained at
    serving time, as the live path does."""

    user_id = models.CharField(max_length=128, unique=True)
    # what the list was computed with: the models' and the profile's stage settings (candidate_cache.key);
    # another key at request time makes the row a miss
    key = models.CharField(max_length=400)
    # the newest of the user's events the list saw (a newer one makes the row a miss)
    last_event_id = models.BigIntegerField(default=0)
    scenario = models.CharField(max_length=SCENARIO_MAX_LENGTH, default=Scenario.USER)
    model_version = models.CharField(max_length=200, blank=True, default="")
    item_pks = ArrayField(models.BigIntegerField(), default=list)
    scores = ArrayField(models.FloatField(), default=list)
    reasons = models.JSONField(default=list)
    reason_index = ArrayField(models.SmallIntegerField(), default=list)
    computed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id"]
        indexes = [models.Index(fields=["computed_at"], name="candidatelist_computed")]

    def __str__(self) -> str:
        return f"{self.user_id} ({len(self.item_pks)} candidates)"


class ItemCandidateList(models.Model):
    """An item's ranked candidates for one scenario (`similar`: the item page; `session`: a session of
    this one item), computed by the worker for the default profile and no request filters
    (recommendations/item_cache.py). A cache like CandidateList: UNLOGGED, every row can be rebuilt.
    `item_pks`, `scores` and `reason_index` are aligned, best first; `reason_index` points into `reasons`,
    -1 for a candidate explained at serving time, as the live path does."""

    # no index of its own: the unique (item, scenario) index serves every lookup by item
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+", db_index=False)
    scenario = models.CharField(max_length=SCENARIO_MAX_LENGTH)
    # what the list was computed with (item_cache.key_current); another key at request time is a miss
    key = models.CharField(max_length=400)
    # the item's `embedded_at` when computed: a new vector of the item makes the row a miss
    vector_at = models.DateTimeField(null=True)
    model_version = models.CharField(max_length=200, blank=True, default="")
    item_pks = ArrayField(models.BigIntegerField(), default=list)
    scores = ArrayField(models.FloatField(), default=list)
    reasons = models.JSONField(default=list)
    reason_index = ArrayField(models.SmallIntegerField(), default=list)
    computed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item_id", "scenario"]
        constraints = [models.UniqueConstraint(fields=["item", "scenario"], name="itemcandidatelist_item")]
        indexes = [models.Index(fields=["computed_at"], name="itemcandidatelist_computed")]

    def __str__(self) -> str:
        return f"{self.item_id} {self.scenario} ({len(self.item_pks)} candidates)"


# --- A/B experiments (recommendations/experiments.py assigns and applies; analytics/experiments.py reports)


class ExperimentState(models.TextChoices):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


class Experiment(models.Model):
    """An A/B test on some surfaces: while running (and inside its window), each visitor is assigned one
    arm by a hash of the experiment and their user id (session id when anonymous), and every answer on
    those surfaces is served with that arm's configuration and labelled with it. A stopped (or ended)
    experiment serves its control arm to everyone, unlabelled."""

    name = models.SlugField(max_length=100, unique=True, help_text="Carried by every answer as `experiment`.")
    description = models.TextField(blank=True, default="", help_text="The hypothesis, in a sentence.")
    state = models.CharField(max_length=10, choices=ExperimentState.choices, default=ExperimentState.DRAFT)
    surfaces = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Surfaces it covers (comma-separated, e.g. home,pdp); empty: every surface.",
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Optional: control serves after it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    def covers(self, surface: str) -> bool:
        return not self.surfaces or surface in self.surfaces

    def live_at(self, now) -> bool:
        """Running, started, and not past its end."""
        return (
            self.state == ExperimentState.RUNNING
            and self.starts_at <= now
            and (self.ends_at is None or now < self.ends_at)
        )


class ExperimentArm(models.Model):
    """One variant of an experiment: a share of its traffic, served with a re-ranking profile, a model
    version and/or candidate sources left out (blank: as served outside the experiment)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.SlugField(max_length=50, help_text="Carried by every answer as `variant` (e.g. A, B).")
    is_control = models.BooleanField(default=False, help_text="Exactly one arm is the control.")
    traffic_percent = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)], help_text="The arms' shares sum to 100."
    )
    profile = models.ForeignKey(
        RerankProfile,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Re-ranking profile to serve with (blank: the surface's own).",
    )
    model_version = models.ForeignKey(
        "ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A ranker or two-tower version to serve with (blank: the active one).",
    )
    disabled_sources = ArrayField(
        models.CharField(max_length=50),
        default=list,
        blank=True,
        help_text="Candidate sources left out of the ranker's candidates (comma-separated, e.g. trending).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["experiment", "-is_control", "name"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="experiment_arm_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}/{self.name}{' (control)' if self.is_control else ''}"

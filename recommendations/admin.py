"""Merchandising admin: promotions (with a side-by-side preview), re-ranking profiles, the audit trail and
the served-list log (read-only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from catalog.models import CATEGORY_SEPARATOR, Promotion, PromotionScope
from recommendations import promotion_explain, promotion_facts, scenarios, selectors
from recommendations.audited_admin import AuditedAdmin
from recommendations.models import AuditEntry, RerankProfile, ServedList


class PreviewForm(forms.Form):
    """Whose list to preview, where and when."""

    SCENARIOS = [
        ("user", "For a user"),
        ("session", "For a session's items"),
        ("trending", "Trending"),
        ("search", "Semantic search"),
    ]

    scenario = forms.ChoiceField(choices=SCENARIOS, initial="user")
    user_id = forms.CharField(
        required=False, max_length=128, widget=forms.TextInput(attrs={"list": "recent-users"})
    )
    session_item_ids = forms.CharField(
        required=False, max_length=5000, help_text="Item ids, oldest first, separated by commas."
    )
    query = forms.CharField(
        required=False, max_length=500, help_text="For semantic search: what a shopper typed."
    )
    surface = forms.CharField(required=False, max_length=100, help_text="Empty: the default profile.")
    category = forms.CharField(required=False, max_length=2000, help_text="Optional category prefix (A > B).")
    as_of = forms.DateTimeField(
        required=False, help_text="Serve as of this time (UTC), e.g. a promotion's start. Empty: now."
    )
    include_drafts = forms.BooleanField(required=False, help_text="Also apply inactive (draft) promotions.")
    limit = forms.IntegerField(min_value=1, max_value=100, initial=10)

    def clean(self):
        data = super().clean()
        scenario = data.get("scenario")
        if scenario == "user" and not data.get("user_id"):
            self.add_error("user_id", "Give a user id.")
        if scenario == "search" and not (data.get("query") or "").strip():
            self.add_error("query", "Give a search query.")
        if scenario == "session":
            ids = [i.strip() for i in (data.get("session_item_ids") or "").split(",") if i.strip()]
            if not ids:
                self.add_error("session_item_ids", "Give at least one item id.")
            else:
                found = selectors.items_pks_by_external_id(external_ids=ids)
                unknown = [i for i in ids if i not in found]
                if unknown:
                    self.add_error("session_item_ids", f"Unknown item ids: {', '.join(unknown[:10])}")
                data["session_pks"] = [found[i] for i in ids if i in found]
        return data


@admin.register(Promotion)
class PromotionAdmin(AuditedAdmin):
    list_display = [
        "name",
        "target",
        "boost",
        "pinned_slot",
        "surfaces_label",
        "starts_at",
        "ends_at",
        "is_active",
        "live",
    ]
    list_filter = ["is_active", "target_type"]
    search_fields = ["name", "brand", "item__external_id", "item__title"]
    # picked by external id or title (ItemAdmin.search_fields), never by an internal number
    autocomplete_fields = ["item"]
    radio_fields = {"surface_scope": admin.VERTICAL}
    readonly_fields = ["created_at", "updated_at", "history_link"]
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        (
            "Target",
            {
                "fields": ["target_type", "item", "category_path", "brand"],
                "description": "One of: an item, a category path (names separated by commas, e.g. "
                "Electronics,Phones: the whole subtree), or a brand.",
            },
        ),
        ("Effect", {"fields": ["boost", "pinned_slot"]}),
        ("Surfaces", {"fields": ["surface_scope", "surfaces"]}),
        ("Window", {"fields": ["starts_at", "ends_at"]}),
        ("Record", {"fields": ["created_at", "updated_at", "history_link"]}),
    ]
    change_list_template = "admin/recommendations/promotion_change_list.html"

    @admin.display(description="target")
    def target(self, obj: Promotion) -> str:
        return promotion_facts.promotion_target_label(obj)

    @admin.display(description="surfaces")
    def surfaces_label(self, obj: Promotion) -> str:
        named = ", ".join(obj.surfaces)
        if obj.surface_scope == PromotionScope.ALL:
            return f"all + {named}" if named else "all (not search)"
        return named

    def audit_values(self, obj: Promotion) -> dict[str, Any]:
        values = super().audit_values(obj)
        # the merchandiser's id for the item, not the database's
        values["item"] = obj.item.external_id if obj.item_id else None
        return values

    def save_model(self, request, obj: Promotion, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.target_type == "item" and obj.item_id:
            problems = promotion_explain.item_unservable(promotion_facts.item_facts(obj.item))
            if problems:
                self.message_user(
                    request,
                    f"Saved, but {obj.item.external_id} cannot be served as promoted: {'; '.join(problems)}.",
                    level=messages.WARNING,
                )

    @admin.display(boolean=True, description="live now")
    def live(self, obj: Promotion) -> bool:
        now = timezone.now()
        return obj.is_active and obj.starts_at <= now and (obj.ends_at is None or obj.ends_at > now)

    @admin.display(description="audit")
    def history_link(self, obj: Promotion) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:recommendations_auditentry_changelist")
        return format_html(
            '<a href="{}?model=catalog.Promotion&object_id={}">changes of this promotion</a>', url, obj.pk
        )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("item")

    def get_changeform_initial_data(self, request):
        return {"starts_at": timezone.now(), **super().get_changeform_initial_data(request)}

    def get_urls(self):
        preview = path(
            "preview/", self.admin_site.admin_view(self.preview_view), name="catalog_promotion_preview"
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request):
        """The list for a user, a session or trending, with and without the promotions, side by side.
        Serves through the real pipeline but logs nothing."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PreviewForm(request.GET or None)
        columns = explanations = None
        if form.is_bound and form.is_valid():
            columns, explanations = self._preview_columns(form.cleaned_data)
        users, sessions = promotion_facts.preview_recent_people()
        context = {
            **self.admin_site.each_context(request),
            "title": "Preview promotions",
            "opts": self.model._meta,
            "form": form,
            "columns": columns,
            "explanations": explanations,
            "recent_users": users,
            "recent_sessions": [
                {
                    "session_id": s.session_id,
                    "query": urlencode(
                        {"scenario": "session", "limit": 10, "session_item_ids": ",".join(s.item_ids)}
                    ),
                    "size": len(s.item_ids),
                }
                for s in sessions
            ],  # fmt: skip
        }
        return TemplateResponse(request, "admin/recommendations/promotion_preview.html", context)

    def _preview_columns(
        self, data: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[promotion_explain.Explanation]]:
        category = [
            p.strip() for p in (data.get("category") or "").split(CATEGORY_SEPARATOR.strip()) if p.strip()
        ]
        params = scenarios.ListParams(
            limit=data["limit"], surface=data.get("surface") or "", category=tuple(category)
        )
        columns = []
        for label, with_promotions in [("With promotions", True), ("Without promotions", False)]:
            preview = scenarios.PreviewOptions(
                now=data.get("as_of"),
                promotions=with_promotions,
                include_inactive_promotions=data.get("include_drafts", False),
            )
            if data["scenario"] == "user":
                answer = scenarios.recommendations_for_user(
                    user_id=data["user_id"], params=params, preview=preview
                )
            elif data["scenario"] == "session":
                answer = scenarios.recommendations_for_session(
                    item_pks=data["session_pks"], params=params, preview=preview
                )
            elif data["scenario"] == "search":
                answer = scenarios.recommendations_search(
                    query=data["query"].strip(), params=params, preview=preview
                )
            else:
                answer = scenarios.recommendations_trending(params=params, preview=preview)
            columns.append({"label": label, "answer": answer})
        other = {i["id"] for i in columns[1]["answer"].items}
        for item in columns[0]["answer"].items:
            item["changed"] = item["id"] not in other
        now = data.get("as_of") or timezone.now()
        profile = selectors.profile_for_surface(surface=params.surface)
        list_facts = promotion_explain.ListFacts(
            items=columns[0]["answer"].items,
            surface=params.surface,
            search=data["scenario"] == "search",
            now=now,
            category=params.category,
            in_stock_only=profile.in_stock_only,
            include_drafts=data.get("include_drafts", False),
            promotions_enabled=profile.promotions_enabled,
            limit=params.limit,
        )
        facts = promotion_facts.promotions_preview_facts(
            now=now, include_drafts=data.get("include_drafts", False)
        )
        return columns, promotion_explain.promotions_explain(facts, list_facts)


@admin.register(RerankProfile)
class RerankProfileAdmin(AuditedAdmin):
    list_display = [
        "surface",
        "version",
        "diversity_mode",
        "mmr_lambda",
        "freshness_weight",
        "popularity_penalty",
        "exploration_share",
        "updated_at",
    ]
    readonly_fields = ["version", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["surface", "version", "candidate_k"]}),
        ("Freshness", {"fields": ["freshness_weight", "freshness_half_life_days"]}),
        ("Inventory", {"fields": ["in_stock_only", "low_stock_threshold", "low_stock_factor"]}),
        ("Seen and bought", {"fields": ["exclude_bought_in", "exclude_seen_in"]}),
        ("Promotions and popularity", {"fields": ["promotions_enabled", "popularity_penalty"]}),
        (
            "Near duplicates and diversity",
            {
                "fields": [
                    "duplicate_similarity",
                    "diversity_mode",
                    "mmr_lambda",
                    "max_per_category",
                    "max_per_brand",
                ]
            },
        ),
        ("Exploration", {"fields": ["exploration_share", "exploration_max_age_days"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "username", "action", "model", "object_id", "object_repr", "changed_fields"]
    list_filter = ["action", "model"]
    search_fields = ["username", "object_id", "object_repr"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    @admin.display(description="fields")
    def changed_fields(self, obj: AuditEntry) -> str:
        return ", ".join(sorted(obj.changes))

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in {"model", "object_id"} or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ServedList)
class ServedListAdmin(admin.ModelAdmin):
    list_display = ["recommendation_id", "created_at", "scenario", "surface", "user_id", "session_id", "size"]
    list_filter = ["scenario", "surface"]
    search_fields = ["=recommendation_id", "=user_id", "=session_id"]
    readonly_fields = [f.name for f in ServedList._meta.fields]
    show_full_result_count = False  # a count(*) over millions of rows on every page load is not worth it

    @admin.display(description="items")
    def size(self, obj: ServedList) -> int:
        return len(obj.item_ids)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The experiments' admin lives in its own module (registered on import).
from recommendations import experiment_admin  # noqa: E402, F401

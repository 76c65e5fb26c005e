from __future__ import annotations

from django.contrib import admin

from routing.models import (
    Caption,
    CaptionRun,
    Chain,
    ChainRule,
    ChainStep,
    ModelCall,
    Route,
    RouteTest,
)


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "model", "enabled", "timeout_s", "max_attempts"]
    list_filter = ["provider", "enabled"]
    search_fields = ["name", "model"]


class ChainStepInline(admin.TabularInline):
    model = ChainStep
    extra = 1
    ordering = ["position"]


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "is_default", "deadline_s"]
    list_filter = ["project"]
    inlines = [ChainStepInline]


@admin.register(ChainRule)
class ChainRuleAdmin(admin.ModelAdmin):
    list_display = ["project", "category", "min_score", "chain", "position", "enabled"]


@admin.register(CaptionRun)
class CaptionRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "status", "caption_count", "spent_usd", "budget_usd"]
    list_filter = ["status", "kind"]
    readonly_fields = ["spent_usd", "reserved_usd", "estimated_usd", "created_at", "finished_at"]


class ModelCallInline(admin.TabularInline):
    model = ModelCall
    fk_name = "caption"
    extra = 0
    can_delete = False
    fields = [
        "attempt",
        "route",
        "trigger",
        "status",
        "error_class",
        "http_status",
        "latency_ms",
        "cost_usd",
        "cost_source",
        "request_id",
    ]
    readonly_fields = fields


@admin.register(Caption)
class CaptionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "route", "status", "origin", "cost_usd", "created_at"]
    list_filter = ["status", "origin"]
    raw_id_fields = ["image", "run", "chain"]
    inlines = [ModelCallInline]


@admin.register(ModelCall)
class ModelCallAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "caption",
        "route_test",
        "route",
        "attempt",
        "trigger",
        "status",
        "error_class",
        "latency_ms",
        "cost_usd",
        "started_at",
    ]
    list_filter = ["status", "route", "error_class"]
    raw_id_fields = ["caption", "route_test", "run", "cached_from"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the call log is a record, not something to edit


@admin.register(RouteTest)
class RouteTestAdmin(admin.ModelAdmin):
    list_display = ["id", "route", "status", "latency_ms", "cost_usd", "created_by", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["route", "created_by"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a record of what the route answered

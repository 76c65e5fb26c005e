from __future__ import annotations

from django.contrib import admin

from review.models import Adjudication, Lease, ReviewItem, ReviewPolicy, Verdict


@admin.register(ReviewPolicy)
class ReviewPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "approvals_required", "risky_approvals_required", "risky_first"]


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "caption", "state", "risky", "required", "reviews_done"]
    list_filter = ["state", "risky"]
    raw_id_fields = ["caption", "image", "project"]
    search_fields = ["caption__text", "final_text"]


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "reviewer", "slot", "state", "created_at", "expires_at"]
    list_filter = ["state"]
    raw_id_fields = ["item", "project", "reviewer", "ended_by"]


@admin.register(Verdict)
class VerdictAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "reviewer", "decision", "late", "time_spent_ms", "created_at"]
    list_filter = ["decision", "late"]
    raw_id_fields = ["lease", "item", "caption", "project", "reviewer"]


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ["item", "admin", "decision", "created_at"]
    raw_id_fields = ["item", "admin"]

"""The review part of the REST API: review items and their verdicts (read), the annotator's
loop (claim the next item, heartbeat, submit a verdict, undo, release) and adjudication.

Verdicts go through review/services/verdict.py with the client's idempotency key, exactly as
the review page posts them: a retried request returns the verdict saved the first time.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from integrations.api_common import (
    NoFilters,
    OldestFirstCursorPagination,
    filters_from,
    model_errors,
    object_or_404,
    project_or_404,
)
from labeling.models import RiskCategory
from review import selectors
from review.forms import (
    PairwiseCreateForm,
    PairwiseJudgeForm,
    ReassignForm,
    RiskBulkCorrectionForm,
    VerdictForm,
)
from review.metrics import IMAGE_FILTERS
from review.models import (
    Adjudication,
    Lease,
    PairwiseJudgement,
    PairwiseLease,
    RejectReason,
    ReviewItem,
    ReviewPolicy,
    SkipReason,
    Verdict,
)
from review.services import pairwise, queue
from review.services.verdict import LeaseLost, VerdictInvalid, item_adjudicate, verdict_submit
from review.services.verdict import verdict_undo as verdict_undo_service

# --- serializers ----------------------------------------------------------------------------


class ReviewItemSerializer(serializers.ModelSerializer):
    caption_text = serializers.CharField(source="caption.text", read_only=True)

    class Meta:
        model = ReviewItem
        fields = [
            "id",
            "project_id",
            "image_id",
            "caption_id",
            "caption_text",
            "state",
            "risky",
            "required",
            "reviews_done",
            "final_text",
            "edited",
            "char_effort",
            "word_effort",
            "queued_at",
            "decided_at",
        ]
        read_only_fields = fields


class ReviewItemFilters(serializers.Serializer):
    state = serializers.ChoiceField(choices=ReviewItem.State.choices, required=False)


class VerdictSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = Verdict
        fields = [
            "id",
            "item_id",
            "lease_id",
            "reviewer",
            "decision",
            "final_text",
            "reasons",
            "note",
            "time_spent_ms",
            "late",
            "idempotency_key",
            "char_effort",
            "word_effort",
            "created_at",
        ]
        read_only_fields = fields


class LeaseSerializer(serializers.ModelSerializer):
    item = ReviewItemSerializer(read_only=True)

    class Meta:
        model = Lease
        fields = ["id", "state", "slot", "created_at", "heartbeat_at", "expires_at", "item"]
        read_only_fields = fields


class VerdictRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Verdict.Decision.choices)
    idempotency_key = serializers.UUIDField(
        help_text="A fresh UUID per verdict; resend the same one when retrying."
    )
    text = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=20_000
    )
    reasons = serializers.ListField(
        child=serializers.ChoiceField(
            choices=sorted(set(RejectReason.choices) | set(SkipReason.choices))
        ),
        required=False,
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2_000)
    time_spent_ms = serializers.IntegerField(required=False, min_value=0, allow_null=True)


class LeaseLostSerializer(serializers.Serializer):
    detail = serializers.CharField()
    decision = serializers.CharField()
    text = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField()


class HeartbeatSerializer(serializers.Serializer):
    alive = serializers.BooleanField(help_text="False when the lease was lost.")


class AdjudicationRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Adjudication.Decision.choices)
    text = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(required=False, allow_blank=True, default="")


# --- items ----------------------------------------------------------------------------------


class ReviewItemList(generics.ListAPIView):
    """A project's review items, newest first (members)."""

    serializer_class = ReviewItemSerializer

    @extend_schema(
        parameters=[OpenApiParameter("state", OpenApiTypes.STR, enum=ReviewItem.State.values)]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"])
        filters = filters_from(self.request, ReviewItemFilters)
        qs = ReviewItem.objects.filter(project=project).select_related("caption")
        if filters.get("state"):
            qs = qs.filter(state=filters["state"])
        return qs


def _item(request: Request, pk: int, *, admin: bool = False) -> ReviewItem:
    return object_or_404(
        request,
        ReviewItem.objects.select_related("project", "caption"),
        pk=pk,
        admin=admin,
    )


class ReviewItemDetail(generics.GenericAPIView):
    serializer_class = ReviewItemSerializer

    def get(self, request: Request, pk: int) -> Response:
        return Response(ReviewItemSerializer(_item(request, pk)).data)


class ReviewItemVerdicts(generics.ListAPIView):
    """Every reviewer's verdict on an item (project admins: reviewers work blind)."""

    serializer_class = VerdictSerializer
    pagination_class = OldestFirstCursorPagination

    def get_queryset(self):
        item = _item(self.request, self.kwargs["pk"], admin=True)
        return Verdict.objects.filter(item=item).select_related("reviewer")


class ReviewItemAdjudicate(generics.GenericAPIView):
    """A project admin settles an item whose reviewers disagreed."""

    serializer_class = ReviewItemSerializer

    @extend_schema(request=AdjudicationRequestSerializer, responses={200: ReviewItemSerializer})
    def post(self, request: Request, pk: int) -> Response:
        item = _item(request, pk, admin=True)
        ser = AdjudicationRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            item_adjudicate(item=item, admin=request.user, **ser.validated_data)
        except (VerdictInvalid, queue.QueueError) as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        item.refresh_from_db()
        return Response(ReviewItemSerializer(item).data)


# --- the annotator's loop -------------------------------------------------------------------


class ClaimNext(generics.GenericAPIView):
    """Your current lease, or a new one on the next item; 204 when nothing is waiting."""

    serializer_class = LeaseSerializer

    @extend_schema(
        request=None,
        responses={200: LeaseSerializer, 204: OpenApiResponse(description="Nothing to review.")},
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug)
        lease = queue.lease_claim_next(project=project, reviewer=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        lease = Lease.objects.select_related("item__caption").get(pk=lease.pk)
        return Response(LeaseSerializer(lease).data)


def _own_lease(request: Request, pk: int) -> Lease:
    lease = object_or_404(request, Lease.objects.select_related("project"), pk=pk)
    if lease.reviewer_id != request.user.pk:
        raise exceptions.NotFound("Not found.")
    return lease


class LeaseVerdict(generics.GenericAPIView):
    """Submit your verdict on your lease. 201 when saved, 200 when the same idempotency key (or a
    second verdict on the lease) returns the verdict saved first, 409 when the lease was lost."""

    serializer_class = VerdictSerializer

    @extend_schema(
        request=VerdictRequestSerializer,
        responses={200: VerdictSerializer, 201: VerdictSerializer, 409: LeaseLostSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        lease = _own_lease(request, pk)
        ser = VerdictRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(ser.validated_data)
        form = VerdictForm(
            {
                **{k: v for k, v in data.items() if v is not None and k != "reasons"},
                "reasons": data.get("reasons", []),
            }
        )
        if not form.is_valid():
            raise model_errors(form.errors)
        clean = form.cleaned_data
        try:
            submitted = verdict_submit(
                lease=lease,
                reviewer=request.user,
                decision=clean["decision"],
                idempotency_key=clean["idempotency_key"],
                text=clean["text"],
                reasons=clean["reasons"],
                note=clean["note"],
                time_spent_ms=clean["time_spent_ms"],
            )
        except VerdictInvalid as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        except LeaseLost as exc:
            body = {
                "detail": str(exc),
                "decision": exc.decision,
                "text": exc.text,
                "reasons": exc.reasons,
                "note": exc.note,
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        code = status.HTTP_200_OK if submitted.replayed else status.HTTP_201_CREATED
        return Response(VerdictSerializer(submitted.verdict).data, status=code)


class LeaseHeartbeat(generics.GenericAPIView):
    """Keep your lease alive while you work on the item."""

    serializer_class = HeartbeatSerializer

    @extend_schema(request=None, responses={200: HeartbeatSerializer})
    def post(self, request: Request, pk: int) -> Response:
        lease = _own_lease(request, pk)
        return Response({"alive": queue.lease_heartbeat(lease=lease, reviewer=request.user)})


class LeaseRelease(generics.GenericAPIView):
    """Give the item back to the queue (your own lease, or anyone's for project admins)."""

    serializer_class = LeaseSerializer

    @extend_schema(request=None, responses={200: LeaseSerializer})
    def post(self, request: Request, pk: int) -> Response:
        lease = object_or_404(request, Lease.objects.select_related("project"), pk=pk)
        if lease.reviewer_id != request.user.pk and not selectors.can_manage(
            project=lease.project, user=request.user
        ):
            raise exceptions.PermissionDenied("Only admins can release someone else's lease.")
        if not queue.lease_release(lease=lease, by=request.user):
            raise exceptions.ValidationError(
                {"non_field_errors": ["That lease has already ended."]}
            )
        lease = Lease.objects.select_related("item__caption").get(pk=lease.pk)
        return Response(LeaseSerializer(lease).data)


class ActiveLeaseSerializer(LeaseSerializer):
    reviewer_id = serializers.IntegerField(read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta(LeaseSerializer.Meta):
        fields = [*LeaseSerializer.Meta.fields, "reviewer_id", "reviewer"]
        read_only_fields = fields


class ProjectLeases(generics.ListAPIView):
    """Who holds which item now (project admins), as the leases page lists them; release one
    with ``/api/leases/<id>/release/`` or give it to someone else with ``.../reassign/``."""

    serializer_class = ActiveLeaseSerializer

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters_from(self.request, NoFilters)
        return selectors.leases_active(project=project)


class LeaseReassignSerializer(serializers.Serializer):
    reviewer = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="A member of the project, by user id."
    )


class LeaseReassign(generics.GenericAPIView):
    """Give a live lease to another member (project admins), as the leases page does: the old
    lease ends and the new reviewer holds the item. 400 with the reason when the service refuses
    (the lease ended, they already reviewed or hold the item)."""

    serializer_class = ActiveLeaseSerializer

    @extend_schema(request=LeaseReassignSerializer, responses={200: ActiveLeaseSerializer})
    def post(self, request: Request, pk: int) -> Response:
        lease = object_or_404(request, Lease.objects.select_related("project"), pk=pk, admin=True)
        ser = LeaseReassignSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        form = ReassignForm(
            {"reviewer": ser.validated_data["reviewer"]},
            reviewers=selectors.project_reviewers(project=lease.project),
        )
        if not form.is_valid():
            raise exceptions.ValidationError({"reviewer": ["Pick a member of the project."]})
        try:
            new = queue.lease_reassign(
                lease=lease, to_reviewer=form.cleaned_data["reviewer"], by=request.user
            )
        except queue.QueueError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        new = Lease.objects.select_related("item__caption", "reviewer").get(pk=new.pk)
        return Response(ActiveLeaseSerializer(new).data)


class MyVerdictSerializer(VerdictSerializer):
    image_id = serializers.IntegerField(source="item.image_id", read_only=True)
    undoable = serializers.SerializerMethodField(
        help_text="Whether this verdict can still be taken back (your last one, in the window)."
    )

    class Meta(VerdictSerializer.Meta):
        fields = [*VerdictSerializer.Meta.fields, "image_id", "undoable"]
        read_only_fields = fields

    def get_undoable(self, verdict: Verdict) -> bool:
        return verdict.pk == self.context.get("undoable_id")


class MyVerdicts(generics.ListAPIView):
    """Your own verdicts in the project, newest first ("My verdicts" on the review pages); the
    last one can be undone with ``/api/verdicts/<id>/undo/`` while ``undoable`` is true."""

    serializer_class = MyVerdictSerializer

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"])
        filters_from(self.request, NoFilters)
        self.project = project
        return selectors.reviewer_history(project=project, reviewer=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        project = getattr(self, "project", None)
        if project is not None:
            undoable = selectors.verdict_undoable(project=project, reviewer=self.request.user)
            context["undoable_id"] = undoable.pk if undoable else None
        return context


class QueueCountsSerializer(serializers.Serializer):
    to_review = serializers.IntegerField(help_text="Reviews still needed that nobody holds.")
    captions_to_review = serializers.IntegerField(
        help_text="Captions waiting, however many reviews each needs."
    )
    in_progress = serializers.IntegerField(help_text="Live leases.")
    done = serializers.IntegerField(help_text="Reviews given (skips excluded).")
    open_items = serializers.IntegerField()
    adjudication = serializers.IntegerField()
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    unqueued = serializers.IntegerField(
        help_text="Succeeded captions the queue picks up on the next claim."
    )
    my_today = serializers.IntegerField(help_text="Your reviews since local midnight.")
    my_total = serializers.IntegerField(help_text="Your reviews (skips excluded).")
    my_skipped = serializers.IntegerField()


class QueueCounts(generics.GenericAPIView):
    """The review queue's counts and your own progress, as the queue page shows them (one
    consistent snapshot)."""

    serializer_class = QueueCountsSerializer

    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug)
        filters_from(request, NoFilters)
        counts = selectors.queue_counts(project=project)
        progress = selectors.reviewer_progress(project=project, reviewer=request.user)
        out = {
            "to_review": counts.to_review,
            "captions_to_review": counts.captions_to_review,
            "in_progress": counts.in_progress,
            "done": counts.done,
            "open_items": counts.open_items,
            "adjudication": counts.adjudication,
            "approved": counts.approved,
            "rejected": counts.rejected,
            "unqueued": counts.unqueued,
            "my_today": progress.today,
            "my_total": progress.total,
            "my_skipped": progress.skipped,
        }
        return Response(QueueCountsSerializer(out).data)


class VerdictUndo(generics.GenericAPIView):
    """Take back your last verdict within the undo window: the item is yours again."""

    serializer_class = LeaseSerializer

    @extend_schema(request=None, responses={200: LeaseSerializer})
    def post(self, request: Request, pk: int) -> Response:
        verdict = object_or_404(request, Verdict.objects.select_related("project"), pk=pk)
        if verdict.reviewer_id != request.user.pk:
            raise exceptions.NotFound("Not found.")
        try:
            lease = verdict_undo_service(verdict=verdict, reviewer=request.user)
        except queue.QueueError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        lease = Lease.objects.select_related("item__caption").get(pk=lease.pk)
        return Response(LeaseSerializer(lease).data)


# --- metrics --------------------------------------------------------------------------------


class IntervalSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()
    method = serializers.CharField()


class RateSerializer(serializers.Serializer):
    k = serializers.IntegerField()
    n = serializers.IntegerField()
    value = serializers.FloatField(allow_null=True)
    interval = IntervalSerializer(allow_null=True, help_text="95%; null when n is 0.")


class CostSerializer(serializers.Serializer):
    usd = serializers.FloatField(allow_null=True)
    interval = IntervalSerializer(allow_null=True)


class RouteMetricsSerializer(serializers.Serializer):
    """One route (or model): the measures the comparison page shows, with sample sizes."""

    key = serializers.CharField(help_text="Route name, or model name when grouped by model.")
    produced = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    accepted_as_is = serializers.IntegerField()
    accepted_after_edit = serializers.IntegerField()
    rejected = serializers.IntegerField()
    disputed = serializers.IntegerField()
    reject_reasons = serializers.DictField(child=serializers.IntegerField())
    accepted_rate = RateSerializer()
    spend_usd = serializers.FloatField()
    cost_per_accepted = CostSerializer()
    cost_per_accepted_with_review = CostSerializer()
    attempts = serializers.IntegerField()
    retries = serializers.IntegerField()
    cached = serializers.IntegerField()
    timeout_rate = RateSerializer()
    error_rate = RateSerializer()
    fallback_rate = RateSerializer()
    malformed_rate = RateSerializer()
    attempt_p50_ms = serializers.FloatField(allow_null=True)
    attempt_p50_ci = IntervalSerializer(
        allow_null=True, help_text="95%: bootstrap over images, or order statistics."
    )
    attempt_p95_ms = serializers.FloatField(allow_null=True)
    attempt_p95_ci = IntervalSerializer(allow_null=True)
    e2e_p50_ms = serializers.FloatField(allow_null=True)
    e2e_p50_ci = IntervalSerializer(allow_null=True)
    e2e_p95_ms = serializers.FloatField(allow_null=True)
    e2e_p95_ci = IntervalSerializer(allow_null=True)
    char_effort = serializers.FloatField(allow_null=True)
    word_effort = serializers.FloatField(allow_null=True)
    review_ms_median = serializers.FloatField(allow_null=True)
    agreement = RateSerializer()


class MetricsSerializer(serializers.Serializer):
    images = serializers.IntegerField(help_text="Images in scope (a comparison: shared, decided).")
    as_of = serializers.DateTimeField(allow_null=True, help_text="Set when read from a rollup.")
    group_by = serializers.CharField()
    same_images = serializers.BooleanField()
    rows = RouteMetricsSerializer(many=True)


class MetricsFilters(serializers.Serializer):
    """The comparison page's filters (same names); ``compare`` keeps to shared images."""

    compare = serializers.BooleanField(
        required=False, help_text="Only images every listed route captioned and review decided."
    )
    run = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    routes = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False
    )
    group = serializers.ChoiceField(choices=["route", "model"], required=False)
    risk = serializers.CharField(required=False, max_length=20)
    reviewer = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


class ProjectMetrics(generics.GenericAPIView):
    """Every measure per route (or model) over the filters: accepted-output rate, cost per
    accepted output, latency, timeout/error/fallback/malformed rates, correction effort, review
    time and agreement, with 95% intervals (review/metrics.py computes them, as on the page).
    Project admins; annotators where the review policy opens the comparison."""

    serializer_class = MetricsSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("routes", OpenApiTypes.INT, many=True, explode=True),
            OpenApiParameter("group", OpenApiTypes.STR, enum=["route", "model"]),
        ]
    )
    def get(self, request: Request, slug: str) -> Response:
        from review.metrics import route_metrics
        from review.metrics_views import Filters, metrics_project

        filters = filters_from(request, MetricsFilters)
        project = metrics_project(request._request, slug)
        compare = bool(filters.get("compare"))
        # The page's own filter form reads the same parameters (it ignores ``compare``).
        found = Filters(request._request, project, same_images=compare)
        if found.scope is None:
            errors = {k: list(v) for k, v in found.form.errors.items()}
            raise exceptions.ValidationError(errors or {"non_field_errors": [found.problem]})
        table = route_metrics(scope=found.scope)
        rows = [_metrics_row(row) for row in table.rows]
        return Response(
            MetricsSerializer(
                {
                    "images": table.images,
                    "as_of": table.as_of,
                    "group_by": found.scope.group_by,
                    "same_images": compare,
                    "rows": rows,
                }
            ).data
        )


def _metrics_row(row) -> dict[str, Any]:
    def rate(r) -> dict[str, Any]:
        return {"k": r.k, "n": r.n, "value": r.value, "interval": r.interval}

    data = {name: getattr(row, name) for name in RouteMetricsSerializer().fields}
    for name in ("accepted_rate", "timeout_rate", "error_rate", "fallback_rate", "malformed_rate"):
        data[name] = rate(getattr(row, name))
    data["agreement"] = rate(row.agreement)
    return data


# --- review policy and risk corrections -----------------------------------------------------


class ReviewPolicySerializer(serializers.Serializer):
    approvals_required = serializers.IntegerField(min_value=1)
    risky_approvals_required = serializers.IntegerField(min_value=1)
    risky_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=RiskCategory.choices)
    )
    risky_first = serializers.BooleanField()
    show_model_name = serializers.BooleanField()
    risk_thresholds = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=1),
        help_text="Category -> flag threshold 0..1; a missing category uses the site default.",
    )
    risk_ask_model = serializers.BooleanField()
    risk_ask_scope = serializers.ChoiceField(choices=ReviewPolicy.AskScope.choices)
    annotators_see_metrics = serializers.BooleanField()


def _policy_data(policy: ReviewPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in ReviewPolicySerializer().fields}


class ReviewPolicyDetail(generics.GenericAPIView):
    """The project's review policy (project admins); PUT replaces it, as the policy page does."""

    serializer_class = ReviewPolicySerializer

    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        policy = selectors.review_policy_for(project=project)
        return Response(ReviewPolicySerializer(_policy_data(policy)).data)

    @extend_schema(request=ReviewPolicySerializer, responses={200: ReviewPolicySerializer})
    def put(self, request: Request, slug: str) -> Response:
        from review.forms import ReviewPolicyForm
        from review.services.items import review_policy_save
        from review.services.risk import risk_thresholds_default

        project, _ = project_or_404(request, slug, admin=True)
        ser = ReviewPolicySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        form_data: dict[str, Any] = {
            "approvals_required": data["approvals_required"],
            "risky_approvals_required": data["risky_approvals_required"],
            "risky_categories": data["risky_categories"],
            "risk_ask_scope": data["risk_ask_scope"],
        }
        for flag in ("risky_first", "show_model_name", "risk_ask_model", "annotators_see_metrics"):
            if data[flag]:
                form_data[flag] = "on"  # a checkbox: absent means off
        for category, value in data["risk_thresholds"].items():
            if category not in RiskCategory.values:
                raise exceptions.ValidationError({"risk_thresholds": [f"Unknown {category!r}."]})
            form_data[f"threshold_{category}"] = value
        form = ReviewPolicyForm(
            form_data,
            instance=selectors.review_policy_for(project=project),
            default_thresholds=risk_thresholds_default(),
        )
        if not form.is_valid():
            raise model_errors(form.errors)
        policy = review_policy_save(project=project, **form.cleaned_data)
        return Response(ReviewPolicySerializer(_policy_data(policy)).data)


class RiskCorrectionRequestSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=RiskCategory.choices)
    flagged = serializers.BooleanField(help_text="What is true of the image.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class RiskCorrectionCreate(generics.GenericAPIView):
    """A project admin says whether an image really is a chart, screenshot or medical image; the
    correction wins over the analyser wherever flags are read (the queue follows at once)."""

    serializer_class = RiskCorrectionRequestSerializer

    @extend_schema(
        request=RiskCorrectionRequestSerializer, responses={201: RiskCorrectionRequestSerializer}
    )
    def post(self, request: Request, pk: int) -> Response:
        from labeling.models import Image
        from review.services.risk import risk_flag_correct

        image = object_or_404(request, Image.objects.select_related("project"), pk=pk, admin=True)
        ser = RiskCorrectionRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        correction = risk_flag_correct(image=image, by=request.user, **ser.validated_data)
        out = {
            "category": correction.category,
            "flagged": correction.flagged,
            "note": correction.note,
        }
        return Response(RiskCorrectionRequestSerializer(out).data, status=status.HTTP_201_CREATED)


class RiskBulkRequestSerializer(RiskCorrectionRequestSerializer):
    images = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=1000,
        help_text="Image ids of this project (at most 1000, as the grid sends).",
    )


class RiskBulkResultSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=RiskCategory.choices)
    flagged = serializers.BooleanField()
    corrected = serializers.IntegerField(help_text="How many images were corrected.")


class RiskCorrectionBulk(generics.GenericAPIView):
    """One word on one risk category for many images (project admins), as the image grid's bulk
    correction: one insert and one refresh of the queue. An id that is not an image of this
    project is refused (400), never corrected."""

    serializer_class = RiskBulkResultSerializer

    @extend_schema(request=RiskBulkRequestSerializer, responses={201: RiskBulkResultSerializer})
    def post(self, request: Request, slug: str) -> Response:
        from labeling.models import Image
        from review.services.risk import risk_flags_correct_bulk

        project, _ = project_or_404(request, slug, admin=True)
        ser = RiskBulkRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        image_ids = list(
            Image.objects.filter(project=project, pk__in=data["images"]).values_list(
                "pk", flat=True
            )
        )
        form = RiskBulkCorrectionForm(
            {
                "images": [str(pk) for pk in data["images"]],
                "category": data["category"],
                "flagged": "1" if data["flagged"] else "0",
                "note": data["note"],
            },
            image_ids=image_ids,
        )
        if not form.is_valid():
            raise model_errors(form.errors)
        count = risk_flags_correct_bulk(
            images=Image.objects.filter(pk__in=form.cleaned_data["images"]),
            category=form.cleaned_data["category"],
            flagged=form.cleaned_data["flagged"],
            by=request.user,
            note=form.cleaned_data["note"],
        )
        out = {"category": data["category"], "flagged": data["flagged"], "corrected": count}
        return Response(RiskBulkResultSerializer(out).data, status=status.HTTP_201_CREATED)


# --- blind pairwise review ------------------------------------------------------------------


class PairwiseLeaseSerializer(serializers.Serializer):
    """A pair as the reviewer sees it: one image and two captions, sides drawn at random for the
    lease, no model names."""

    id = serializers.IntegerField()
    state = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    image_id = serializers.IntegerField()
    left_text = serializers.CharField()
    right_text = serializers.CharField()


class PairwiseJudgeRequestSerializer(serializers.Serializer):
    side = serializers.ChoiceField(
        choices=["left", "right", "tie", "both_bad"],
        help_text="Left better, right better, tie, or both bad (sides as this lease shows them).",
    )
    idempotency_key = serializers.UUIDField(
        help_text="A fresh UUID per judgement; resend the same one when retrying."
    )
    time_spent_ms = serializers.IntegerField(required=False, min_value=0, allow_null=True)


class PairwiseJudgementSerializer(serializers.ModelSerializer):
    pair_id = serializers.IntegerField(source="task_id", read_only=True)

    class Meta:
        model = PairwiseJudgement
        fields = [
            "id",
            "pair_id",
            "lease_id",
            "outcome",
            "left_is_a",
            "idempotency_key",
            "time_spent_ms",
            "late",
            "created_at",
        ]
        read_only_fields = fields


class PairwisePassSerializer(serializers.Serializer):
    passed = serializers.BooleanField(help_text="False when the lease had already ended.")


class PairwiseCreateRequestSerializer(serializers.Serializer):
    run = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Pair the captions of this run; none: across every run (same prompt).",
    )


class PairwiseCreatedSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="New pairs (pairs made before are kept).")


class WinRateSerializer(serializers.Serializer):
    rate = serializers.FloatField(
        allow_null=True, help_text="(wins + ties / 2) / (wins + losses + ties)."
    )
    n = serializers.IntegerField(help_text='Judgements between the two, "both bad" left out.')
    both_bad = serializers.IntegerField()


class StrengthSerializer(serializers.Serializer):
    name = serializers.CharField()
    score = serializers.FloatField(help_text="Bradley-Terry log-strength; the routes' mean is 0.")
    interval = IntervalSerializer(allow_null=True, help_text="95% bootstrap interval.")


class PairwiseResultsSerializer(serializers.Serializer):
    routes = serializers.ListField(child=serializers.CharField(), help_text="Matrix order.")
    matrix = serializers.ListField(
        child=serializers.ListField(child=WinRateSerializer(allow_null=True)),
        help_text="matrix[i][j]: route i preferred over route j; null where they never met.",
    )
    strengths = StrengthSerializer(many=True, help_text="Best first.")
    judged = serializers.IntegerField()
    open = serializers.IntegerField(help_text="Pairs waiting for a judgement.")


class PairwiseResultsFilters(serializers.Serializer):
    run = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


def _pairwise_lease_data(lease: PairwiseLease) -> dict[str, Any]:
    from routing.models import Caption

    texts = dict(
        Caption.objects.filter(
            pk__in=[lease.task.caption_a_id, lease.task.caption_b_id]
        ).values_list("pk", "text")
    )
    a, b = texts[lease.task.caption_a_id], texts[lease.task.caption_b_id]
    left, right = (a, b) if lease.left_is_a else (b, a)
    return {
        "id": lease.pk,
        "state": lease.state,
        "created_at": lease.created_at,
        "expires_at": lease.expires_at,
        "image_id": lease.task.image_id,
        "left_text": left,
        "right_text": right,
    }


def _own_pairwise_lease(request: Request, pk: int) -> PairwiseLease:
    lease = object_or_404(request, PairwiseLease.objects.select_related("project", "task"), pk=pk)
    if lease.reviewer_id != request.user.pk:
        raise exceptions.NotFound("Not found.")
    return lease


class PairwiseClaimNext(generics.GenericAPIView):
    """Your current pair, or a lease on the next open one (project members); 204 when no pair
    is waiting. The lease expires after the review queue's lease time."""

    serializer_class = PairwiseLeaseSerializer

    @extend_schema(
        request=None,
        responses={
            200: PairwiseLeaseSerializer,
            204: OpenApiResponse(description="No pair is waiting."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug)
        lease = pairwise.pairwise_claim_next(project=project, reviewer=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        lease = PairwiseLease.objects.select_related("task").get(pk=lease.pk)
        return Response(PairwiseLeaseSerializer(_pairwise_lease_data(lease)).data)


class PairwiseJudge(generics.GenericAPIView):
    """Your judgement on your pair. 201 when saved; 200 when the same idempotency key (or a
    second answer on the pair) returns the judgement saved first; 400 when it cannot count."""

    serializer_class = PairwiseJudgementSerializer

    @extend_schema(
        request=PairwiseJudgeRequestSerializer,
        responses={200: PairwiseJudgementSerializer, 201: PairwiseJudgementSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        lease = _own_pairwise_lease(request, pk)
        ser = PairwiseJudgeRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = {k: v for k, v in ser.validated_data.items() if v is not None}
        form = PairwiseJudgeForm(data)  # the pairwise page's form
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            judged = pairwise.pairwise_judge(
                lease=lease, reviewer=request.user, **form.cleaned_data
            )
        except pairwise.PairwiseError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        code = status.HTTP_200_OK if judged.replayed else status.HTTP_201_CREATED
        return Response(PairwiseJudgementSerializer(judged.judgement).data, status=code)


class PairwisePass(generics.GenericAPIView):
    """You cannot tell: the pair goes back to others and is not shown to you again."""

    serializer_class = PairwisePassSerializer

    @extend_schema(request=None, responses={200: PairwisePassSerializer})
    def post(self, request: Request, pk: int) -> Response:
        lease = _own_pairwise_lease(request, pk)
        return Response({"passed": pairwise.pairwise_pass(lease=lease, reviewer=request.user)})


class PairwiseCreate(generics.GenericAPIView):
    """Make blind pairs (project admins): every two succeeded captions of one image with the same
    prompt by different routes, of one run or across runs. Safe to repeat."""

    serializer_class = PairwiseCreatedSerializer

    @extend_schema(
        request=PairwiseCreateRequestSerializer, responses={200: PairwiseCreatedSerializer}
    )
    def post(self, request: Request, slug: str) -> Response:
        from routing.models import CaptionRun

        project, _ = project_or_404(request, slug, admin=True)
        ser = PairwiseCreateRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        run = ser.validated_data.get("run")
        form = PairwiseCreateForm(
            {"run": run or ""}, runs=CaptionRun.objects.filter(project=project).order_by("-id")
        )
        if not form.is_valid():
            raise model_errors(form.errors)
        chosen = form.cleaned_data["run"]
        made = pairwise.pairwise_tasks_create(project=project, run_id=chosen.pk if chosen else None)
        return Response({"created": made})


class PairwiseResults(generics.GenericAPIView):
    """Win-rate matrix and Bradley-Terry scores with 95% intervals from the blind judgements (of
    one run, or all). Whoever may see the project's metrics, as on the results page."""

    serializer_class = PairwiseResultsSerializer

    @extend_schema(parameters=[OpenApiParameter("run", OpenApiTypes.INT)])
    def get(self, request: Request, slug: str) -> Response:
        from review.metrics import pairwise_results
        from review.metrics_views import metrics_project
        from routing.models import CaptionRun

        project = metrics_project(request._request, slug)
        filters = filters_from(request, PairwiseResultsFilters)
        run_id = filters.get("run")
        if (
            run_id is not None
            and not CaptionRun.objects.filter(project=project, pk=run_id).exists()
        ):
            raise exceptions.ValidationError({"run": ["No such run in this project."]})
        found = pairwise_results(project=project, run_id=run_id)
        return Response(
            PairwiseResultsSerializer(
                {
                    "routes": found.names,
                    "matrix": found.matrix,
                    "strengths": found.strengths,
                    "judged": found.judged,
                    "open": found.open,
                }
            ).data
        )


# --- dashboards and the side-by-side comparison ---------------------------------------------


class CSVRenderer(BaseRenderer):
    """Lets a client ask for text/csv; the CSV endpoints stream their rows themselves, so this
    only ever writes an error's message."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, dict):
            data = "; ".join(f"{key}: {value}" for key, value in data.items())
        return ("" if data is None else str(data)).encode()


class ScopeFilters(MetricsFilters):
    """The dashboard's filters (the comparison's, minus ``compare``)."""

    compare = None


class SideBySideFilters(ScopeFilters):
    show = serializers.ChoiceField(
        choices=[k for k in IMAGE_FILTERS if k], required=False, help_text="Which shared images."
    )


_SCOPE_PARAMETERS = [
    OpenApiParameter("routes", OpenApiTypes.INT, many=True, explode=True),
    OpenApiParameter("group", OpenApiTypes.STR, enum=["route", "model"]),
]
_CSV = {(200, "text/csv"): OpenApiTypes.STR}


def _scope(request: Request, slug: str, filter_class, *, same_images: bool):
    """The project (if the user may read its metrics) and the page's own filters over it."""
    from review.metrics_views import Filters, metrics_project

    filters_from(request, filter_class)
    project = metrics_project(request._request, slug)
    found = Filters(request._request, project, same_images=same_images)
    if found.scope is None:
        errors = {k: list(v) for k, v in found.form.errors.items()}
        raise exceptions.ValidationError(errors or {"non_field_errors": [found.problem]})
    return project, found


def _plot_or_404(plot: str) -> None:
    from review.dashboards import PLOT_IDS

    if plot not in PLOT_IDS:
        raise exceptions.NotFound("No such plot.")


class PlotSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField()),
        help_text="The plot's table, one list per row in column order (the CSV's rows).",
    )
    note = serializers.CharField(allow_blank=True)


def _plot(request: Request, slug: str, plot: str):
    from review.dashboards import dashboard_plots

    _plot_or_404(plot)
    project, found = _scope(request, slug, ScopeFilters, same_images=False)
    (data,) = dashboard_plots(
        scope=found.scope,
        viewer=request.user,
        names_visible=selectors.can_manage(project=project, user=request.user),
        only=plot,
    )
    return project, data


_PLOT_PATH = OpenApiParameter(
    "plot",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=["rate", "cost", "latency", "spend", "throughput", "risk"],
)


class DashboardPlot(generics.GenericAPIView):
    """One dashboard plot's data (rate, cost, latency, spend, throughput or risk) over the
    dashboard's filters, as the page draws it. Whoever may see the project's metrics."""

    serializer_class = PlotSerializer

    @extend_schema(parameters=[_PLOT_PATH, *_SCOPE_PARAMETERS])
    def get(self, request: Request, slug: str, plot: str) -> Response:
        _, data = _plot(request, slug, plot)
        out = {
            "id": data.id,
            "title": data.title,
            "columns": data.columns,
            "rows": data.rows,
            "note": data.note,
        }
        return Response(PlotSerializer(out).data)


class DashboardPlotCSV(generics.GenericAPIView):
    """The same plot's table as the page's CSV download (cells a spreadsheet would run as a
    formula are quoted)."""

    serializer_class = PlotSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(parameters=[_PLOT_PATH, *_SCOPE_PARAMETERS], responses=_CSV)
    def get(self, request: Request, slug: str, plot: str):
        from review.metrics_views import _csv_response

        project, data = _plot(request, slug, plot)
        return _csv_response(iter([data.columns, *data.rows]), f"{project.slug}-{plot}.csv")


class ComparisonCSV(generics.GenericAPIView):
    """The comparison table (every measure per route over shared, decided images) as the page's
    CSV download; the JSON is /metrics/?compare=true."""

    serializer_class = MetricsSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(parameters=_SCOPE_PARAMETERS, responses=_CSV)
    def get(self, request: Request, slug: str):
        from review.metrics import route_metrics
        from review.metrics_display import table_csv_rows
        from review.metrics_views import _csv_response

        project, found = _scope(request, slug, ScopeFilters, same_images=True)
        table = route_metrics(scope=found.scope)
        return _csv_response(table_csv_rows(table), f"{project.slug}-comparison.csv")


class SideBySideVerdictSerializer(serializers.Serializer):
    decision = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())


class SideBySideCaptionSerializer(serializers.Serializer):
    caption_id = serializers.IntegerField()
    text = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField(help_text='The review item\'s state, or "not queued".')
    approved_text = serializers.CharField(allow_blank=True)
    verdicts = SideBySideVerdictSerializer(many=True, help_text="Oldest first.")
    adjudicated = serializers.CharField(allow_null=True, help_text="The adjudication's decision.")


class SideBySideRowSerializer(serializers.Serializer):
    image_id = serializers.IntegerField()
    file_name = serializers.CharField(allow_blank=True)
    captions = serializers.DictField(
        child=SideBySideCaptionSerializer(many=True),
        help_text="Route name (or model, grouped by model) -> its captions of the image.",
    )


class SideBySidePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = SideBySideRowSerializer(many=True)


def _side_by_side_row(row) -> dict[str, Any]:
    return {
        "image_id": row.image.pk,
        "file_name": row.image.original_name,
        "captions": {
            key: [
                {
                    "caption_id": c.caption.pk,
                    "text": c.caption.text,
                    "outcome": c.item.state if c.item else "not queued",
                    "approved_text": c.item.final_text if c.item else "",
                    "verdicts": [
                        {"decision": v.decision, "reasons": v.reasons} for v in c.verdicts
                    ],
                    "adjudicated": c.adjudication.decision if c.adjudication else None,
                }
                for c in cells
            ]
            for key, cells in row.cells.items()
        },
    }


class SideBySide(generics.GenericAPIView):
    """The comparison's images side by side: every route's captions of each shared image with
    the review outcome, verdicts and approved text, in image id order. Keyset pages: ``next``
    names the last image seen, so pages stay right while images are added."""

    serializer_class = SideBySidePageSerializer

    @extend_schema(
        parameters=[
            *_SCOPE_PARAMETERS,
            OpenApiParameter("show", OpenApiTypes.STR, enum=[k for k in IMAGE_FILTERS if k]),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From the previous `next`."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200 (default 20)."),
        ]
    )
    def get(self, request: Request, slug: str) -> Response:
        from review.metrics import comparison_image_page, comparison_image_rows

        _, found = _scope(request, slug, SideBySideFilters, same_images=True)
        size, after = _keyset(request, default=20, most=200)
        page = comparison_image_page(
            scope=found.scope, show=found.show, after=after, limit=size + 1
        )
        url = None
        if len(page) > size:
            page = page[:size]
            cursor = base64.urlsafe_b64encode(str(page[-1][0]).encode()).decode()
            url = replace_query_param(request.build_absolute_uri(), "cursor", cursor)
        rows = comparison_image_rows(scope=found.scope, page=page) if page else []
        out = {"next": url, "results": [_side_by_side_row(row) for row in rows]}
        return Response(SideBySidePageSerializer(out).data)


def _keyset(request: Request, *, default: int, most: int) -> tuple[int, int]:
    """(page size, last id seen) from ``page_size`` and ``cursor``; nonsense is a 400."""
    params = request.query_params
    try:
        size = int(params.get("page_size", default))
    except ValueError as exc:
        raise exceptions.ValidationError({"page_size": ["A whole number."]}) from exc
    after = 0
    if params.get("cursor"):
        try:
            after = int(base64.urlsafe_b64decode(params["cursor"].encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise exceptions.ValidationError({"cursor": ["Not a cursor from `next`."]}) from exc
        if not 0 <= after <= 2**63 - 1:
            raise exceptions.ValidationError({"cursor": ["Not a cursor from `next`."]})
    return max(1, min(size, most)), after


class SideBySideCSV(generics.GenericAPIView):
    """Every shared image side by side as the page's CSV download (streamed; cells a
    spreadsheet would run as a formula are quoted)."""

    serializer_class = SideBySidePageSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[
            *_SCOPE_PARAMETERS,
            OpenApiParameter("show", OpenApiTypes.STR, enum=[k for k in IMAGE_FILTERS if k]),
        ],
        responses=_CSV,
    )
    def get(self, request: Request, slug: str):
        from review.metrics_views import _column_keys, _csv_response, _image_csv_rows

        project, found = _scope(request, slug, SideBySideFilters, same_images=True)
        return _csv_response(
            _image_csv_rows(found, _column_keys(found)), f"{project.slug}-comparison-images.csv"
        )

"""The review part of the REST API: review items and their verdicts (read), the annotator's
loop (claim the next item, heartbeat, submit a verdict, undo, release) and adjudication.

Verdicts go through review/services/verdict.py with the client's idempotency key, exactly as
the review page posts them: a retried request returns the verdict saved the first time.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.api_common import (
    OldestFirstCursorPagination,
    filters_from,
    model_errors,
    object_or_404,
    project_or_404,
)
from review import selectors
from review.forms import VerdictForm
from review.models import Adjudication, Lease, RejectReason, ReviewItem, SkipReason, Verdict
from review.services import queue
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

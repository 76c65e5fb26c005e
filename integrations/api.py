"""The integrations part of the REST API: your API tokens (the secret shown once) and a
project's webhooks with their delivery log and a test delivery.

Thin: the pages' forms check the input, integrations/services/ does the work (tokens stored
hashed; webhook URLs pass the SSRF checks of URL imports when added and at every delivery).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from integrations import selectors
from integrations.api_common import (
    NoFilters,
    OldestFirstCursorPagination,
    filters_from,
    model_errors,
    object_or_404,
    project_or_404,
)
from integrations.forms import EVENT_CHOICES, TokenForm, WebhookForm
from integrations.models import ApiToken, Webhook, WebhookDelivery
from integrations.services.tokens import TokenError, api_token_create, api_token_revoke
from integrations.services.webhooks import (
    WebhookError,
    webhook_create,
    webhook_delete,
    webhook_set_active,
    webhook_test_send,
)
from labeling.selectors import user_is_admin

# --- tokens ---------------------------------------------------------------------------------


class ApiTokenSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)
    shown_as = serializers.SerializerMethodField(help_text="The token's visible start.")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "username",
            "shown_as",
            "active",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_shown_as(self, token: ApiToken) -> str:
        return f"cdk_{token.prefix}_…"


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    secret = serializers.CharField(
        help_text="The whole token, for 'Authorization: Bearer <secret>'. Shown this once: "
        "only its SHA-256 is stored."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class ApiTokenRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for.")
    username = serializers.CharField(
        max_length=150,
        required=False,
        allow_blank=True,
        help_text="Site admins only: create the token for this user (empty: yourself).",
    )


class ApiTokenFilters(serializers.Serializer):
    active = serializers.BooleanField(required=False, allow_null=True, default=None)


class ApiTokenList(generics.ListCreateAPIView):
    """Your API tokens, newest first (site admins see everyone's, to revoke a leaked one). POST
    creates one: its secret is in that response only, never again."""

    serializer_class = ApiTokenSerializer

    @extend_schema(parameters=[OpenApiParameter("active", OpenApiTypes.BOOL)])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = filters_from(self.request, ApiTokenFilters)
        qs = selectors.api_tokens_visible_to(user=self.request.user)
        if filters.get("active") is not None:
            qs = qs.filter(revoked_at__isnull=filters["active"])
        return qs

    @extend_schema(request=ApiTokenRequestSerializer, responses={201: ApiTokenCreatedSerializer})
    def post(self, request: Request) -> Response:
        ser = ApiTokenRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        is_admin = user_is_admin(request.user)
        if ser.validated_data.get("username") and not is_admin:
            raise exceptions.PermissionDenied("Only site admins create tokens for someone else.")
        form = TokenForm(ser.validated_data, can_choose_user=is_admin)  # the tokens page's form
        if not form.is_valid():
            raise model_errors(form.errors)
        owner = form.cleaned_data.get("username") or request.user
        try:
            created = api_token_create(
                user=owner, name=form.cleaned_data["name"], created_by=request.user
            )
        except TokenError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        token = created.token
        token.secret = created.secret
        response = Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # the secret must not linger in a cache
        return response


class ApiTokenRevoke(generics.GenericAPIView):
    """Revoke a token at once (your own; site admins anyone's). 400 if it already was."""

    serializer_class = ApiTokenSerializer

    @extend_schema(request=None, responses={200: ApiTokenSerializer})
    def post(self, request: Request, pk: int) -> Response:
        token = selectors.api_tokens_visible_to(user=request.user).filter(pk=pk).first()
        if token is None:
            raise exceptions.NotFound("No such token.")
        if not api_token_revoke(token=token, by=request.user):
            raise exceptions.ValidationError(
                {"non_field_errors": ["That token was already revoked."]}
            )
        token.refresh_from_db()
        return Response(ApiTokenSerializer(token).data)


# --- webhooks -------------------------------------------------------------------------------


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Webhook
        fields = ["id", "project_id", "url", "events", "active", "created_at"]
        read_only_fields = fields


class WebhookDetailSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text="Signs every delivery: X-Captiondesk-Signature is the HMAC-SHA256 of "
        "'<timestamp>.<body>' with it."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookRequestSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=1000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1
    )


class WebhookUpdateSerializer(serializers.Serializer):
    active = serializers.BooleanField(help_text="Switch the hook on or off, as its page does.")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "uuid",
            "event",
            "status",
            "attempts",
            "response_code",
            "error",
            "payload",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
        ]
        read_only_fields = fields


class WebhookDeliveryFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)


class WebhookList(generics.ListCreateAPIView):
    """A project's webhooks (project admins). POST registers a URL for some events; it must pass
    the same address checks as URL imports (checked again at every delivery)."""

    serializer_class = WebhookSerializer
    pagination_class = OldestFirstCursorPagination

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters_from(self.request, NoFilters)
        return selectors.webhooks_for_project(project=project)

    @extend_schema(request=WebhookRequestSerializer, responses={201: WebhookDetailSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        ser = WebhookRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        form = WebhookForm(ser.validated_data)  # the webhooks page's form
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            webhook = webhook_create(project=project, created_by=request.user, **form.cleaned_data)
        except WebhookError as exc:
            raise exceptions.ValidationError({"url": [str(exc)]}) from exc
        return Response(WebhookDetailSerializer(webhook).data, status=status.HTTP_201_CREATED)


def _webhook(request: Request, pk: int) -> Webhook:
    return object_or_404(request, Webhook.objects.select_related("project"), pk=pk, admin=True)


class WebhookDetail(generics.GenericAPIView):
    """A webhook with its signing secret (project admins); PATCH switches it on or off."""

    serializer_class = WebhookDetailSerializer

    def get(self, request: Request, pk: int) -> Response:
        return Response(WebhookDetailSerializer(_webhook(request, pk)).data)

    @extend_schema(request=WebhookUpdateSerializer, responses={200: WebhookDetailSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        webhook = _webhook(request, pk)
        ser = WebhookUpdateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        webhook_set_active(webhook=webhook, active=ser.validated_data["active"])
        return Response(WebhookDetailSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        webhook_delete(webhook=_webhook(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveries(generics.ListAPIView):
    """The hook's delivery log, newest first: status, attempts, the last response code."""

    serializer_class = WebhookDeliverySerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=WebhookDelivery.Status.values)
        ]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        webhook = _webhook(self.request, self.kwargs["pk"])
        filters = filters_from(self.request, WebhookDeliveryFilters)
        qs = selectors.webhook_deliveries(webhook=webhook)
        if filters.get("status"):
            qs = qs.filter(status=filters["status"])
        return qs


class WebhookTest(generics.GenericAPIView):
    """Queue one test delivery to the hook (the page's "Send test"); poll the delivery log."""

    serializer_class = WebhookDeliverySerializer

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def post(self, request: Request, pk: int) -> Response:
        delivery = webhook_test_send(webhook=_webhook(request, pk), by=request.user)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

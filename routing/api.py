"""The routing part of the REST API: routes, captioning runs (estimate, launch, progress, pause,
resume, cancel, retry), captions with their call log.

Thin: the run and route input goes through the pages' own forms (RunForm, RouteForm), so the API
and the pages accept exactly the same requests; writes go through routing/services/runs.py.
"""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from redis.exceptions import RedisError
from rest_framework import exceptions, generics, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.api_common import (
    NoFilters,
    OldestFirstCursorPagination,
    filters_from,
    model_errors,
    object_or_404,
    project_or_404,
)
from labeling.models import Image, RiskCategory
from labeling.selectors import user_is_admin
from routing import selectors
from routing.forms import (
    MAX_FALLBACKS,
    BudgetForm,
    ChainForm,
    ChainRuleForm,
    RouteForm,
    RouteTestForm,
    RunForm,
)
from routing.models import Caption, CaptionRun, Chain, ChainRule, ModelCall, Route, RouteTest
from routing.services import route_tests
from routing.services.breaker import breaker_reset, breaker_state
from routing.services.chains import (
    ChainError,
    chain_delete,
    chain_rule_add,
    chain_rule_delete,
    chain_save,
)
from routing.services.routes import RouteInUse, route_delete, route_set_enabled
from routing.services.runs import (
    ImageSelection,
    RunError,
    caption_retry,
    caption_stop,
    images_select,
    run_cancel,
    run_launch,
    run_pause,
    run_plan,
    run_resume,
    run_retry_failed,
    run_set_budget,
)

# --- serializers ----------------------------------------------------------------------------

PRICE_FIELDS = [
    "usd_per_call",
    "usd_per_second",
    "gpu_hour_usd",
    "usd_per_1k_input_tokens",
    "usd_per_1k_output_tokens",
]


class RouteLastCallSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelCall
        fields = ["status", "started_at", "latency_ms", "error"]
        read_only_fields = fields


class RouteSerializer(serializers.ModelSerializer):
    base_url = serializers.CharField(
        read_only=True, help_text="Empty: the provider's base URL from the environment."
    )
    usable = serializers.SerializerMethodField(
        help_text="Whether the route can be used now (enabled, its key or server configured)."
    )
    usable_detail = serializers.SerializerMethodField(
        help_text="What the routes page says: what is set, or what to configure."
    )
    breaker = serializers.SerializerMethodField(
        help_text="The route's circuit breaker, as the routes page shows it: closed, open, "
        "half_open, or unknown while Redis cannot be reached."
    )
    last_call = serializers.SerializerMethodField(
        help_text="The route's latest call (captions and route tests; cache hits left out), "
        "or null if it was never called."
    )

    class Meta:
        model = Route
        fields = [
            "id",
            "name",
            "provider",
            "model",
            "params",
            "config",
            "base_url",
            "timeout_s",
            "max_attempts",
            "enabled",
            *PRICE_FIELDS,
            "expected_seconds",
            "usable",
            "usable_detail",
            "breaker",
            "last_call",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_usable(self, route: Route) -> bool:
        return selectors.route_usability(route)[0]

    def get_usable_detail(self, route: Route) -> str:
        return selectors.route_usability(route)[1]

    @extend_schema_field(
        serializers.ChoiceField(choices=["closed", "open", "half_open", "unknown"])
    )
    def get_breaker(self, route: Route) -> str:
        try:
            return breaker_state(route_id=route.pk).status
        except RedisError:
            return "unknown"

    @extend_schema_field(RouteLastCallSerializer(allow_null=True))
    def get_last_call(self, route: Route) -> dict[str, Any] | None:
        call = (
            ModelCall.objects.filter(route=route)
            .exclude(status=ModelCall.Status.CACHED)
            .order_by("-started_at")
            .only("status", "started_at", "latency_ms", "error")
            .first()
        )
        return None if call is None else RouteLastCallSerializer(call).data


class RouteWriteSerializer(serializers.Serializer):
    """What a route accepts; ``base_url`` only from site admins (as on the routes page)."""

    name = serializers.SlugField(max_length=100)
    provider = serializers.ChoiceField(choices=Route.Provider.choices)
    model = serializers.CharField(max_length=200)
    params = serializers.DictField(required=False)
    config = serializers.DictField(required=False)
    base_url = serializers.URLField(required=False, allow_blank=True)
    timeout_s = serializers.FloatField(required=False)
    max_attempts = serializers.IntegerField(required=False)
    enabled = serializers.BooleanField(required=False)
    usd_per_call = serializers.DecimalField(14, 8, required=False, allow_null=True)
    usd_per_second = serializers.DecimalField(14, 8, required=False, allow_null=True)
    gpu_hour_usd = serializers.DecimalField(14, 8, required=False, allow_null=True)
    usd_per_1k_input_tokens = serializers.DecimalField(14, 8, required=False, allow_null=True)
    usd_per_1k_output_tokens = serializers.DecimalField(14, 8, required=False, allow_null=True)
    expected_seconds = serializers.FloatField(required=False)


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    calls_in_flight = serializers.IntegerField()
    cached = serializers.IntegerField()
    percent = serializers.IntegerField()


class RunSerializer(serializers.ModelSerializer):
    route_ids = serializers.PrimaryKeyRelatedField(source="routes", many=True, read_only=True)

    class Meta:
        model = CaptionRun
        fields = [
            "id",
            "project_id",
            "kind",
            "status",
            "chain_id",
            "apply_rules",
            "route_ids",
            "task",
            "prompt",
            "params",
            "use_cache",
            "selection",
            "selection_detail",
            "image_count",
            "caption_count",
            "skipped",
            "budget_usd",
            "estimated_usd",
            "spent_usd",
            "reserved_usd",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    progress = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "progress"]
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, run: CaptionRun) -> dict[str, Any]:
        progress = selectors.run_progress(run=run)
        return ProgressSerializer(progress).data


class RunRequestSerializer(serializers.Serializer):
    """A run as the run page asks for it: a chain, or routes side by side, over some images."""

    kind = serializers.ChoiceField(choices=CaptionRun.Kind.choices)
    chain = serializers.IntegerField(required=False, allow_null=True, help_text="Chain id.")
    routes = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Route ids (comparison)."
    )
    apply_rules = serializers.BooleanField(required=False, default=True)
    selection = serializers.ChoiceField(choices=CaptionRun.Selection.choices, default="all")
    status = serializers.ChoiceField(
        choices=[("", "Any"), *Image.Status.choices], required=False, default=""
    )
    risk = serializers.ChoiceField(
        choices=[("", "Any"), ("flagged", "Flagged"), ("unflagged", "Not flagged")]
        + list(RiskCategory.choices),
        required=False,
        default="",
    )
    sample_size = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    seed = serializers.IntegerField(required=False, allow_null=True)
    prompt = serializers.CharField(required=False, allow_blank=True, default="")
    params = serializers.DictField(required=False)
    json_schema = serializers.DictField(required=False, allow_null=True)
    budget_usd = serializers.DecimalField(14, 6, required=False, allow_null=True)
    use_cache = serializers.BooleanField(required=False, default=True)


class EstimateLineSerializer(serializers.Serializer):
    route = serializers.CharField(source="route.name")
    calls = serializers.IntegerField()
    per_call_usd = serializers.DecimalField(14, 8, source="per_call", allow_null=True)
    total_usd = serializers.DecimalField(14, 8, source="total", allow_null=True)
    price_source = serializers.CharField(source="source")


class EstimateSerializer(serializers.Serializer):
    image_count = serializers.IntegerField()
    new_requests = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Requests that already have a live caption.")
    total_usd = serializers.DecimalField(14, 8, source="total", allow_null=True)
    worst_case_usd = serializers.DecimalField(14, 8, source="worst_case", allow_null=True)
    unknown_price_routes = serializers.ListField(child=serializers.CharField())
    lines = EstimateLineSerializer(many=True)


class BudgetSerializer(serializers.Serializer):
    budget_usd = serializers.DecimalField(14, 6, allow_null=True)


class CaptionSerializer(serializers.ModelSerializer):
    route = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Caption
        fields = [
            "id",
            "image_id",
            "run_id",
            "chain_id",
            "route",
            "origin",
            "model_name",
            "task",
            "prompt",
            "params",
            "status",
            "text",
            "error",
            "cost_usd",
            "latency_ms",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class CallSerializer(serializers.ModelSerializer):
    route = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ModelCall
        fields = [
            "id",
            "attempt",
            "route",
            "route_attempt",
            "trigger",
            "status",
            "error_class",
            "error",
            "http_status",
            "started_at",
            "finished_at",
            "latency_ms",
            "timeout_s",
            "cost_usd",
            "cost_source",
            "served_model",
            "text",
            "usage",
        ]
        read_only_fields = fields


class CaptionDetailSerializer(CaptionSerializer):
    calls = CallSerializer(many=True, read_only=True, source="call_log")

    class Meta(CaptionSerializer.Meta):
        fields = [*CaptionSerializer.Meta.fields, "calls"]
        read_only_fields = fields


class CaptionFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Caption.Status.choices, required=False)


# --- routes ---------------------------------------------------------------------------------


def _route_form(request: Request, data: dict[str, Any], route: Route | None) -> RouteForm:
    """The routes page's form, fed the JSON body (its JSON fields take text)."""
    _routes_admin(request)
    ser = RouteWriteSerializer(data=data, partial=route is not None)
    ser.is_valid(raise_exception=True)
    allow_base_url = user_is_admin(request.user)
    if "base_url" in ser.validated_data and not allow_base_url:
        raise exceptions.PermissionDenied("Only site admins point a route at another host.")
    current = RouteForm(instance=route, allow_base_url=allow_base_url).initial if route else {}
    merged: dict[str, Any] = {**current, **ser.validated_data}
    for key in ("params", "config"):
        merged[key] = json.dumps(merged.get(key) or {})
    merged = {k: ("" if v is None else v) for k, v in merged.items()}
    if not merged.get("enabled", True):
        merged.pop("enabled", None)  # an unchecked box is an absent one
    elif route is None and "enabled" not in ser.validated_data:
        merged["enabled"] = True
    form = RouteForm(merged, instance=route, allow_base_url=allow_base_url)
    if not form.is_valid():
        raise model_errors(form.errors)
    return form


def _routes_reader(request: Request) -> None:
    """Reading the routes is the routes page's: admins of some project (to build their chains
    from the routes' ids) and site admins; annotators review blind, so they do not list them."""
    if not selectors.can_view_routes(user=request.user):
        raise exceptions.PermissionDenied("Only admins see the routes.")


def _routes_admin(request: Request) -> None:
    """Changing a route is for site admins only: routes are shared by every project."""
    if not selectors.can_manage_routes(user=request.user):
        raise exceptions.PermissionDenied(
            "Routes are shared by every project: only site admins change them."
        )


class RouteList(generics.ListCreateAPIView):
    """Model routes (shared by every project), for admins of a project or the site."""

    serializer_class = RouteSerializer
    pagination_class = OldestFirstCursorPagination

    def get_queryset(self):
        _routes_reader(self.request)
        filters_from(self.request, NoFilters)
        return Route.objects.all()

    @extend_schema(request=RouteWriteSerializer, responses={201: RouteSerializer})
    def post(self, request: Request) -> Response:
        route = _route_form(request, request.data, None).save()
        return Response(RouteSerializer(route).data, status=status.HTTP_201_CREATED)


class RouteInUseSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why the route cannot be deleted.")


class RouteDetail(generics.GenericAPIView):
    serializer_class = RouteSerializer

    def get(self, request: Request, pk: int) -> Response:
        _routes_reader(request)
        route = Route.objects.filter(pk=pk).first()
        if route is None:
            raise exceptions.NotFound("No such route.")
        return Response(RouteSerializer(route).data)

    @extend_schema(request=RouteWriteSerializer, responses={200: RouteSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        route = Route.objects.filter(pk=pk).first()
        if route is None:
            raise exceptions.NotFound("No such route.")
        route = _route_form(request, request.data, route).save()
        return Response(RouteSerializer(route).data)

    @extend_schema(responses={204: None, 409: RouteInUseSerializer})
    def delete(self, request: Request, pk: int) -> Response:
        """Delete a route nobody used (no captions, no call log, in no chain); a used one answers
        409 with the reason, as the routes page refuses: disable it instead."""
        route = _route_for_admin(request, pk)
        try:
            route_delete(route=route)
        except RouteInUse as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _route_for_admin(request: Request, pk: int) -> Route:
    _routes_admin(request)
    route = Route.objects.filter(pk=pk).first()
    if route is None:
        raise exceptions.NotFound("No such route.")
    return route


class _RouteEnabled(generics.GenericAPIView):
    serializer_class = RouteSerializer
    enabled: bool

    @extend_schema(request=None, responses={200: RouteSerializer})
    def post(self, request: Request, pk: int) -> Response:
        route = _route_for_admin(request, pk)
        route_set_enabled(route=route, enabled=self.enabled)
        return Response(RouteSerializer(route).data)


class RouteEnable(_RouteEnabled):
    """Enable a route: chains use it again and runs can choose it (site admins)."""

    enabled = True


class RouteDisable(_RouteEnabled):
    """Disable a route: every chain skips it (its fallbacks answer) and no run can choose it
    (site admins). A used route cannot be deleted; disable it."""

    enabled = False


# --- runs -----------------------------------------------------------------------------------


def _run_form(request: Request, project) -> RunForm:
    ser = RunRequestSerializer(data=request.data)
    ser.is_valid(raise_exception=True)
    data = dict(ser.validated_data)
    data["params"] = json.dumps(data.get("params") or {})
    data["json_schema"] = json.dumps(data["json_schema"]) if data.get("json_schema") else ""
    data["routes"] = data.get("routes") or []
    form_data = {k: ("" if v is None else v) for k, v in data.items()}
    for flag in ("apply_rules", "use_cache"):
        if not form_data.get(flag):
            form_data.pop(flag, None)
    form = RunForm(form_data, project=project)
    if not form.is_valid():
        raise model_errors(form.errors)
    return form


def _run_options(project, data: dict[str, Any]) -> dict[str, Any]:
    is_chain = data["kind"] == CaptionRun.Kind.CHAIN
    return {
        "kind": data["kind"],
        "chain": data["chain"] if is_chain else None,
        "routes": list(data["routes"]) if not is_chain else [],
        "apply_rules": data["apply_rules"],
        "task": project.task_type,
        "prompt": data["prompt"],
        "params": data["params"],
        "json_schema": data["json_schema"],
    }


def _selection(data: dict[str, Any]) -> ImageSelection:
    return ImageSelection(
        mode=data["selection"],
        status=data.get("status") or "",
        risk=data.get("risk") or "",
        size=data.get("sample_size"),
        seed=data.get("seed"),
    )


class RunList(generics.ListCreateAPIView):
    """A project's captioning runs (project admins), newest first; POST launches one."""

    serializer_class = RunSerializer

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters_from(self.request, NoFilters)
        return selectors.runs_for_project(project=project).prefetch_related("routes")

    @extend_schema(request=RunRequestSerializer, responses={201: RunDetailSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        data = _run_form(request, project).cleaned_data
        try:
            run = run_launch(
                project=project,
                user=request.user,
                selection=_selection(data),
                budget_usd=data["budget_usd"],
                use_cache=data["use_cache"],
                **_run_options(project, data),
            )
        except RunError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(RunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


class RunEstimate(generics.GenericAPIView):
    """What a run would ask and cost, without starting it (same input as launching)."""

    serializer_class = EstimateSerializer

    @extend_schema(request=RunRequestSerializer, responses={200: EstimateSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        data = _run_form(request, project).cleaned_data
        try:
            image_ids = images_select(project=project, selection=_selection(data))
            plan = run_plan(project=project, image_ids=image_ids, **_run_options(project, data))
        except RunError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(EstimateSerializer(plan).data)


def _run(request: Request, pk: int) -> CaptionRun:
    return object_or_404(
        request, CaptionRun.objects.select_related("project", "chain"), pk=pk, admin=True
    )


class RunDetail(generics.GenericAPIView):
    """A run with its live progress (poll it)."""

    serializer_class = RunDetailSerializer

    def get(self, request: Request, pk: int) -> Response:
        return Response(RunDetailSerializer(_run(request, pk)).data)


class _RunAction(generics.GenericAPIView):
    serializer_class = RunDetailSerializer

    def act(self, run: CaptionRun, request: Request) -> None:
        raise NotImplementedError

    @extend_schema(request=None, responses={200: RunDetailSerializer})
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        try:
            self.act(run, request)
        except RunError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        run.refresh_from_db()
        return Response(RunDetailSerializer(run).data)


class RunPause(_RunAction):
    """Stop starting new calls; calls in flight finish."""

    def act(self, run: CaptionRun, request: Request) -> None:
        if not run_pause(run=run):
            raise RunError("Only a running run can be paused.")


class RunResume(_RunAction):
    def act(self, run: CaptionRun, request: Request) -> None:
        run_resume(run=run)


class RunCancel(_RunAction):
    """Pending captions are cancelled; calls in flight finish."""

    def act(self, run: CaptionRun, request: Request) -> None:
        run_cancel(run=run)


class RunRetryFailed(_RunAction):
    def act(self, run: CaptionRun, request: Request) -> None:
        run_retry_failed(run=run)


class RunBudget(generics.GenericAPIView):
    """Change (or remove, with null) the run's budget cap."""

    serializer_class = RunDetailSerializer

    @extend_schema(request=BudgetSerializer, responses={200: RunDetailSerializer})
    def put(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        ser = BudgetSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        budget = ser.validated_data["budget_usd"]
        form = BudgetForm({"budget_usd": "" if budget is None else budget})
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            run_set_budget(run=run, budget_usd=form.cleaned_data["budget_usd"])
        except RunError as exc:
            raise exceptions.ValidationError({"budget_usd": [str(exc)]}) from exc
        run.refresh_from_db()
        return Response(RunDetailSerializer(run).data)


class RunCaptions(generics.ListAPIView):
    serializer_class = CaptionSerializer
    pagination_class = OldestFirstCursorPagination

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=Caption.Status.values)]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        run = _run(self.request, self.kwargs["pk"])
        filters = filters_from(self.request, CaptionFilters)
        return selectors.run_captions(run=run, status=filters.get("status", ""))


def _caption(request: Request, pk: int) -> Caption:
    return object_or_404(
        request,
        Caption.objects.select_related("image__project", "route", "run"),
        pk=pk,
        project_of=lambda c: c.image.project,
        admin=True,
    )


class CaptionDetail(generics.GenericAPIView):
    """A caption with its call log: one row per attempt (route, status, latency, cost)."""

    serializer_class = CaptionDetailSerializer

    def get(self, request: Request, pk: int) -> Response:
        caption = _caption(request, pk)
        caption.call_log = list(selectors.caption_calls(caption=caption)[:200])
        return Response(CaptionDetailSerializer(caption).data)


class CaptionRetry(generics.GenericAPIView):
    serializer_class = CaptionSerializer

    @extend_schema(request=None, responses={200: CaptionSerializer})
    def post(self, request: Request, pk: int) -> Response:
        caption = _caption(request, pk)
        try:
            caption_retry(caption=caption)
        except RunError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        caption.refresh_from_db()
        return Response(CaptionSerializer(caption).data)


# --- chains ---------------------------------------------------------------------------------


class ChainSerializer(serializers.ModelSerializer):
    routes = serializers.SerializerMethodField(
        help_text="Route names: the primary, then fallbacks."
    )

    class Meta:
        model = Chain
        fields = ["id", "project_id", "name", "is_default", "deadline_s", "routes", "created_at"]
        read_only_fields = fields

    def get_routes(self, chain: Chain) -> list[str]:
        return [step.route.name for step in chain.steps.all()]


class ChainRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    routes = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=1 + MAX_FALLBACKS,
        help_text="Route ids: the primary first, then the fallbacks in order.",
    )
    deadline_s = serializers.FloatField(default=120.0)
    is_default = serializers.BooleanField(default=False)


class ChainList(generics.ListCreateAPIView):
    """A project's fallback chains (project admins); POST creates one, as the chains page does."""

    serializer_class = ChainSerializer
    pagination_class = OldestFirstCursorPagination

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters_from(self.request, NoFilters)
        return selectors.chains_for_project(project=project)

    @extend_schema(request=ChainRequestSerializer, responses={201: ChainSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        chain = _chain_save(request, project, None)
        return Response(ChainSerializer(chain).data, status=status.HTTP_201_CREATED)


def _chain_save(request: Request, project, chain: Chain | None) -> Chain:
    """The chains page's form and service, fed the JSON body (routes: primary, then fallbacks)."""
    ser = ChainRequestSerializer(data=request.data)
    ser.is_valid(raise_exception=True)
    data = ser.validated_data
    form_data: dict[str, Any] = {"name": data["name"], "deadline_s": data["deadline_s"]}
    if data["is_default"]:
        form_data["is_default"] = "on"
    form_data["primary"] = data["routes"][0]
    for i, route_id in enumerate(data["routes"][1:], start=1):
        form_data[f"fallback_{i}"] = route_id
    form = ChainForm(form_data, chain=chain)
    if not form.is_valid():
        raise model_errors(form.errors)
    try:
        saved = chain_save(
            project=project,
            chain=chain,
            name=form.cleaned_data["name"],
            routes=form.routes(),
            deadline_s=form.cleaned_data["deadline_s"],
            is_default=form.cleaned_data["is_default"],
        )
    except ChainError as exc:
        raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
    return selectors.chains_for_project(project=project).get(pk=saved.pk)


class ChainDetail(generics.GenericAPIView):
    serializer_class = ChainSerializer

    def _chain(self, request: Request, pk: int) -> Chain:
        return object_or_404(request, Chain.objects.select_related("project"), pk=pk, admin=True)

    def get(self, request: Request, pk: int) -> Response:
        chain = self._chain(request, pk)
        return Response(ChainSerializer(chain).data)

    @extend_schema(request=ChainRequestSerializer, responses={200: ChainSerializer})
    def put(self, request: Request, pk: int) -> Response:
        """Change a chain as the chains page's edit does: the whole chain is sent (name,
        routes in order, deadline, default)."""
        chain = self._chain(request, pk)
        return Response(ChainSerializer(_chain_save(request, chain.project, chain)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        chain_delete(chain=self._chain(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CaptionStop(generics.GenericAPIView):
    """Fail a pending or stuck caption now (then it can be retried), as the caption page does."""

    serializer_class = CaptionSerializer

    @extend_schema(request=None, responses={200: CaptionSerializer})
    def post(self, request: Request, pk: int) -> Response:
        caption = _caption(request, pk)
        try:
            caption_stop(caption=caption, by=request.user)
        except RunError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        caption.refresh_from_db()
        return Response(CaptionSerializer(caption).data)


# --- chain rules ----------------------------------------------------------------------------


class ChainRuleSerializer(serializers.ModelSerializer):
    chain = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ChainRule
        fields = [
            "id",
            "project_id",
            "position",
            "category",
            "min_score",
            "chain_id",
            "chain",
            "enabled",
            "created_at",
        ]
        read_only_fields = fields


class ChainRuleRequestSerializer(serializers.Serializer):
    chain = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="A chain of this project, by id."
    )
    category = serializers.ChoiceField(
        choices=[("", "Any flagged risk"), *RiskCategory.choices],
        required=False,
        default="",
        help_text="Empty: any flagged risk.",
    )
    min_score = serializers.FloatField(default=0.0, help_text="0 to 1.")


class ChainRuleList(generics.ListCreateAPIView):
    """A project's chain rules in the order they are tried (project admins): an image flagged
    with the rule's risk at or above its score goes to the rule's chain. POST adds one at the
    end, through the chains page's form."""

    serializer_class = ChainRuleSerializer
    pagination_class = OldestFirstCursorPagination

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters_from(self.request, NoFilters)
        return selectors.rules_for_project(project=project)

    @extend_schema(request=ChainRuleRequestSerializer, responses={201: ChainRuleSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        ser = ChainRuleRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        form = ChainRuleForm(ser.validated_data, project=project)
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            rule = chain_rule_add(project=project, **form.cleaned_data)
        except ChainError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(ChainRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class ChainRuleDetail(generics.GenericAPIView):
    serializer_class = ChainRuleSerializer

    def _rule(self, request: Request, pk: int) -> ChainRule:
        return object_or_404(
            request, ChainRule.objects.select_related("project", "chain"), pk=pk, admin=True
        )

    def get(self, request: Request, pk: int) -> Response:
        return Response(ChainRuleSerializer(self._rule(request, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        chain_rule_delete(rule=self._rule(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- circuit breakers -----------------------------------------------------------------------


class BreakerSerializer(serializers.Serializer):
    route_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    consecutive_failures = serializers.IntegerField()


class RouteBreakerReset(generics.GenericAPIView):
    """Close a route's circuit breaker by hand (the vendor is back). Routes are shared by every
    project, so only site admins reset them, as on the routes page."""

    serializer_class = BreakerSerializer

    @extend_schema(request=None, responses={200: BreakerSerializer})
    def post(self, request: Request, pk: int) -> Response:
        if not selectors.can_manage_routes(user=request.user):
            raise exceptions.PermissionDenied(
                "Routes are shared by every project: only site admins change them."
            )
        route = Route.objects.filter(pk=pk).first()
        if route is None:
            raise exceptions.NotFound("No such route.")
        breaker_reset(route_id=route.pk)
        state = breaker_state(route_id=route.pk)
        out = {
            "route_id": route.pk,
            "status": state.status,
            "consecutive_failures": state.consecutive_failures,
        }
        return Response(BreakerSerializer(out).data)


# --- route tests ----------------------------------------------------------------------------


class RouteTestSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    queue = serializers.SerializerMethodField(help_text="The worker queue that runs the test.")

    class Meta:
        model = RouteTest
        fields = [
            "id",
            "route_id",
            "status",
            "image_name",
            "text",
            "served_model",
            "error_class",
            "error",
            "latency_ms",
            "cost_usd",
            "queue",
            "created_by",
            "created_at",
            "claimed_at",
            "finished_at",
            "lease_until",
        ]
        read_only_fields = fields

    def get_queue(self, test: RouteTest) -> str:
        return route_tests.route_test_queue(test.route)


class RouteTestRequestSerializer(serializers.Serializer):
    """What the route test page asks: a bundled sample by name, or an uploaded image (multipart),
    which wins when both are sent."""

    sample = serializers.CharField(
        required=False, help_text="A bundled sample image, e.g. coffee.jpg."
    )
    image = serializers.FileField(required=False, help_text="Your own image (multipart).")


class RouteTestConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "busy"


def _route_for_tests(request: Request, pk: int) -> Route:
    """Testing a route calls the vendor and costs money: site admins only, as on the page."""
    if not selectors.can_manage_routes(user=request.user):
        raise exceptions.PermissionDenied("Only site admins test routes.")
    route = Route.objects.filter(pk=pk).first()
    if route is None:
        raise exceptions.NotFound("No such route.")
    return route


class RouteTestList(generics.ListCreateAPIView):
    """A route's tests, newest first; POST starts one (one call of the route on one image, run by
    a worker of the route's queue; poll ``/api/route-tests/<id>/`` for the answer)."""

    serializer_class = RouteTestSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        route = _route_for_tests(self.request, self.kwargs["pk"])
        filters_from(self.request, NoFilters)
        route_tests.route_tests_expire(route_id=route.pk)
        return RouteTest.objects.filter(route=route).select_related("route", "created_by")

    @extend_schema(request=RouteTestRequestSerializer, responses={202: RouteTestSerializer})
    def post(self, request: Request, pk: int) -> Response:
        route = _route_for_tests(request, pk)
        # The page's own form: the API accepts exactly the samples and files the page does.
        form = RouteTestForm(
            {"sample": request.data.get("sample") or ""},
            request.FILES or None,
            samples=route_tests.samples_available(),
            default=route_tests.DEFAULT_SAMPLE,
        )
        if not form.is_valid():
            raise model_errors(form.errors)
        upload = form.cleaned_data.get("image")
        image = (
            route_tests.RouteTestImage(name=upload.name or "upload", data=upload.read())
            if upload
            else route_tests.RouteTestImage(name=form.cleaned_data["sample"])
        )
        try:
            test = route_tests.route_test_start(route=route, user=request.user, image=image)
        except route_tests.RouteTestBusy as exc:
            raise RouteTestConflict(str(exc)) from exc
        except route_tests.RouteTestError as exc:
            raise exceptions.ValidationError({"image": [str(exc)]}) from exc
        return Response(RouteTestSerializer(test).data, status=status.HTTP_202_ACCEPTED)


class RouteTestDetail(generics.GenericAPIView):
    """One route test: poll it until ``status`` is ``succeeded`` or ``failed``."""

    serializer_class = RouteTestSerializer

    def get(self, request: Request, pk: int) -> Response:
        if not selectors.can_manage_routes(user=request.user):
            raise exceptions.PermissionDenied("Only site admins test routes.")
        test = RouteTest.objects.select_related("route", "created_by").filter(pk=pk).first()
        if test is None:
            raise exceptions.NotFound("No such route test.")
        if test.is_live:
            route_tests.route_tests_expire(route_id=test.route_id)
            test.refresh_from_db()
        return Response(RouteTestSerializer(test).data)

"""The model comparison: a table of every measure per route with intervals, the per-image side by
side view, and CSV downloads of both. Thin: parse the filters, call the selectors, render.

Admins of a project always see these pages; annotators only where the review policy opens them;
anybody else gets a 404, as for every page of a project they are not in.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from labeling.models import Project
from review import selectors
from review.dashboards import PLOT_IDS, dashboard_plots
from review.forms import MetricFilterForm
from review.metrics import (
    IMAGE_FILTERS,
    Scope,
    comparison_image_count,
    comparison_image_page,
    comparison_image_rows,
    comparison_min_images,
    metrics_supported,
    reviewer_hourly_usd,
    route_metrics,
)
from review.metrics_display import table_csv_rows, table_lines
from review.models import MetricRollupState
from review.rollups import rollup_where
from routing.models import Caption, CaptionRun, Route

IMAGES_PER_PAGE = 20
CSV_BATCH = 200


def metrics_project(request: HttpRequest, slug: str) -> Project:
    """The project if the user may read its metrics: 404 for non-members, 403 for annotators of
    a project that keeps them to admins."""
    project = get_object_or_404(Project, slug=slug)
    if not selectors.can_review(project=project, user=request.user):
        raise Http404("No such project.")
    if not selectors.can_see_metrics(project=project, user=request.user):
        raise PermissionDenied("This project shows its comparison and dashboards to admins only.")
    return project


def postgres_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The metric pages run SQL for PostgreSQL and SQLite: on another backend they say so."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not metrics_supported():
            return render(request, "review/needs_postgres.html", status=501)
        return view(request, *args, **kwargs)

    return wrapped


def project_routes(project: Project) -> QuerySet[Route]:
    """Routes the project has used: in its runs or its chains."""
    return (
        Route.objects.filter(Q(runs__project=project) | Q(chains__project=project))
        .distinct()
        .order_by("name")
    )


def run_routes(run: CaptionRun) -> list[Route]:
    if run.kind == CaptionRun.Kind.COMPARISON:
        return list(run.routes.order_by("name"))
    served = Caption.objects.filter(run=run, route__isnull=False).values("route")
    return list(Route.objects.filter(pk__in=served).order_by("name"))


class Filters:
    """The filter form and the scope it describes (``problem`` says why there is none)."""

    def __init__(self, request: HttpRequest, project: Project, *, same_images: bool) -> None:
        self.project = project
        self.form = MetricFilterForm(
            request.GET or None,
            runs=CaptionRun.objects.filter(project=project).order_by("-id"),
            routes=project_routes(project),
            reviewers=selectors.project_reviewers(project=project),
            image_filters=IMAGE_FILTERS,
        )
        self.problem = ""
        self.scope: Scope | None = None
        self.routes: list[Route] = []
        data: dict[str, Any] = {}
        if self.form.is_bound and not self.form.is_valid():
            self.problem = "Some filters are not valid: see below."
        elif self.form.is_bound:
            data = self.form.cleaned_data
        self.run: CaptionRun | None = data.get("run")
        self.routes = list(data.get("routes") or [])
        picked = bool(self.routes)
        if not self.routes:
            self.routes = (
                run_routes(self.run) if self.run else list(self.form.fields["routes"].queryset)
            )
        self.show = data.get("show") or ""
        # A fair comparison has one prompt: a run has one; across runs, the project's current
        # one. Dashboards show every output.
        self.prompt = project.caption_prompt if same_images and not self.run else None
        if same_images and len(self.routes) < 2:
            self.problem = self.problem or "Pick at least two routes to compare."
        if self.problem:
            return
        self.scope = Scope(
            project=project,
            run_id=self.run.pk if self.run else None,
            # A comparison needs its routes; a dashboard without picked routes shows every one.
            route_ids=tuple(r.pk for r in self.routes) if same_images or picked else (),
            prompt=self.prompt,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            risk_category=data.get("risk") or "",
            reviewer_id=data["reviewer"].pk if data.get("reviewer") else None,
            group_by=data.get("group") or "route",
            same_images=same_images,
        )

    def query(self, request: HttpRequest, *, without: Sequence[str] = ("page",)) -> str:
        query = request.GET.copy()
        for name in without:
            query.pop(name, None)
        return query.urlencode()


@login_required
@postgres_only
@require_GET
def compare(request: HttpRequest, slug: str) -> HttpResponse:
    project = metrics_project(request, slug)
    filters = Filters(request, project, same_images=True)
    context: dict[str, Any] = {
        "project": project,
        "filters": filters,
        "form": filters.form,
        "query": filters.query(request),
        "min_images": comparison_min_images(),
        "reviewer_rate": reviewer_hourly_usd(),
        "is_admin": selectors.can_manage(project=project, user=request.user),
    }
    if filters.scope is not None:
        table = route_metrics(scope=filters.scope)
        context.update(
            table=table,
            lines=table_lines(table),
            enough=table.images >= comparison_min_images(),
        )
    return render(request, "review/compare.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_safe(value: Any) -> str:
    """Text a spreadsheet would run as a formula is quoted (model output is untrusted)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_response(rows: Iterator[list[Any]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([_csv_safe(v) for v in row]) for row in rows),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@postgres_only
@require_GET
def compare_csv(request: HttpRequest, slug: str) -> HttpResponse:
    project = metrics_project(request, slug)
    filters = Filters(request, project, same_images=True)
    if filters.scope is None:
        return HttpResponse(filters.problem, status=400, content_type="text/plain")
    table = route_metrics(scope=filters.scope)
    return _csv_response(table_csv_rows(table), f"{project.slug}-comparison.csv")


class _LazyImages:
    """What the paginator pages through: counts and slices run in SQL."""

    def __init__(self, scope: Scope, show: str) -> None:
        self.scope, self.show = scope, show

    def count(self) -> int:
        return comparison_image_count(scope=self.scope, show=self.show)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, bounds: slice) -> list[tuple[int, list[int]]]:
        start, stop = bounds.start or 0, bounds.stop
        return comparison_image_page(
            scope=self.scope, show=self.show, offset=start, limit=stop - start
        )


def _column_keys(filters: Filters) -> list[str]:
    keys = [r.name if filters.scope.group_by == "route" else r.model for r in filters.routes]
    return list(dict.fromkeys(keys))


@login_required
@postgres_only
@require_GET
def compare_images(request: HttpRequest, slug: str) -> HttpResponse:
    project = metrics_project(request, slug)
    filters = Filters(request, project, same_images=True)
    context: dict[str, Any] = {
        "project": project,
        "filters": filters,
        "form": filters.form,
        "query": filters.query(request),
        "is_admin": selectors.can_manage(project=project, user=request.user),
    }
    if filters.scope is not None:
        page = Paginator(_LazyImages(filters.scope, filters.show), IMAGES_PER_PAGE).get_page(
            request.GET.get("page")
        )
        rows = comparison_image_rows(scope=filters.scope, page=list(page.object_list))
        keys = _column_keys(filters)
        context.update(
            page=page,
            keys=keys,
            rows=[(row, [row.cells.get(key, []) for key in keys]) for row in rows],
        )
    return render(request, "review/compare_images.html", context)


def _image_csv_rows(filters: Filters, keys: list[str]) -> Iterator[list[Any]]:
    header = ["image_id", "file_name"]
    for key in keys:
        header += [f"{key} caption", f"{key} outcome", f"{key} approved text", f"{key} verdicts"]
    yield header
    after = 0
    while True:
        batch = comparison_image_page(
            scope=filters.scope, show=filters.show, after=after, limit=CSV_BATCH
        )
        if not batch:
            return
        for row in comparison_image_rows(scope=filters.scope, page=batch):
            line: list[Any] = [row.image.pk, row.image.original_name]
            for key in keys:
                cells = row.cells.get(key, [])
                line += [
                    " | ".join(c.caption.text for c in cells),
                    " | ".join(c.item.state if c.item else "not queued" for c in cells),
                    " | ".join(c.item.final_text if c.item else "" for c in cells),
                    " | ".join(
                        ", ".join(
                            v.decision + (f" ({'; '.join(v.reasons)})" if v.reasons else "")
                            for v in c.verdicts
                        )
                        for c in cells
                    ),
                ]
            yield line
        after = batch[-1][0]


@login_required
@postgres_only
@require_GET
def compare_images_csv(request: HttpRequest, slug: str) -> HttpResponse:
    project = metrics_project(request, slug)
    filters = Filters(request, project, same_images=True)
    if filters.scope is None:
        return HttpResponse(filters.problem, status=400, content_type="text/plain")
    return _csv_response(
        _image_csv_rows(filters, _column_keys(filters)), f"{project.slug}-comparison-images.csv"
    )


@login_required
@postgres_only
@require_GET
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    project = metrics_project(request, slug)
    filters = Filters(request, project, same_images=False)
    is_admin = selectors.can_manage(project=project, user=request.user)
    plots, as_of = [], None
    if filters.scope is not None:
        plots = dashboard_plots(scope=filters.scope, viewer=request.user, names_visible=is_admin)
        if rollup_where(filters.scope) is not None:
            as_of = MetricRollupState.objects.get(project=project).refreshed_at
    context = {
        "as_of": as_of,
        "project": project,
        "filters": filters,
        "form": filters.form,
        "query": filters.query(request),
        "plots": plots,
        "is_admin": is_admin,
    }
    return render(request, "review/dashboard.html", context)


@login_required
@postgres_only
@require_GET
def dashboard_csv(request: HttpRequest, slug: str, plot: str) -> HttpResponse:
    project = metrics_project(request, slug)
    if plot not in PLOT_IDS:
        raise Http404("No such plot.")
    filters = Filters(request, project, same_images=False)
    if filters.scope is None:
        return HttpResponse(filters.problem, status=400, content_type="text/plain")
    is_admin = selectors.can_manage(project=project, user=request.user)
    (found,) = dashboard_plots(
        scope=filters.scope, viewer=request.user, names_visible=is_admin, only=plot
    )
    return _csv_response(iter([found.columns, *found.rows]), f"{project.slug}-{plot}.csv")

"""Review figures other apps' pages show: the project page's headline, the run page's outcomes.

Inclusion tags, so the labeling and routing views stay as they are and never import review."""

from __future__ import annotations

from typing import Any

from django import template

from review import selectors
from review.metrics import Scope, metrics_supported, project_headline, route_metrics
from review.metrics_display import cost_cell, rate_cell

register = template.Library()


def _page_image_counts(context) -> dict[str, int] | None:
    """The image counts the project page already has (status -> n), so they are not counted
    twice: a dict by status, or (label, n) pairs; None when the page has none."""
    from labeling.models import Image

    counts = context.get("counts")
    if isinstance(counts, dict):
        return dict(counts)
    pairs = context.get("image_counts")
    if not isinstance(pairs, list | tuple):
        return None
    by_label = {str(label).lower(): status for status, label in Image.Status.choices}
    found = {status: 0 for status in Image.Status.values}
    for label, n in pairs:
        status = by_label.get(str(label).lower())
        if status is None:
            return None
        found[status] = n
    return found


@register.inclusion_tag("review/_project_headline.html", takes_context=True)
def project_review_headline(context, project, user) -> dict[str, Any]:
    """Review progress (items and images, labelled which is which), per-route accepted-output rate
    and cost per accepted output for those who may see metrics, and links to the review pages."""
    if not selectors.can_review(project=project, user=user):
        return {"hidden": True}
    metrics = selectors.can_see_metrics(project=project, user=user) and metrics_supported()
    headline = project_headline(
        project=project, with_routes=metrics, image_counts=_page_image_counts(context)
    )
    routes = []
    if headline.table is not None:
        routes = [
            (row, rate_cell(row.accepted_rate), cost_cell(row.cost_per_accepted))
            for row in headline.table.rows
            if row.produced
        ]
    return {
        "project": project,
        "headline": headline,
        "routes": routes,
        "metrics": metrics,
        "is_admin": selectors.can_manage(project=project, user=user),
    }


@register.inclusion_tag("review/_run_outcomes.html")
def run_review_outcomes(run) -> dict[str, Any]:
    """Per route of the run: what review made of its outputs so far (PostgreSQL only)."""
    if not metrics_supported():
        return {"run": run, "rows": [], "unsupported": True}
    table = route_metrics(scope=Scope(project=run.project, run_id=run.pk))
    return {
        "run": run,
        "rows": [
            (row, rate_cell(row.accepted_rate), cost_cell(row.cost_per_accepted))
            for row in table.rows
        ],
        "comparable": run.kind == "comparison",
        # a big project's figures come from its rollup: say when it was taken
        "as_of": table.as_of,
    }

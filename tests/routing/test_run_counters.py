"""A running run's page reads counters the database keeps as work happens (RunCounter, kept by
triggers), not an aggregate of every caption and call per poll: the counters equal the aggregate
of the rows through a realistic run (retries, timeouts, fallbacks, failures, a worker dying and
the sweep taking its caption back, retry of the failed, a deleted image, cancel, cache hits)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from labeling.models import Image
from routing import selectors
from routing.fakes import Reply
from routing.models import Caption, CaptionRun, RunCounter
from routing.services.counters import run_counters_fold, run_counters_rebuild
from routing.services.execute import caption_claim, caption_execute
from routing.services.runs import (
    ImageSelection,
    caption_sweep,
    run_cancel,
    run_launch,
    run_retry_failed,
)
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route, make_chain

pytestmark = pytest.mark.django_db(transaction=True)

ROW_TABLES = re.compile(r'"routing_(caption|modelcall)"')


def _normal(figures: dict[str, Any]) -> dict[str, Any]:
    """Spend as a number (the aggregate of no cost is 0, the counters' 0E-8)."""
    return {
        "progress": figures["progress"],
        "breakdown": [{**row, "spent": Decimal(row["spent"])} for row in figures["breakdown"]],
    }


def assert_counted(run: CaptionRun) -> dict[str, Any]:
    counted = _normal(selectors.run_figures_counted(run))
    assert counted == _normal(selectors.run_figures_aggregated(run))
    return counted


def test_counters_equal_the_rows_through_a_mixed_run(
    project, admin, fake_edenai, fake_edenai_b, broker
):
    fake_edenai.script(
        [
            "500",  # retried on the same route, then served
            Reply.success("a cat", cost="0.001"),
            Reply.hang(3),  # a timeout, retried: out of credits, falls back
            "402",
            Reply.provider_fail(cost="0.0002"),  # billed failure, retried: 401, falls back
            "401",
        ],
        default=Reply.success("a dog", cost="0.001"),
    )
    fake_edenai_b.script(["500"], default=Reply.success("a boat", cost="0.003"))
    primary = edenai_route(fake_edenai, name="primary", max_attempts=2, timeout_s=0.5)
    backup = edenai_route(fake_edenai_b, name="backup", max_attempts=1)
    chain = make_chain(project, [primary, backup])
    for _ in range(8):
        ImageFactory(project=project)
    run = run_launch(
        project=project,
        user=admin,
        kind="chain",
        chain=chain,
        selection=ImageSelection(),
        use_cache=False,
        enqueue=False,
    )
    ids = list(run.captions.order_by("id").values_list("id", flat=True))
    assert assert_counted(run)["progress"]["pending"] == 8

    for caption_id in ids[:5]:
        caption_execute(caption_id=caption_id)
    assert_counted(run)

    # A worker takes a caption, opens its call and dies: the sweep takes it back, the call is lost.
    execution = caption_claim(caption_id=ids[5], where="api")
    assert execution.prepare_next() is not None
    figures = assert_counted(run)
    assert (figures["progress"]["running"], figures["progress"]["calls_in_flight"]) == (1, 1)
    Caption.objects.filter(pk=ids[5]).update(lease_until=timezone.now() - timedelta(hours=1))
    assert caption_sweep().recovered == [ids[5]]
    assert assert_counted(run)["progress"]["calls_in_flight"] == 0
    caption_execute(caption_id=ids[5])

    assert run_retry_failed(run=run) >= 1
    assert_counted(run)
    for caption_id in Caption.objects.filter(run=run, status="pending").values_list(
        "id", flat=True
    ):
        if caption_id not in ids[6:]:
            caption_execute(caption_id=caption_id)
    assert_counted(run)

    # Deleting an image takes its caption and calls with it (a cascade nobody hooks).
    Image.objects.filter(captions__pk=ids[0]).delete()
    assert_counted(run)

    assert run_cancel(run=run) == 2
    figures = assert_counted(run)
    progress, by_route = figures["progress"], {r["route__name"]: r for r in figures["breakdown"]}
    assert (progress["total"], progress["cancelled"], progress["pending"]) == (7, 2, 0)
    assert progress["succeeded"] >= 4
    routes = by_route["primary"], by_route["backup"]
    assert by_route["primary"]["retries"] >= 2 and by_route["primary"]["timeouts"] >= 1
    assert by_route["backup"]["fallbacks"] >= 2 and sum(r["failed"] for r in routes) >= 4
    assert by_route["primary"]["mean_latency_ms"] is not None
    assert sum(r["attempts"] for r in routes) > sum(r["succeeded"] for r in routes)
    assert sum(r["spent"] for r in routes) > 0

    # Folding and rebuilding from the rows change no total.
    assert RunCounter.objects.filter(run=run).count() > 3
    run_counters_fold(run_id=run.pk)
    assert RunCounter.objects.filter(run=run).count() == 3  # captions, primary, backup
    assert assert_counted(run) == figures
    run_counters_rebuild(run_ids=[run.pk])
    assert assert_counted(run) == figures
    RunCounter.objects.filter(run=run).delete()  # as after a bulk load with the triggers off
    call_command("run_counters_rebuild", run=[run.pk], stdout=io.StringIO())
    assert assert_counted(run) == figures

    # Another run over the same images: the backup's answers are cache hits now.
    again = run_launch(
        project=project,
        user=admin,
        kind="comparison",
        routes=[backup],
        selection=ImageSelection(),
        enqueue=False,
    )
    for caption_id in again.captions.values_list("id", flat=True):
        caption_execute(caption_id=caption_id)
    assert assert_counted(again)["progress"]["cached"] >= 1
    assert assert_counted(run) == figures  # another run's work is not this run's

    # The run row's delete takes its counters with it.
    run_id = run.pk
    run.delete()
    assert not RunCounter.objects.filter(run_id=run_id).exists()


def test_a_running_runs_page_reads_its_counters_not_its_rows(
    project, admin, fake_edenai, broker, client
):
    fake_edenai.script(["500", Reply.success("a dog", cost="0.002")])
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.002"), max_attempts=2)
    for _ in range(3):
        ImageFactory(project=project)
    run = run_launch(
        project=project,
        user=admin,
        kind="comparison",
        selection=ImageSelection(),
        routes=[route],
        enqueue=False,
    )
    caption_execute(caption_id=run.captions.order_by("id").first().pk)
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.RUNNING

    with CaptureQueriesContext(connection) as queries:
        progress = selectors.run_progress(run=run)
        breakdown = selectors.run_route_breakdown(run=run)
    sql = [q["sql"] for q in queries]
    assert not [s for s in sql if ROW_TABLES.search(s)], sql
    assert len(sql) == 3  # the run row, then its counters for the progress and the routes
    assert (progress.total, progress.succeeded, progress.pending) == (3, 1, 2)
    assert progress.run.summary == {}  # still running: no snapshot
    (row,) = breakdown
    assert (row["attempts"], row["retries"], row["succeeded"], row["failed"]) == (2, 1, 1, 1)
    assert row["spent"] == Decimal("0.002")

    # The page and its poll show both from one read of the counters.
    with CaptureQueriesContext(connection) as queries:
        both = selectors.run_live_figures(run=run)
    assert len(queries) == 2  # the run row, then its counters once
    assert both == (progress, breakdown)

    # The page's progress poll reads the same counters.
    client.force_login(admin)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("routing:run-progress", args=[run.pk]), secure=True)
    assert response.status_code == 200
    assert not [q["sql"] for q in queries if ROW_TABLES.search(q["sql"])]
    assert len([q for q in queries if "routing_runcounter" in q["sql"]]) == 1
    body = response.content.decode()
    assert 'data-stat="pending">2<' in body and "Timeouts" in body


def test_reads_fold_a_long_tail_of_differences(project, admin, fake_edenai, broker, monkeypatch):
    fake_edenai.script([], default=Reply.success("a dog", cost="0.001"))
    route = edenai_route(fake_edenai)
    for _ in range(4):
        ImageFactory(project=project)
    run = run_launch(
        project=project,
        user=admin,
        kind="comparison",
        selection=ImageSelection(),
        routes=[route],
        enqueue=False,
    )
    for caption_id in run.captions.values_list("id", flat=True)[:3]:
        caption_execute(caption_id=caption_id)
    rows = RunCounter.objects.filter(run=run).count()
    assert rows > 2
    monkeypatch.setattr("routing.services.counters.FOLD_AFTER_ROWS", 0)
    before = assert_counted(run)
    assert RunCounter.objects.filter(run=run).count() == 2  # the read folded them
    assert assert_counted(run) == before
    assert before["progress"]["succeeded"] == 3 and before["progress"]["pending"] == 1

"""A settled run's page reads a snapshot of its figures instead of aggregating every call on
every poll (1.7 s per view at three million calls); a retry that re-opens the run drops it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing import selectors
from routing.fakes import Reply
from routing.models import CaptionRun
from routing.services.execute import caption_execute
from routing.services.runs import ImageSelection, caption_retry, run_launch
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_finished_run_is_read_from_its_snapshot_until_a_retry_reopens_it(
    project, admin, fake_edenai, broker
):
    fake_edenai.script([Reply.success("a dog", cost="0.002"), Reply.error(400)])
    route = edenai_route(fake_edenai, usd_per_call=Decimal("0.002"), max_attempts=1)
    for _ in range(2):
        ImageFactory(project=project)
    run = run_launch(
        project=project, user=admin, kind="comparison", selection=ImageSelection(), routes=[route]
    )
    for caption_id in run.captions.values_list("id", flat=True):
        caption_execute(caption_id=caption_id)
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.FINISHED

    live = selectors.run_progress(run=run)
    breakdown = selectors.run_route_breakdown(run=run)
    run.refresh_from_db()
    assert run.summary["progress"]["succeeded"] == 1
    with CaptureQueriesContext(connection) as queries:
        again = selectors.run_progress(run=run)
        again_breakdown = selectors.run_route_breakdown(run=run)
    assert len(queries) == 1  # the run row itself; no aggregate over captions or calls
    assert (again.succeeded, again.failed, again.total) == (live.succeeded, live.failed, 2)
    assert again_breakdown == breakdown
    assert breakdown[0]["spent"] == Decimal("0.002") and breakdown[0]["attempts"] == 2

    failed = run.captions.get(status="failed")
    caption_retry(caption=failed)
    run.refresh_from_db()
    assert run.status == CaptionRun.Status.RUNNING and run.summary == {}
    assert selectors.run_progress(run=run).pending == 1

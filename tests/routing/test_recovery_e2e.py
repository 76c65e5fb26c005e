"""A worker killed with SIGKILL in the middle of a Replicate call, with real Celery workers on
Redis and PostgreSQL: the beat sweep takes the caption back within its period once the lease is
over, a second worker polls the prediction the first one started, and the caption finishes
exactly once with one prediction paid."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from routing.fakes import Reply
from routing.models import Caption, CaptionRun, ModelCall
from routing.services.runs import ImageSelection, run_launch
from tests.conftest import wait_until
from tests.factories import ImageFactory
from tests.routing.test_recovery import replicate_route

pytestmark = [pytest.mark.worker, pytest.mark.slow]

# Short deadlines so the lease runs out in seconds; the sweep runs every second.
FAST_RECOVERY = {
    "ROUTING_MAX_DEADLINE_S": "6",
    "ROUTING_LEASE_MARGIN_S": "1",
    "ROUTING_SWEEP_INTERVAL_S": "1",
}


def test_a_worker_killed_mid_prediction_is_recovered_and_paid_once(
    project, admin, fake_replicate, celery_worker_process
):
    fake_replicate.script([Reply.success("two kites over a beach", latency_ms=3000)])
    route = replicate_route(fake_replicate, timeout_s=5.0)
    ImageFactory(project=project)
    first = celery_worker_process(queues="api", extra_env=FAST_RECOVERY)

    run = run_launch(
        project=project,
        user=admin,
        kind=CaptionRun.Kind.COMPARISON,
        selection=ImageSelection(),
        routes=[route],
    )
    # The prediction's id is stored as soon as Replicate answers the create call.
    call = wait_until(
        lambda: ModelCall.objects.filter(run=run, submitted_at__isnull=False).first(), timeout=30
    )
    first.kill()  # SIGKILL: no cleanup, no acknowledgement
    first.wait(timeout=10)
    caption = Caption.objects.get(run=run)
    assert caption.status == Caption.Status.RUNNING
    first_lease_until = caption.lease_until

    celery_worker_process(queues="api", extra_env=FAST_RECOVERY, beat=True)
    caption = wait_until(
        lambda: Caption.objects.filter(pk=caption.pk, status=Caption.Status.SUCCEEDED).first(),
        timeout=60,
    )

    # taken back within the sweep's period (1 s here) of the lease running out, plus slack for
    # a loaded machine
    assert caption.claimed_at - first_lease_until < timedelta(seconds=1 + 5)
    assert caption.lost_count == 1
    assert caption.text.lower().startswith("two kites over a beach")
    assert len(fake_replicate.predictions) == 1
    [only] = caption.calls.all()
    assert only.pk == call.pk and only.request_id == call.request_id
    assert only.status == ModelCall.Status.SUCCEEDED and only.cost_source == "computed"
    run = wait_until(
        lambda: CaptionRun.objects.filter(pk=run.pk, status=CaptionRun.Status.FINISHED).first(),
        timeout=20,
    )
    assert run.spent_usd == only.cost_usd == caption.cost_usd > Decimal(0)
    assert run.reserved_usd == 0

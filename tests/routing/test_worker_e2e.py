"""End to end with a real Celery worker process consuming from Redis: images are imported, an
admin launches a run in the browser's forms, and captions appear, through a fallback."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Membership
from labeling.services.ingest import Candidate, image_ingest_one
from routing.fakes import Reply
from routing.models import Caption, CaptionRun, ModelCall
from tests.conftest import wait_until
from tests.routing.conftest import edenai_route, make_chain


@pytest.mark.worker
@pytest.mark.slow
def test_import_then_run_then_captions_appear(
    celery_worker_process,
    project,
    client,
    django_user_model,
    make_image_bytes,
    fake_edenai,
    fake_edenai_b,
):
    celery_worker_process(queues="default,api", pool="threads", concurrency=8)
    fake_edenai.set_default("500")
    fake_edenai_b.set_default(
        Reply.success("A field of sunflowers under a blue sky.", cost="0.0004")
    )
    primary = edenai_route(fake_edenai, name="flaky-primary", max_attempts=2)
    backup = edenai_route(fake_edenai_b, name="steady-backup")
    make_chain(project, [primary, backup], name="main")
    for seed in range(4):
        outcome = image_ingest_one(
            project=project,
            candidate=Candidate(
                source=f"field{seed}.png",
                name=f"field{seed}.png",
                origin="upload",
                data=make_image_bytes("PNG", seed=seed),
            ),
        )
        assert outcome.status == "imported"
    boss = django_user_model.objects.create_user(username="boss", password="boss-pass-123")
    Membership.objects.create(project=project, user=boss, role=Membership.Role.ADMIN)
    client.force_login(boss)

    response = client.post(
        reverse("routing:run-create", args=[project.slug]),
        {
            "kind": "chain",
            "chain": project.chains.get().pk,
            "apply_rules": "on",
            "selection": "all",
            "prompt": "Describe this image.",
            "budget_usd": "1",
            "use_cache": "on",
            "action": "launch",
        },
    )
    assert response.status_code == 302
    run = CaptionRun.objects.get()

    wait_until(lambda: CaptionRun.objects.filter(pk=run.pk, status="finished").exists(), timeout=60)
    captions = Caption.objects.filter(run=run)
    assert captions.count() == 4
    assert set(captions.values_list("status", "route__name", "text")) == {
        ("succeeded", "steady-backup", "A field of sunflowers under a blue sky.")
    }
    # The primary failed (retried) until the shared breaker opened after 5 failures in a row;
    # from then on the backup is asked at once. Eight threads take the four captions, but a
    # caption whose task starts after the breaker opened never reaches the primary at all: its
    # first call is the backup's, with the breaker as the reason.
    first_triggers = []
    for caption in captions:
        calls = list(caption.calls.order_by("attempt"))
        first = calls[0]
        if first.route == primary:
            assert first.trigger == "initial"
        else:
            assert first.route == backup and first.trigger == "fallback:breaker_open"
            assert len(calls) == 1
        first_triggers.append(first.trigger)
        assert calls[-1].route == backup and calls[-1].status == "succeeded"
        assert calls[-1].trigger in {"fallback:server_error", "fallback:breaker_open"}
    assert "initial" in first_triggers
    run.refresh_from_db()
    assert run.spent_usd * 10000 == 16  # 4 x $0.0004, failures cost nothing
    assert ModelCall.objects.filter(status="in_flight").count() == 0
    page = client.get(reverse("routing:run-detail", args=[run.pk]))
    assert b"4 / 4 settled" in page.content

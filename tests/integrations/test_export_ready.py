"""An export whose file is stored is announced as ``export.ready`` to the project's webhooks
(labeling announces it through labeling/hooks.py; integrations listens)."""

from __future__ import annotations

import pytest

from integrations.models import Webhook, WebhookDelivery
from labeling.models import Export
from labeling.services.export import ExportSpec, export_create, export_run
from tests.labeling import export_story

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_finished_export_is_announced_once(admin, project, broker_space):
    hook = Webhook.objects.create(
        project=project,
        url="https://hooks.example.com/exports",
        events=["export.ready"],
        secret="whsec_test",
    )
    export_story.build(project, admin)
    export = export_create(project=project, user=admin, spec=ExportSpec(format="jsonl"))

    export_run(export=Export.objects.get(pk=export.pk))
    export_run(export=Export.objects.get(pk=export.pk))  # a redelivered message: nothing again

    export.refresh_from_db()
    assert export.status == Export.Status.DONE
    [delivery] = WebhookDelivery.objects.filter(webhook=hook)
    assert delivery.event == "export.ready"
    assert delivery.payload["data"]["export_id"] == export.pk
    assert delivery.payload["data"]["sha256"] == export.sha256

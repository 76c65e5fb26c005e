"""python manage.py caption --project SLUG --route NAME [--limit N]"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from routing.fakes import Reply
from routing.models import Caption, CaptionRun
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route

pytestmark = pytest.mark.django_db(transaction=True)


def caption(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("caption", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_captions_images_with_a_progress_bar_and_resumes_where_it_stopped(
    project, fake_edenai, broker
):
    fake_edenai.set_default(Reply.success("A quiet street.", cost="0.0005"))
    edenai_route(fake_edenai, name="street-model")
    images = ImageFactory.create_batch(5, project=project)

    out, err = caption("--project", project.slug, "--route", "street-model", "--limit", "3")

    assert "3 captioned, 0 failed" in out and "spent $0.001500" in out
    assert "3/3" in err  # tqdm's bar
    done = Caption.objects.filter(status="succeeded")
    assert sorted(done.values_list("image_id", flat=True)) == [i.pk for i in images[:3]]
    assert broker.messages("api") == []  # produced here, not through the queue
    run = CaptionRun.objects.get()
    assert run.status == "finished" and run.spent_usd * 10000 == 15

    out, _ = caption("--project", project.slug, "--route", "street-model")
    assert "2 captioned" in out
    out, _ = caption("--project", project.slug, "--route", "street-model")
    assert "Nothing to caption" in out
    assert len(fake_edenai.requests) == 5


def test_unknown_project_or_route_is_a_clear_error(project, fake_edenai):
    edenai_route(fake_edenai, name="known")
    with pytest.raises(CommandError, match="No project"):
        caption("--project", "nope", "--route", "known")
    with pytest.raises(CommandError, match=r"No route named 'nope' \(routes: known\)"):
        caption("--project", project.slug, "--route", "nope")


def test_failures_are_reported_and_kept(project, fake_edenai):
    fake_edenai.set_default("402")
    edenai_route(fake_edenai, name="broke")
    ImageFactory.create_batch(2, project=project)
    out, _ = caption("--project", project.slug, "--route", "broke", "--no-progress")
    assert "0 captioned, 2 failed" in out
    errors = list(Caption.objects.values_list("error", flat=True))
    assert len(errors) == 2 and all(e.startswith("broke: out_of_credits: ") for e in errors)

"""Each request is fitted to what its provider accepts before it is sent, and the call log says
what was changed. Before, Eden AI v2 was sent the WebP served copy (its ``file`` field takes
jpg/jpeg/png/tiff), Replicate got data URLs far over its 256 KB limit, and one run's parameters
(a temperature of 0.2) turned a Replicate fallback into a permanent 4xx."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from PIL import Image as PILImage

from routing.fakes import Reply
from routing.models import Caption, ModelCall, Route
from routing.services.execute import caption_execute
from tests.factories import ImageFactory, RouteFactory
from tests.routing.conftest import edenai_route, make_chain

pytestmark = pytest.mark.django_db


def webp_image(project, make_image_bytes, *, size=(320, 240)):
    image = ImageFactory(project=project)
    data = make_image_bytes("WEBP", size=size)
    image.display.save("display.webp", io.BytesIO(data), save=True)
    return image


def test_eden_ai_v2_gets_a_jpeg_or_png_instead_of_the_webp_served_copy(
    project, fake_edenai, make_image_bytes
):
    route = RouteFactory(
        provider=Route.Provider.EDENAI_V2, model="openai", base_url=fake_edenai.url
    )
    image = webp_image(project, make_image_bytes)
    caption = Caption.objects.create(image=image, target_route=route, prompt="")

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    [call] = caption.calls.all()
    assert call.status == ModelCall.Status.SUCCEEDED
    assert any("WEBP" in note.upper() for note in call.adjustments), call.adjustments
    [request] = [r for r in fake_edenai.requests if r.path.startswith("/v2/")]
    [(name, mime, data)] = request.files.values()
    assert mime in ("image/jpeg", "image/png") and name.endswith((".jpg", ".jpeg", ".png"))
    assert PILImage.open(io.BytesIO(data)).format in ("JPEG", "PNG")


def test_a_big_image_is_shrunk_under_replicates_data_url_limit(
    project, fake_replicate, make_image_bytes
):
    fake_replicate.script([Reply.success("a landscape")])
    route = RouteFactory(
        provider=Route.Provider.REPLICATE,
        model="andreasjansson/blip-2",
        base_url=fake_replicate.url,
        usd_per_second=Decimal("0.001"),
        config={"poll_interval_s": 0.05},
    )
    image = ImageFactory(project=project)
    noisy = PILImage.effect_noise((1600, 1200), 90).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, "PNG")
    assert len(buffer.getvalue()) > 1024 * 1024
    image.display.save("display.png", io.BytesIO(buffer.getvalue()), save=True)
    caption = Caption.objects.create(image=image, target_route=route, prompt="")

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    [call] = caption.calls.all()
    assert call.adjustments, "the re-encoding is recorded"
    [create] = [r for r in fake_replicate.requests if r.method == "POST"]
    data_url = create.json["input"]["image"]
    assert data_url.startswith("data:image/") and len(data_url) < 4 / 3 * 256 * 1024 + 100


def test_one_runs_parameters_are_clamped_per_route_of_a_chain(
    project, fake_edenai, fake_replicate, make_image_bytes
):
    """Eden AI takes a temperature of 0.2; Replicate's BLIP-2 only 0.5 to 1. The fallback to
    Replicate still runs, at 0.5, and says so."""
    fake_edenai.script([Reply.error(500)], default=Reply.error(500))
    fake_replicate.script([Reply.success("a small boat")])
    eden = edenai_route(fake_edenai, max_attempts=1)
    replicate = RouteFactory(
        provider=Route.Provider.REPLICATE,
        model="andreasjansson/blip-2",
        base_url=fake_replicate.url,
        usd_per_second=Decimal("0.001"),
        config={"poll_interval_s": 0.05},
    )
    image = ImageFactory(project=project)
    caption = Caption.objects.create(
        image=image,
        chain=make_chain(project, [eden, replicate]),
        prompt="",
        params={"temperature": 0.2},
    )

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    first, second = caption.calls.order_by("attempt")
    assert first.adjustments == []  # Eden AI takes 0.2 as it is
    assert second.route == replicate and second.status == ModelCall.Status.SUCCEEDED
    assert any("temperature" in note for note in second.adjustments), second.adjustments
    [create] = [r for r in fake_replicate.requests if r.method == "POST"]
    assert create.json["input"]["temperature"] == 0.5

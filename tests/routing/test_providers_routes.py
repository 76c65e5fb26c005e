"""Captions through each kind of route: a tiny local model (batched, on the gpu path, handed over
from an api worker), Replicate, Eden AI v2 and Ollama fakes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing.fakes import Reply
from routing.models import Caption, Route
from routing.services.execute import caption_execute, caption_execute_batch
from tests.factories import ImageFactory, RouteFactory
from tests.routing.conftest import edenai_route, make_chain
from tests.routing.test_execute import chain_caption

pytestmark = pytest.mark.django_db(transaction=True)
DECODING = {"max_new_tokens": 6, "min_new_tokens": 3}


@pytest.fixture(scope="module")
def tiny_blip2_dir(tmp_path_factory):
    pytest.importorskip("torch")
    from routing.providers.tiny import build_tiny

    model, processor = build_tiny("blip2", seed=0)
    path = tmp_path_factory.mktemp("tiny-blip2")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


def local_route(path, **kwargs):
    return RouteFactory(
        name=kwargs.pop("name", "local-tiny"),
        provider=Route.Provider.LOCAL,
        model=path,
        params=DECODING,
        config={"device": "cpu", "family": "blip2"},
        gpu_hour_usd=Decimal("3.60"),
        timeout_s=60,
        **kwargs,
    )


def route_caption(image, route, prompt=""):
    return Caption.objects.create(image=image, target_route=route, prompt=prompt)


def test_local_model_captions_a_batch_in_one_generate(project, tiny_blip2_dir):
    route = local_route(tiny_blip2_dir)
    captions = [route_caption(ImageFactory(project=project), route) for _ in range(3)]

    outcomes = caption_execute_batch(caption_ids=[c.pk for c in captions], where="gpu")

    assert set(outcomes.values()) == {"succeeded"}
    for caption in captions:
        caption.refresh_from_db()
        assert caption.text and caption.route == route
        assert caption.model_name == tiny_blip2_dir
        [call] = caption.calls.all()
        assert call.usage["batch_size"] == 3.0
        assert call.cost_source == "configured" and call.cost_usd > 0
        # GPU seconds x $3.60/hour: each caption pays its share of the batch.
        assert call.cost_usd == pytest.approx(
            Decimal(str(call.usage["gpu_seconds"])) * Decimal("0.001"), abs=Decimal("0.000001")
        )


def test_an_api_worker_hands_a_local_fallback_to_the_gpu_queue(
    project, image, tiny_blip2_dir, fake_edenai, broker
):
    fake_edenai.script([], default="503")
    remote = edenai_route(fake_edenai, name="remote", max_attempts=1)
    local = local_route(tiny_blip2_dir)
    caption = chain_caption(image, make_chain(project, [remote, local]), prompt="")

    assert caption_execute(caption_id=caption.pk, where="api") == "handed_off"

    caption.refresh_from_db()
    assert caption.status == Caption.Status.PENDING
    assert caption.resume["position"] == 1 and caption.resume["reason"] == "server_error"
    assert broker.messages("gpu") == [
        ("routing.tasks.caption_image_gpu", {"caption_id": caption.pk})
    ]

    assert caption_execute(caption_id=caption.pk, where="gpu") == "succeeded"

    caption.refresh_from_db()
    assert caption.route == local
    calls = list(caption.calls.order_by("attempt"))
    assert [(c.attempt, c.route.name, c.trigger) for c in calls] == [
        (1, "remote", "initial"),
        (2, "local-tiny", "fallback:server_error"),
    ]


def test_missing_local_weights_fail_clearly_and_fall_back(
    project, image, fake_edenai, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = RouteFactory(
        name="local-blip2",
        provider=Route.Provider.LOCAL,
        model="Salesforce/blip2-opt-2.7b",
        config={"device": "cpu", "cache_dir": str(tmp_path)},
    )
    remote = edenai_route(fake_edenai, name="remote")
    caption = chain_caption(image, make_chain(project, [missing, remote]))

    assert caption_execute(caption_id=caption.pk, where="gpu") == "succeeded"

    first, second = caption.calls.order_by("attempt")
    assert first.error_class == "weights_unavailable"
    assert first.error.startswith("model weights not available")
    assert second.trigger == "fallback:weights_unavailable"


def test_replicate_blip2_cost_is_predict_time_times_hardware_price(project, image, fake_replicate):
    fake_replicate.script([Reply.success("a man riding a horse", predict_time=2.0, polls=1)])
    route = RouteFactory(
        name="replicate-blip2",
        provider=Route.Provider.REPLICATE,
        model="andreasjansson/blip-2",
        base_url=fake_replicate.url,
        usd_per_second=Decimal("0.001"),
        config={"poll_interval_s": 0.05},
    )
    caption = route_caption(image, route)

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    caption.refresh_from_db()
    assert caption.text.lower().startswith("a man riding a horse")
    [call] = caption.calls.all()
    assert call.cost_usd == Decimal("0.002") and call.cost_source == "computed"
    assert call.request_id


def test_edenai_v2_failure_inside_http_200_is_an_error(project, image, fake_edenai):
    fake_edenai.script(
        [
            Reply.provider_fail("Provider is currently unavailable"),
            Reply.success("a bowl of fruit", v2_status="sucess"),
        ]
    )
    route = RouteFactory(
        name="edenai-v2",
        provider=Route.Provider.EDENAI_V2,
        model="openai",
        base_url=fake_edenai.url,
    )
    caption = route_caption(image, route)

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    failed, ok = caption.calls.order_by("attempt")
    assert failed.error_class == "server_error" and failed.http_status == 200
    assert "currently unavailable" in failed.error
    assert ok.trigger == "retry"
    caption.refresh_from_db()
    assert caption.text == "a bowl of fruit"


def test_ollama_llava_route(project, image, fake_ollama):
    fake_ollama.script([Reply.success("A happy cartoon character.")])
    route = RouteFactory(
        name="ollama-llava",
        provider=Route.Provider.OLLAMA,
        model="llava",
        base_url=fake_ollama.url,
        gpu_hour_usd=Decimal("1.00"),
    )
    caption = route_caption(image, route, prompt="Describe this image.")

    assert caption_execute(caption_id=caption.pk) == "succeeded"

    caption.refresh_from_db()
    assert caption.text == "A happy cartoon character."
    [request] = fake_ollama.requests
    assert request.json["model"] == "llava" and len(request.json["images"]) == 1

"""The local transformers worker with tiny random-init BLIP-2, Florence-2, Kosmos-2 and LLaVA
models built from configs: the real processor + generate() + decode path, batched, on CPU."""

from __future__ import annotations

import io
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from routing.providers import (
    BadRequest,
    CaptionRequest,
    CaptionResult,
    MalformedOutput,
    ProviderTimeout,
    WeightsUnavailable,
    get_provider,
)
from routing.providers.local import (
    LocalProvider,
    clear_model_cache,
    guess_family,
    load_model,
    resolve_dtype,
)
from routing.providers.tiny import build_tiny

pytest.importorskip("torch")
pytest.importorskip("transformers")

# Seeds whose random weights write words (not only special tokens) for these images.
SEEDS = {"blip2": 0, "blip2_t5": 0, "florence2": 0, "kosmos2": 2, "llava": 0}
DECODING = {"max_new_tokens": 6, "min_new_tokens": 3}
QUESTIONS = ["what is this", "what colour is the car in the street", "a"]


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        pixels = rng.integers(0, 255, (30 + 7 * i, 40, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def tiny_provider(name: str, **options: object) -> LocalProvider:
    model, processor = build_tiny(name, seed=SEEDS[name])  # type: ignore[arg-type]
    family = "blip2" if name.startswith("blip2") else name
    return LocalProvider.from_components(
        model=model, processor=processor, family=family, model_id=f"tiny-{name}", **options
    )


def captions(images: list[bytes], **kwargs: object) -> list[CaptionRequest]:
    kwargs.setdefault("params", DECODING)
    return [CaptionRequest(image=image, mime_type="image/png", **kwargs) for image in images]  # type: ignore[arg-type]


def questions(images: list[bytes]) -> list[CaptionRequest]:
    return [
        CaptionRequest(image=image, task="question", prompt=q, params=DECODING)
        for image, q in zip(images, QUESTIONS, strict=True)
    ]


@pytest.mark.parametrize("name", ["blip2", "blip2_t5", "florence2", "kosmos2", "llava"])
def test_a_batch_of_three_gives_three_captions_with_configured_cost(images, name):
    provider = tiny_provider(name, gpu_hour_usd="3.60")

    results = provider.caption_batch(captions(images))

    assert len(results) == 3
    assert all(isinstance(r, CaptionResult) for r in results), results
    for result in results:
        assert result.text.strip()
        assert result.served_model == f"tiny-{name}"
        assert result.cost_source == "configured"
        assert result.cost_usd is not None and result.cost_usd > 0
        assert result.usage["batch_size"] == 3
        # the three share one batch: each pays a third of the batch's seconds at $3.60/h
        expected = Decimal(str(result.usage["gpu_seconds"])) * Decimal("0.001")
        assert abs(result.cost_usd - expected) < Decimal("0.00000002")


@pytest.mark.parametrize("name", ["blip2", "blip2_t5", "kosmos2", "llava"])
def test_batched_answers_equal_one_at_a_time_answers(images, name):
    """Questions of different lengths need padding; the wrong padding side changes answers."""
    provider = tiny_provider(name)
    requests = questions(images)

    batched = provider.caption_batch(requests)
    single = [provider.caption_batch([request])[0] for request in requests]

    assert all(isinstance(r, CaptionResult) for r in batched + single), batched + single
    assert [r.text for r in batched] == [r.text for r in single]  # type: ignore[union-attr]


def test_padding_side_follows_the_architecture(images):
    decoder_only = tiny_provider("llava")
    encoder_decoder = tiny_provider("blip2_t5")

    decoder_only.caption_batch(questions(images))
    encoder_decoder.caption_batch(questions(images))

    assert decoder_only.load().processor.tokenizer.padding_side == "left"
    assert encoder_decoder.load().processor.tokenizer.padding_side == "right"


def test_max_batch_size_splits_the_work(images):
    provider = tiny_provider("blip2", max_batch_size=2)

    results = provider.caption_batch(captions(images))

    assert [r.usage["batch_size"] for r in results] == [2, 2, 1]  # type: ignore[union-attr]


def test_blip2_question_is_sent_in_the_question_answer_format(images):
    provider = tiny_provider("blip2")

    item = provider._item(0, questions(images)[0])

    assert item.prompt == "Question: what is this Answer:"
    assert provider._item(0, captions(images)[0]).prompt == ""


def test_kosmos2_caption_is_post_processed_without_grounding_tags(images):
    provider = tiny_provider("kosmos2")

    result = provider.caption(captions(images)[0])

    assert result.text.startswith("an image of ")
    assert "<" not in result.text
    assert "<grounding>" in result.raw_excerpt or "</image>" in result.raw_excerpt


def test_florence2_task_tokens_and_no_free_form_questions(images):
    provider = tiny_provider("florence2")
    detailed = CaptionRequest(image=images[0], params={"detail": "detailed", **DECODING})
    as_prompt = CaptionRequest(image=images[0], prompt="<MORE_DETAILED_CAPTION>", params=DECODING)

    results = provider.caption_batch(
        [captions(images)[0], detailed, as_prompt, questions(images)[0]]
    )

    assert provider._item(0, detailed).task_token == "<DETAILED_CAPTION>"
    assert provider._item(0, as_prompt).task_token == "<MORE_DETAILED_CAPTION>"
    assert all(isinstance(r, CaptionResult) for r in results[:3])
    assert "<" not in results[0].text  # type: ignore[union-attr]
    assert isinstance(results[3], BadRequest)
    assert "no free-form question" in str(results[3])


def test_llava_prompt_uses_the_chat_template(images):
    provider = tiny_provider("llava")

    result = provider.caption(
        CaptionRequest(image=images[0], prompt="Describe this image.", params=DECODING)
    )

    assert result.text
    from routing.providers.local import _llava_prompt

    prompt = _llava_prompt(provider.load().processor, "Describe this image.")
    assert prompt == "USER: <image>\nDescribe this image. ASSISTANT:"


def test_an_undecodable_image_fails_alone(images):
    provider = tiny_provider("blip2")
    requests = captions(images)
    requests[1] = CaptionRequest(image=b"not an image at all", params=DECODING)

    results = provider.caption_batch(requests)

    assert isinstance(results[0], CaptionResult) and isinstance(results[2], CaptionResult)
    assert isinstance(results[1], BadRequest)


def test_json_task_output_is_validated(images):
    provider = tiny_provider("llava")
    schema = {"type": "object", "required": ["caption"]}

    result = provider.caption_batch(
        [CaptionRequest(image=images[0], task="json", json_schema=schema, params=DECODING)]
    )[0]

    assert isinstance(result, MalformedOutput)  # random weights do not write JSON
    assert result.reason == "schema"


def test_generation_past_the_timeout_is_a_timeout(images):
    provider = tiny_provider("blip2")

    result = provider.caption_batch(
        [CaptionRequest(image=images[0], timeout_s=1e-6, params={"max_new_tokens": 50})]
    )[0]

    assert isinstance(result, ProviderTimeout)


def test_seeded_sampling_is_reproducible(images):
    provider = tiny_provider("llava")
    params = {"use_nucleus_sampling": True, "temperature": 1.0, "seed": 7, **DECODING}
    request = CaptionRequest(image=images[0], params=params)

    first = provider.caption(request)
    second = provider.caption(request)

    assert first.text == second.text


def test_saved_model_loads_once_per_process_through_from_pretrained(images, tmp_path):
    model, processor = build_tiny("llava")
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    clear_model_cache()
    config = {"model": str(tmp_path), "device": "cpu", "max_batch_size": 4}

    first = get_provider("local", config)
    second = get_provider("local", config)
    results = first.caption_batch(captions(images))

    assert first.family == "llava"  # from config.json's model_type
    assert first.load() is second.load()  # one load per process
    assert first.load().dtype == "float32"
    assert len(results) == 3 and all(isinstance(r, CaptionResult) for r in results)
    assert results[0].served_model == str(tmp_path)  # type: ignore[union-attr]
    clear_model_cache()


def test_missing_weights_offline_is_a_clear_permanent_error(images, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    provider = get_provider(
        "local",
        {"model": "Salesforce/blip2-opt-2.7b", "device": "cpu", "cache_dir": str(tmp_path)},
    )

    with pytest.raises(WeightsUnavailable) as info:
        provider.caption(captions(images)[0])
    batch = provider.caption_batch(captions(images))

    assert str(info.value).startswith("model weights not available: Salesforce/blip2-opt-2.7b")
    assert info.value.error_class == "weights_unavailable"
    assert not info.value.retryable
    assert len(batch) == 3 and all(isinstance(r, WeightsUnavailable) for r in batch)


def test_family_and_dtype_rules():
    assert guess_family("Salesforce/blip2-opt-2.7b") == "blip2"
    assert guess_family("Salesforce/blip2-flan-t5-xl") == "blip2"
    assert guess_family("florence-community/Florence-2-base") == "florence2"
    assert guess_family("microsoft/kosmos-2-patch14-224") == "kosmos2"
    assert guess_family("llava-hf/llava-1.5-7b-hf") == "llava"
    assert guess_family("openai/clip-vit-base-patch32") is None
    assert resolve_dtype("auto", device="cpu", model_id="Salesforce/blip2-opt-2.7b") == "float32"
    assert resolve_dtype("auto", device="cuda", model_id="Salesforce/blip2-opt-2.7b") == "float16"
    assert resolve_dtype("auto", device="cuda:1", model_id="Salesforce/blip2-flan-t5-xl") == (
        "bfloat16"
    )
    with pytest.raises(ValueError, match="family"):
        get_provider("local", {"model": "some/unknown-model"})


def test_load_model_reports_weights_unavailable_directly(tmp_path):
    with pytest.raises(WeightsUnavailable, match="model weights not available: nobody/nothing"):
        load_model("nobody/nothing", family="llava", device="cpu", cache_dir=str(tmp_path))


def test_different_timeouts_share_one_batch(images):
    provider = tiny_provider("blip2")
    requests = [
        CaptionRequest(image=image, params=DECODING, timeout_s=t)
        for image, t in zip(images, (30.0, 45.5, 60.0), strict=True)
    ]

    results = provider.caption_batch(requests)

    assert [r.usage["batch_size"] for r in results] == [3, 3, 3]  # type: ignore[union-attr]


def test_florence2_without_post_processing_rules_still_captions(images):
    provider = tiny_provider("florence2")
    provider.load().processor.post_processor.parse_task_config = {}

    result = provider.caption(captions(images)[0])

    assert result.text and "<" not in result.text


@pytest.mark.parametrize("name", ["blip2", "blip2_t5", "florence2", "kosmos2", "llava"])
def test_an_answer_cut_at_max_new_tokens_is_marked_truncated(images, name):
    """min_new_tokens = max_new_tokens keeps the end-of-sequence token from being generated."""
    provider = tiny_provider(name)

    (result,) = provider.caption_batch(
        captions(images[:1], params={"max_new_tokens": 3, "min_new_tokens": 3})
    )

    assert isinstance(result, CaptionResult), result
    assert result.truncated


def test_an_answer_that_ends_by_itself_is_not_truncated(images):
    """Random weights never choose end-of-sequence, so this model's end token is made the word
    it writes third: it then ends there, well before the limit."""
    provider = tiny_provider("blip2")  # writes "w18 on w23 w23 ..."
    loaded = provider.load()
    end = loaded.processor.tokenizer.convert_tokens_to_ids("w23")
    for model in (loaded.model, loaded.model.language_model):  # BLIP-2 hands generate() on
        model.generation_config.eos_token_id = end

    (result,) = provider.caption_batch(captions(images[:1], params={"max_new_tokens": 12}))

    assert isinstance(result, CaptionResult), result
    assert result.text == "w18 on w23"
    assert not result.truncated
